"""Table rows for the live view: grouping, filtering, rates, sorting.

Pure Python over tracing's model (no Textual). The RowBuilder keeps every grouping's rows up
to date from each snapshot's interval (what changed), so a snapshot costs what changed and a
render costs a sort; only the rows on screen are ever formatted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from operator import attrgetter, itemgetter

from tracing.display_text import sanitize
from tracing.filters import Filter
from tracing.model import Snapshot, StatKey, SyscallStats, percentile
from tracing.report import key_name
from tracing.units import format_count, format_duration


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    numeric: bool = True
    width: int = 7  # fixed, so the table never measures every row


@dataclass(frozen=True, slots=True)
class Grouping:
    key: str
    label: str
    identity: tuple[Column, ...]


_NAME = Column("name", "syscall", False, 22)  # the longest syscall names are ~22 characters
_COMM = Column("comm", "comm", False, 15)  # the kernel keeps 15 characters of a comm
_PID = Column("pid", "pid")
_CONTAINER = Column("container", "container", False, 14)
GROUPINGS = (
    Grouping("syscall", "by syscall", (_NAME,)),
    Grouping("process", "by process", (_PID, _COMM, _CONTAINER)),
    Grouping("thread", "by thread", (_PID, Column("tid", "tid"), _COMM, _CONTAINER)),
    Grouping("pid_syscall", "process × syscall", (_PID, _COMM, _NAME)),
)

METRICS = (
    Column("count", "calls", True, 9),
    Column("rate", "rate/s"),
    Column("errors", "errors", True, 9),
    Column("err_pct", "err%"),
    Column("total_ns", "total"),
    Column("time_pct", "%time"),
    Column("avg_ns", "avg"),
    Column("p50_ns", "p50"),
    Column("p95_ns", "p95"),
    Column("p99_ns", "p99"),
    Column("max_ns", "max"),
)

DEFAULT_SORT = "total_ns"
_QUANTILES = {"p50_ns": 0.50, "p95_ns": 0.95, "p99_ns": 0.99}
_ATTRIBUTES = frozenset(("count", "errors", "total_ns", "max_ns"))


def columns(grouping: Grouping) -> tuple[Column, ...]:
    return grouping.identity + METRICS


def grouping_columns(grouping: Grouping) -> frozenset[str]:
    return frozenset(c.key for c in grouping.identity)


class Row:
    """One table row: `key` is stable across snapshots; `values` are raw (for sorting and
    filters); `cells` are the formatted texts, made when the row is drawn."""

    __slots__ = ("_cells", "key", "values")

    def __init__(self, key: str, values: Mapping[str, object],
                 cells: Mapping[str, str] | Callable[[], Mapping[str, str]]) -> None:
        self.key = key
        self.values = values
        self._cells = cells

    @property
    def cells(self) -> Mapping[str, str]:
        cells = self._cells
        return cells() if callable(cells) else cells


def format_value(column: str, value: object) -> str:
    if column in ("count", "errors"):
        # Counts are exact: shown in full up to ten million, then in k/M.
        n = int(value)  # type: ignore[call-overload]
        return f"{n:,}" if n < 10_000_000 else format_count(n)
    if column == "rate":
        return format_count(float(value))  # type: ignore[arg-type]
    if column in ("err_pct", "time_pct"):
        return f"{value:.1f}"
    if column.endswith("_ns"):
        return format_duration(float(value))  # type: ignore[arg-type]
    return str(value)


def _group_key(grouping: str, key: StatKey, name: str) -> tuple[object, ...]:
    if grouping == "syscall":
        return (name,)
    if grouping == "process":
        return (key.pid,)
    if grouping == "thread":
        return (key.pid, key.tid)
    return (key.pid, name)


def _identity(grouping: str, key: StatKey, name: str, snapshot: Snapshot) -> dict[str, object]:
    comm = _comm(snapshot, key.pid)
    if grouping == "syscall":
        return {"name": name, "nr": key.nr}
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
    return sanitize(info.comm) if info else "?"


def _container(snapshot: Snapshot, pid: int) -> str:
    info = snapshot.processes.get(pid)
    return (info.container if info else "") or "-"


class _Aggregate(Mapping[str, object]):
    """One row: running totals grown by each snapshot's interval deltas. As a mapping it is
    the row's values; rate and %time are read from the builder when asked, and quantiles are
    computed on first use after a change, so a render touches nothing that did not change."""

    __slots__ = ("_cells", "_quantiles", "builder", "count", "errors", "grouping", "hist",
                 "identity", "max_ns", "min_ns", "row", "total_ns")

    def __init__(self, builder: RowBuilder, grouping: Grouping, gkey: tuple[object, ...],
                 identity: dict[str, object]) -> None:
        self.builder, self.grouping, self.identity = builder, grouping, identity
        self.count = self.errors = self.total_ns = self.min_ns = self.max_ns = 0
        self.hist: dict[int, int] = {}
        self._quantiles: dict[str, int] = {}
        self._cells: dict[str, str] = {}
        self.row = Row("\x1f".join(map(str, gkey)), self, self.cells)

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
        if key == "time_pct":
            grand = self.builder.grand_total
            return 100.0 * self.total_ns / grand if grand else 0.0
        if key == "rate":
            return self.builder.rate_of(self.grouping, self.row.key)
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

    def __len__(self) -> int:
        return len(self.identity) + len(METRICS)

    def cells(self) -> dict[str, str]:
        """Formatted cells; all but rate and %time are kept until the row changes."""
        if not self._cells:
            self._cells = {c.key: format_value(c.key, self[c.key])
                           for c in columns(self.grouping) if c.key not in ("rate", "time_pct")}
        return {**self._cells, "rate": format_value("rate", self["rate"]),
                "time_pct": format_value("time_pct", self["time_pct"])}


class RowBuilder:
    """The live table's rows for every grouping, kept up to date incrementally: each
    snapshot's interval (the entries that changed) is added to the rows it belongs to, so a
    snapshot costs what changed. A new filter, a reset, or a snapshot that does not follow
    the last one makes the groupings stale; each is rebuilt from the totals when shown."""

    def __init__(self) -> None:
        self.filter: Filter | None = None
        self.grand_total = 0  # total time of every entry, filtered or not (for %time)
        self.total_calls = 0  # every entry's calls, filtered or not (for the header)
        self.total_rate = 0.0
        self._names: dict[tuple[StatKey, str], str] = {}
        self._aggs: dict[str, dict[tuple[object, ...], _Aggregate]] = {
            g.key: {} for g in GROUPINGS}
        self._stale: set[str] = set()  # groupings to rebuild when next shown
        self.shown = GROUPINGS[0].key  # the grouping on screen
        self._rates: dict[str, dict[str, float]] = {}
        self._seq: int | None = None
        self._epoch = 0
        self._snapshot: Snapshot | None = None

    def set_filter(self, flt: Filter | None) -> None:
        """A new filter: every grouping is rebuilt when next shown."""
        if flt != self.filter:
            self.filter = flt
            self._stale = {g.key for g in GROUPINGS}

    def feed(self, snapshot: Snapshot) -> None:
        follows = self._seq is not None and snapshot.seq == self._seq + 1 \
            and snapshot.epoch == self._epoch
        if follows:
            self._count_totals(snapshot.interval)
            # Only the grouping on screen grows with each snapshot; the others go stale and
            # are rebuilt from the totals if they are shown again.
            self._stale |= {g.key for g in GROUPINGS if g.key != self.shown}
            self._add(snapshot, snapshot.interval,
                      [g for g in GROUPINGS if g.key not in self._stale])
        else:
            self.grand_total = self.total_calls = 0
            self._count_totals(snapshot.stats)
            self._stale = {g.key for g in GROUPINGS}
        self._count_rates(snapshot)
        self._refresh_comms(snapshot)
        self._seq, self._epoch, self._snapshot = snapshot.seq, snapshot.epoch, snapshot

    def _count_totals(self, entries: Mapping[StatKey, SyscallStats]) -> None:
        for stats in entries.values():
            self.grand_total += stats.total_ns
            self.total_calls += stats.count

    def _rebuild(self, grouping: Grouping) -> None:
        """One grouping from the last snapshot's totals (after a filter change, a reset...)."""
        self._aggs[grouping.key] = {}
        self._stale.discard(grouping.key)
        if self._snapshot is not None:
            self._add(self._snapshot, self._snapshot.stats, [grouping])

    def _add(self, snapshot: Snapshot, entries: Mapping[StatKey, SyscallStats],
             groupings: list[Grouping]) -> None:
        if not groupings:
            return
        for key, stats in entries.items():
            name = self._selected_name(snapshot, key)
            if name is None:
                continue
            for g in groupings:
                aggs = self._aggs[g.key]
                gkey = _group_key(g.key, key, name)
                agg = aggs.get(gkey)
                if agg is None:
                    identity = _identity(g.key, key, name, snapshot)
                    agg = aggs[gkey] = _Aggregate(self, g, gkey, identity)
                agg.add(stats)

    def _count_rates(self, snapshot: Snapshot) -> None:
        interval_s = snapshot.interval_s or 1.0
        self._rates = {g.key: {} for g in GROUPINGS}
        self.total_rate = sum(d.count for d in snapshot.interval.values()) / interval_s
        for key, delta in snapshot.interval.items():
            name = self._selected_name(snapshot, key)
            if name is None:
                continue
            for g in GROUPINGS:
                rates = self._rates[g.key]
                row_key = "\x1f".join(map(str, _group_key(g.key, key, name)))
                rates[row_key] = rates.get(row_key, 0.0) + delta.count / interval_s

    def _refresh_comms(self, snapshot: Snapshot) -> None:
        """A process's comm changes at exec: update the rows of processes that changed."""
        changed = {e.pid for e in snapshot.proc_events}
        if not changed:
            return
        for g in GROUPINGS[1:]:
            for agg in self._aggs[g.key].values():
                pid = agg.identity["pid"]
                if pid in changed:
                    agg.set_identity("comm", _comm(snapshot, pid))  # type: ignore[arg-type]
                    if "container" in agg.identity:
                        agg.set_identity("container",
                                         _container(snapshot, pid))  # type: ignore[arg-type]

    def rate_of(self, grouping: Grouping, row_key: str) -> float:
        return self._rates.get(grouping.key, {}).get(row_key, 0.0)

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
        aggs = self._aggs[grouping.key].values()
        flt = self.filter
        if flt is not None and flt.has_metric_terms:
            aggs = [a for a in aggs if flt.matches_row(a)]
        # %time orders like total time, and is cheaper to sort by. Ties break by name, then
        # pid, so rows keep their places from one render to the next.
        column = "total_ns" if sort == "time_pct" else sort
        if column in _ATTRIBUTES:
            primary = attrgetter(column)
        elif column in grouping_columns(grouping):
            def primary(a: _Aggregate) -> object:
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
