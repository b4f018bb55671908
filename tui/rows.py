"""Table rows for the live view: grouping, filtering, rates, sorting (the groupings and
their columns are declared in tui/columns.py).

Pure Python over tracing's model (no Textual). The RowBuilder keeps every grouping's rows up
to date from each snapshot's interval (what changed), so a snapshot costs what changed and a
render costs a sort; only the rows on screen are ever formatted.

Rates are calls per second over the last RATE_WINDOW_S of snapshots (a call made twice a
second reads 2.0, not 0 or 4 by the luck of one tick), and none once the targets are gone.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import lru_cache
from operator import attrgetter, itemgetter
from typing import Any

from tracing.boundary.display_text import sanitize
from tracing.model.expected_errors import expected_error_counts
from tracing.model.report import key_name
from tracing.model.stats import Snapshot, StatKey, SyscallStats, TraceState, percentile
from tracing.model.units import format_count, format_duration, format_exact_count, format_rate
from tracing.query.syscall_filter import Filter
from tui.columns import GROUPINGS, METRICS, Grouping, Row, RowKey, columns, grouping_columns

DEFAULT_SORT = "total_ns"
_QUANTILES = {"p50_ns": 0.50, "p95_ns": 0.95, "p99_ns": 0.99}
_ATTRIBUTES = frozenset(("count", "errors", "total_ns", "max_ns"))
RATE_WINDOW_S = 3.0  # rates are over the snapshots of the last 3 seconds
_GONE = frozenset((TraceState.EXITED, TraceState.STOPPED))  # no rate: nothing runs any more
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


def _group_key(grouping: str, key: StatKey, name: str, comm: str = "") -> RowKey:
    if grouping == "syscall":
        return (name,)
    if grouping == "comm":
        return (comm,)
    if grouping == "process":
        return (key.pid,)
    if grouping == "thread":
        return (key.pid, key.tid)
    return (key.pid, name)


def _identity(grouping: str, key: StatKey, name: str, snapshot: Snapshot) -> dict[str, object]:
    comm = _comm(snapshot, key.pid)
    if grouping == "syscall":
        return {"name": name, "nr": key.nr}
    if grouping == "comm":
        return {"comm": comm, "procs": 0}
    if grouping == "process":
        return {"pid": key.pid, "comm": comm, "container": _container(snapshot, key.pid)}
    if grouping == "thread":
        return {"pid": key.pid, "tid": key.tid, "comm": comm,
                "container": _container(snapshot, key.pid)}
    return {"pid": key.pid, "comm": comm, "name": name, "nr": key.nr}


def _comm(snapshot: Snapshot, pid: int) -> str:
    """The process's name as shown (control characters escaped): `comm=` filters match
    what the user sees and can type."""
    info = snapshot.processes.get(pid)
    return _shown_comm(info.comm) if info else "?"


@lru_cache(maxsize=4096)
def _shown_comm(comm: str) -> str:
    # Asked for every changed entry of every snapshot: a few hundred distinct names.
    return sanitize(comm)


def _container(snapshot: Snapshot, pid: int) -> str:
    info = snapshot.processes.get(pid)
    return (info.container if info else "") or "-"


class _Aggregate(Mapping[str, object]):
    """One row: running totals grown by each snapshot's interval deltas. As a mapping it is
    the row's values; rate and %time are read from the builder when asked, and quantiles are
    computed on first use after a change, so a render touches nothing that did not change."""

    __slots__ = ("_cells", "_quantiles", "builder", "count", "errors", "expected", "grouping",
                 "hist", "identity", "max_ns", "min_ns", "pids", "row", "total_ns")

    def __init__(self, builder: RowBuilder, grouping: Grouping, gkey: RowKey,
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
        self.count += delta.count
        self.errors += delta.errors
        self.total_ns += delta.total_ns
        if delta.min_ns and (not self.min_ns or delta.min_ns < self.min_ns):
            self.min_ns = delta.min_ns
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
        if key in _ATTRIBUTES:
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
        if not self._cells:
            self._cells = {c.key: format_value(c.key, self[c.key])
                           for c in columns(self.grouping) if c.key not in ("rate", "time_pct")}
            self._cells["errors"] = _errors_cell(self.errors, self.expected)
        rate = self.builder.rate_of(self.grouping, self.row.key)
        return {**self._cells, "rate": format_value("rate", rate),
                "time_pct": format_value("time_pct", self["time_pct"])}


class RowBuilder:
    """The live table's rows for every grouping, kept up to date incrementally: each
    snapshot's interval (the entries that changed) is added to the rows it belongs to, so a
    snapshot costs what changed. A new filter, a reset, or a snapshot that does not follow
    the last one makes the groupings stale; each is rebuilt from the totals when shown.

    Rates: the snapshots of the last RATE_WINDOW_S stay in a window; their interval counts
    are summed per row as they enter and taken off as they leave, so a rate is the calls of
    a few seconds over the time they span. Expected errors (EAGAIN...) are counted from every
    snapshot's events, per entry, and credited to a row once the entry has counts."""

    def __init__(self) -> None:
        self.filter: Filter | None = None
        self.grand_total = 0  # total time of every entry, filtered or not (for %time)
        self.total_calls = 0  # every entry's calls, filtered or not (for the header)
        self._names: dict[tuple[StatKey, str], str] = {}
        self._aggs: dict[str, dict[RowKey, _Aggregate]] = {
            g.key: {} for g in GROUPINGS}
        self._stale: set[str] = set()  # groupings to rebuild when next shown
        self.shown = GROUPINGS[0].key  # the grouping on screen
        self._seq: int | None = None
        self._epoch = 0
        self._snapshot: Snapshot | None = None
        # The snapshots rates are counted over, each with its calls per row of the grouping
        # rates are kept for (the one shown; another is counted again when asked for).
        self._window: deque[tuple[Snapshot, int, dict[RowKey, int]]] = deque()
        self._window_calls = 0  # every entry's calls in the window, filtered or not
        self._window_rows: dict[RowKey, int] = {}  # calls per row in the window
        self._rate_grouping = GROUPINGS[0].key
        self._rates_live = True  # False once the targets are gone: no rates shown
        self._expected: dict[StatKey, int] = {}  # this epoch's expected errors per entry
        self._credited: dict[str, dict[StatKey, int]] = {g.key: {} for g in GROUPINGS}
        self._events_seen: tuple[int, int] | None = None  # (epoch, seq) counted last
        self._comm_of: dict[int, str] = {}  # pid -> the name its calls count under (by command)

    def set_filter(self, flt: Filter | None) -> None:
        """A new filter: every grouping is rebuilt when next shown, the rates now."""
        if flt != self.filter:
            self.filter = flt
            self._stale = {g.key for g in GROUPINGS}
            self._recount_window(self._rate_grouping)

    def skip(self, snapshot: Snapshot) -> None:
        """A snapshot not shown (the tables are paused): only its events are counted, as
        they are not in the later snapshots' totals."""
        self._count_events(snapshot)

    def feed(self, snapshot: Snapshot) -> None:
        self._count_events(snapshot)
        follows = self._seq is not None and snapshot.seq == self._seq + 1 \
            and snapshot.epoch == self._epoch
        self._check_comms(snapshot)
        if follows:
            self._count_totals(snapshot.interval)
            # Only the grouping on screen grows with each snapshot; the others go stale and
            # are rebuilt from the totals if they are shown again.
            self._stale |= {g.key for g in GROUPINGS if g.key != self.shown}
            self._add(snapshot, snapshot.interval,
                      [g for g in GROUPINGS if g.key not in self._stale],
                      expected_keys=expected_error_counts(snapshot.events).keys())
        else:
            self.grand_total = self.total_calls = 0
            self._count_totals(snapshot.stats)
            self._stale = {g.key for g in GROUPINGS}
        self._count_rates(snapshot, follows)
        self._refresh_comms(snapshot)
        self._seq, self._epoch, self._snapshot = snapshot.seq, snapshot.epoch, snapshot

    def _count_events(self, snapshot: Snapshot) -> None:
        """Add the snapshot's expected errors (once per snapshot, paused or not)."""
        seen = self._events_seen
        if seen is not None and seen[0] == snapshot.epoch and snapshot.seq <= seen[1]:
            return  # already counted (a paused view catching up feeds the newest again)
        if seen is None or seen[0] != snapshot.epoch:
            self._expected = {}  # a reset, or another stretch of a saved session
        for key, n in expected_error_counts(snapshot.events).items():
            self._expected[key] = self._expected.get(key, 0) + n
        self._events_seen = (snapshot.epoch, snapshot.seq)

    def _count_totals(self, entries: Mapping[StatKey, SyscallStats]) -> None:
        for stats in entries.values():
            self.grand_total += stats.total_ns
            self.total_calls += stats.count

    def _rebuild(self, grouping: Grouping) -> None:
        """One grouping from the last snapshot's totals (after a filter change, a reset...)."""
        self._aggs[grouping.key] = {}
        self._credited[grouping.key] = {}
        if grouping.key == "comm":
            self._comm_of = {}
        self._stale.discard(grouping.key)
        if self._snapshot is not None:
            self._add(self._snapshot, self._snapshot.stats, [grouping])

    def _add(self, snapshot: Snapshot, entries: Mapping[StatKey, SyscallStats],
             groupings: list[Grouping], expected_keys: Iterable[StatKey] = ()) -> None:
        """Add entries' counts to their rows; `expected_keys`: entries with new expected
        errors but no new counts, credited if their rows exist."""
        if not groupings:
            return
        for key, stats in entries.items():
            self._add_entry(snapshot, key, stats, groupings)
        for key in expected_keys:
            if key not in entries and key in snapshot.stats:
                self._add_entry(snapshot, key, None, groupings)

    def _add_entry(self, snapshot: Snapshot, key: StatKey, stats: SyscallStats | None,
                   groupings: list[Grouping]) -> None:
        name = self._selected_name(snapshot, key)
        if name is None:
            return
        comm = _comm(snapshot, key.pid) if any(g.key == "comm" for g in groupings) else ""
        expected = self._expected.get(key, 0)
        for g in groupings:
            aggs = self._aggs[g.key]
            gkey = _group_key(g.key, key, name, comm)
            agg = aggs.get(gkey)
            if agg is None:
                if stats is None:
                    continue
                identity = _identity(g.key, key, name, snapshot)
                agg = aggs[gkey] = _Aggregate(self, g, gkey, identity)
            if stats is not None:
                agg.add(stats)
            if agg.pids is not None:
                agg.add_pid(key.pid)
                self._comm_of[key.pid] = comm
            credited = self._credited[g.key]
            if expected != credited.get(key, 0):
                agg.add_expected(expected - credited.get(key, 0))
                credited[key] = expected

    def _check_comms(self, snapshot: Snapshot) -> None:
        """By command, a process's calls count under its current name: when one that is
        counted changes name (exec), that grouping is rebuilt when next shown."""
        for event in snapshot.proc_events:
            counted = self._comm_of.get(event.pid)
            if counted is not None and counted != _comm(snapshot, event.pid):
                self._stale.add("comm")
                return

    def _count_rates(self, snapshot: Snapshot, follows: bool) -> None:
        self._rates_live = snapshot.state not in _GONE
        if not follows:  # a reset, a saved stretch, a paused view catching up: start over
            self._window.clear()
            self._window_rows, self._window_calls = {}, 0
        self._add_to_window(snapshot)
        while len(self._window) > 1 and self._window_s() > RATE_WINDOW_S + 1e-9:
            _, calls, rows = self._window.popleft()
            self._window_calls -= calls
            self._count_rows(rows, -1)

    def _window_s(self) -> float:
        return sum(s.interval_s for s, _, _ in self._window)

    def _add_to_window(self, snapshot: Snapshot) -> None:
        calls = sum(d.count for d in snapshot.interval.values())
        rows = self._rows_of(snapshot, self._rate_grouping)
        self._window.append((snapshot, calls, rows))
        self._window_calls += calls
        self._count_rows(rows, 1)

    def _recount_window(self, grouping: str) -> None:
        """Count the window's rows again: another grouping shown, or another filter."""
        snapshots = [s for s, _, _ in self._window]
        self._rate_grouping = grouping
        self._window.clear()
        self._window_rows, self._window_calls = {}, 0
        for snapshot in snapshots:
            self._add_to_window(snapshot)

    def _count_rows(self, rows: dict[RowKey, int], sign: int) -> None:
        window = self._window_rows
        for row_key, n in rows.items():
            calls = window.get(row_key, 0) + sign * n
            if calls:
                window[row_key] = calls
            else:
                del window[row_key]

    def _rows_of(self, snapshot: Snapshot, grouping: str) -> dict[RowKey, int]:
        """A snapshot's interval calls per row of a grouping (the filter's entries only)."""
        rows: dict[RowKey, int] = {}
        for key, delta in snapshot.interval.items():
            name = self._selected_name(snapshot, key) if delta.count else None
            if name is None:
                continue
            comm = _comm(snapshot, key.pid) if grouping == "comm" else ""
            row_key = _group_key(grouping, key, name, comm)
            rows[row_key] = rows.get(row_key, 0) + delta.count
        return rows

    @property
    def total_rate(self) -> float | None:
        """Every entry's calls per second over the window; None once the targets are gone."""
        return self._per_second(self._window_calls)

    def rate_of(self, grouping: Grouping, row_key: RowKey) -> float | None:
        """A row's calls per second over the window; None once the targets are gone."""
        if grouping.key != self._rate_grouping:
            self._recount_window(grouping.key)
        return self._per_second(self._window_rows.get(row_key, 0))

    def _per_second(self, calls: int) -> float | None:
        if not self._rates_live:
            return None
        span = self._window_s()
        return calls / span if span > 0 else 0.0

    def _refresh_comms(self, snapshot: Snapshot) -> None:
        """A process's comm changes at exec: update the rows of processes that changed."""
        changed = {e.pid for e in snapshot.proc_events}
        if not changed:
            return
        for g in GROUPINGS:
            if "pid" not in grouping_columns(g):
                continue
            for agg in self._aggs[g.key].values():
                pid = agg.identity["pid"]
                if pid in changed:
                    agg.set_identity("comm", _comm(snapshot, pid))
                    if "container" in agg.identity:
                        agg.set_identity("container", _container(snapshot, pid))

    def _selected_name(self, snapshot: Snapshot, key: StatKey) -> str | None:
        """The entry's syscall name, or None when the filter's key terms leave it out."""
        name = self._name(snapshot, key)
        flt = self.filter
        if flt is not None and flt.has_key_terms and not flt.matches_key(
            name=name, nr=key.nr, pid=key.pid, tid=key.tid, comm=_comm(snapshot, key.pid)
        ):
            return None
        return name

    def _name(self, snapshot: Snapshot, key: StatKey) -> str:
        info = snapshot.processes.get(key.pid)
        abi = info.abi if info is not None else ""
        name = self._names.get((key, abi))
        if name is None:
            name = self._names[(key, abi)] = key_name(snapshot, key)
        return name

    def rows(self, grouping: Grouping, sort: str = DEFAULT_SORT,
             reverse: bool = True) -> list[Row]:
        """The rows of a grouping, metric-filtered and sorted (reverse: largest first)."""
        self.shown = grouping.key
        if grouping.key in self._stale:
            self._rebuild(grouping)
        aggs: Iterable[_Aggregate] = self._aggs[grouping.key].values()
        flt = self.filter
        if flt is not None and flt.has_metric_terms:
            aggs = [a for a in aggs if flt.matches_row(a)]
        # %time orders like total time, and is cheaper to sort by. Ties break by name, then
        # pid, so rows keep their places from one render to the next.
        column = "total_ns" if sort == "time_pct" else sort
        primary: Callable[[_Aggregate], Any]
        if column in _ATTRIBUTES:
            primary = attrgetter(column)
        elif column in grouping_columns(grouping):
            def primary(a: _Aggregate) -> Any:
                return a.identity[column]
        else:
            primary = itemgetter(column)
        numeric = next(c.numeric for c in columns(grouping) if c.key == sort)
        if numeric and reverse:  # largest first, but ties still by name A to Z
            def key(a: _Aggregate) -> tuple[object, ...]:
                return (-primary(a), a.identity.get("name", ""), a.identity.get("pid", 0))
            return [a.row for a in sorted(aggs, key=key)]
        ordered = sorted(aggs, key=lambda a: (primary(a), a.identity.get("name", ""),
                                              a.identity.get("pid", 0)), reverse=reverse)
        return [a.row for a in ordered]


def build_rows(snapshot: Snapshot, grouping: Grouping, flt: Filter | None = None,
               sort: str = DEFAULT_SORT, reverse: bool = True) -> list[Row]:
    """The rows of one snapshot, built from scratch (the live view keeps a RowBuilder)."""
    builder = RowBuilder()
    builder.filter = flt
    builder.feed(snapshot)
    return builder.rows(grouping, sort, reverse)
