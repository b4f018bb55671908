"""One row of the live view's tables: running totals grown by each snapshot's interval
deltas (_Aggregate), and how its values are formatted. RowBuilder (tui/rows.py) makes and
feeds them.

Pure Python over tracing's model (no Textual).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Protocol

from tracing.model.stats import SyscallStats, percentile
from tracing.model.timing import NO_TIME, Timing, format_time
from tracing.model.units import format_count, format_duration, format_exact_count, format_rate
from tui.columns import METRICS, Grouping, Row, RowKey, columns

_QUANTILES = {"p50_ns": 0.50, "p95_ns": 0.95, "p99_ns": 0.99}
# The row values kept as attributes (sorted by directly).
ATTRIBUTES = frozenset(("count", "errors", "total_ns", "max_ns"))
# The time cells, marked by the timing mode (%time is a share of estimates: left unmarked
# when sampled, the header says which figures are estimates).
_TIME_CELLS = tuple(m.key for m in METRICS if m.key.endswith("_ns"))
EXPECTED_MARK = "*"  # before an errors count whose errors are all EAGAIN/EINPROGRESS/EINTR


def format_value(column: str, value: object) -> str:
    if column in ("count", "errors"):
        # Counts are exact: shown in full up to ten million, then in k/M.
        return format_exact_count(int(value))  # type: ignore[call-overload]
    if column == "rate":
        return "-" if value is None else format_rate(float(value))  # type: ignore[arg-type]
    if column in ("err_pct", "time_pct"):
        return f"{value:.1f}"
    if column.endswith("_ns"):
        return format_duration(float(value))  # type: ignore[arg-type]
    return str(value)


def _errors_cell(errors: int, expected: int) -> str:
    """The errors count; marked when every error was an expected code (EAGAIN...)."""
    text = format_exact_count(errors)
    if not errors or expected < errors:
        return text
    # The mark goes before the number, so digits stay aligned on the right; a count too
    # long for the column with it is shortened rather than losing the mark.
    return EXPECTED_MARK + (text if len(text) < 9 else format_count(errors))



class RateSource(Protocol):
    """What a row reads from its builder when asked: the grand total and its rate."""

    grand_total: int
    timing: str  # the snapshots' timing mode ("sampled": time cells marked as estimates)

    def rate_of(self, grouping: Grouping, row_key: RowKey) -> float | None: ...


class Aggregate(Mapping[str, object]):
    """One row: running totals grown by each snapshot's interval deltas. As a mapping it is
    the row's values; rate and %time are read from the builder when asked, and quantiles are
    computed on first use after a change, so a render touches nothing that did not change."""

    __slots__ = ("_cells", "_quantiles", "builder", "count", "errors", "expected", "grouping",
                 "hist", "identity", "max_ns", "min_ns", "pids", "row", "total_ns")

    def __init__(self, builder: RateSource, grouping: Grouping, gkey: RowKey,
                 identity: dict[str, object]) -> None:
        self.builder, self.grouping, self.identity = builder, grouping, identity
        self.count = self.errors = self.total_ns = self.min_ns = self.max_ns = 0
        self.expected = 0  # errors seen as events with an expected code (EAGAIN...)
        self.pids: set[int] | None = set() if "procs" in identity else None
        self.hist: dict[int, int] = {}
        self._quantiles: dict[str, int] = {}
        self._cells: dict[str, str] = {}
        self.row = Row(gkey, self, self.cells)

    def add(self, delta: SyscallStats) -> None:
        # A minimum of 0 is real (calls refused by seccomp are counted untimed): whether a
        # minimum is known comes from the counts.
        if delta.count and (not self.count or delta.min_ns < self.min_ns):
            self.min_ns = delta.min_ns
        self.count += delta.count
        self.errors += delta.errors
        self.total_ns += delta.total_ns
        self.max_ns = max(self.max_ns, delta.max_ns)
        hist = self.hist
        for bucket, n in delta.hist:
            hist[bucket] = hist.get(bucket, 0) + n
        self._quantiles, self._cells = {}, {}

    def add_expected(self, n: int) -> None:
        self.expected += n
        self._cells = {}

    def add_pid(self, pid: int) -> None:
        pids = self.pids
        if pids is not None and pid not in pids:
            pids.add(pid)
            self.set_identity("procs", len(pids))

    def set_identity(self, key: str, value: object) -> None:
        self.identity[key] = value
        self._cells = {}

    def stats(self) -> SyscallStats:
        return SyscallStats(self.count, self.errors, self.total_ns, self.min_ns, self.max_ns,
                            tuple(sorted(self.hist.items())))

    def __getitem__(self, key: str) -> object:
        if key in self.identity:
            return self.identity[key]
        if key in ATTRIBUTES:
            return getattr(self, key)
        if key == "avg_ns":
            return self.total_ns // self.count if self.count else 0
        if key == "err_pct":
            return 100.0 * self.errors / self.count if self.count else 0.0
        if key == "unexpected":
            # Events arrive a tick before or after their counts: never below zero.
            return max(self.errors - self.expected, 0)
        if key == "time_pct":
            grand = self.builder.grand_total
            return 100.0 * self.total_ns / grand if grand else 0.0
        if key == "rate":  # 0 for filters and sorting once the targets are gone
            return self.builder.rate_of(self.grouping, self.row.key) or 0.0
        if key in _QUANTILES:
            value = self._quantiles.get(key)
            if value is None:
                value = self._quantiles[key] = percentile(
                    tuple(sorted(self.hist.items())), _QUANTILES[key], self.min_ns, self.max_ns)
            return value
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        yield from self.identity
        yield from (m.key for m in METRICS)
        yield "unexpected"

    def __len__(self) -> int:
        return len(self.identity) + len(METRICS) + 1

    def cells(self) -> dict[str, str]:
        """Formatted cells; all but rate and %time are kept until the row changes."""
        timing = self.builder.timing
        if not self._cells:
            self._cells = {c.key: format_value(c.key, self[c.key])
                           for c in columns(self.grouping) if c.key not in ("rate", "time_pct")}
            self._cells["errors"] = _errors_cell(self.errors, self.expected)
            if timing != Timing.EXACT:  # "~12ms" (an estimate) or "-" (not measured)
                for key in _TIME_CELLS:
                    self._cells[key] = format_time(self._cells[key], timing)
        rate = self.builder.rate_of(self.grouping, self.row.key)
        share = NO_TIME if timing == Timing.OFF else format_value("time_pct", self["time_pct"])
        return {**self._cells, "rate": format_value("rate", rate), "time_pct": share}
