"""Table rows for the live view, built from a snapshot: grouping, filtering, rates, sorting.

Pure functions over tracing's model (no Textual), so they are tested directly and the widgets
only render what they are given.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tracing.filters import Filter
from tracing.model import Snapshot, StatKey, SyscallStats, merge_stats
from tracing.report import key_name
from tracing.units import format_count, format_duration


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    numeric: bool = True


@dataclass(frozen=True, slots=True)
class Grouping:
    key: str
    label: str
    identity: tuple[Column, ...]


GROUPINGS = (
    Grouping("syscall", "by syscall", (Column("name", "syscall", False),)),
    Grouping("process", "by process", (Column("pid", "pid"), Column("comm", "comm", False))),
    Grouping("thread", "by thread",
             (Column("pid", "pid"), Column("tid", "tid"), Column("comm", "comm", False))),
    Grouping("pid_syscall", "process × syscall",
             (Column("pid", "pid"), Column("comm", "comm", False),
              Column("name", "syscall", False))),
)

METRICS = (
    Column("count", "calls"),
    Column("rate", "rate/s"),
    Column("errors", "errors"),
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


def columns(grouping: Grouping) -> tuple[Column, ...]:
    return grouping.identity + METRICS


@dataclass(frozen=True, slots=True)
class Row:
    key: str  # stable across snapshots, for updating the table in place
    values: Mapping[str, object]  # raw values by column key, used for sorting
    cells: Mapping[str, str]  # formatted text by column key

    def sort_value(self, column: str) -> object:
        return self.values[column]


def _group_key(grouping: str, key: StatKey, name: str) -> tuple[object, ...]:
    if grouping == "syscall":
        return (name,)
    if grouping == "process":
        return (key.pid,)
    if grouping == "thread":
        return (key.pid, key.tid)
    return (key.pid, name)


def _identity(grouping: str, gkey: tuple[object, ...], comm_of: Callable[[int], str],
              nr: int) -> dict[str, object]:
    if grouping == "syscall":
        return {"name": gkey[0], "nr": nr}
    if grouping == "process":
        return {"pid": gkey[0], "comm": comm_of(int(gkey[0]))}  # type: ignore[arg-type]
    if grouping == "thread":
        return {"pid": gkey[0], "tid": gkey[1], "comm": comm_of(int(gkey[0]))}  # type: ignore[arg-type]
    return {"pid": gkey[0], "comm": comm_of(int(gkey[0])), "name": gkey[1],  # type: ignore[arg-type]
            "nr": nr}


def metrics(stats: SyscallStats) -> dict[str, float]:
    """The columns that depend on the stats alone (rate and %time need the whole snapshot)."""
    return {
        "count": stats.count,
        "errors": stats.errors,
        "err_pct": 100.0 * stats.errors / stats.count if stats.count else 0.0,
        "total_ns": stats.total_ns,
        "avg_ns": stats.avg_ns,
        "p50_ns": stats.quantile(0.50),
        "p95_ns": stats.quantile(0.95),
        "p99_ns": stats.quantile(0.99),
        "max_ns": stats.max_ns,
    }


def _format(column: str, value: object) -> str:
    if column in ("count", "errors", "rate"):
        return format_count(float(value))  # type: ignore[arg-type]
    if column in ("err_pct", "time_pct"):
        return f"{value:.1f}"
    if column.endswith("_ns"):
        return format_duration(float(value))  # type: ignore[arg-type]
    return str(value)


@dataclass(slots=True)
class _Group:
    members: tuple[SyscallStats, ...]
    values: dict[str, object]
    cells: dict[str, str]


class RowBuilder:
    """Builds rows from snapshots, reusing the merged statistics and formatted cells of every
    group whose entries did not change: with thousands of idle entries (exited processes,
    quiet threads) a refresh costs only what changed."""

    def __init__(self) -> None:
        self._names: dict[tuple[StatKey, str], str] = {}
        self._groups: dict[tuple[str, tuple[object, ...]], _Group] = {}

    def _name(self, snapshot: Snapshot, key: StatKey) -> str:
        info = snapshot.processes.get(key.pid)
        abi = info.abi if info is not None else ""
        name = self._names.get((key, abi))
        if name is None:
            name = self._names[(key, abi)] = key_name(snapshot, key)
        return name

    def build(self, snapshot: Snapshot, grouping: Grouping, flt: Filter | None = None,
              sort: str = DEFAULT_SORT, reverse: bool = True) -> list[Row]:
        """The rows of one grouping, filtered and sorted (reverse=True: largest first)."""
        def comm_of(pid: int) -> str:
            info = snapshot.processes.get(pid)
            return info.comm if info else "?"

        selected: dict[tuple[object, ...], list[tuple[StatKey, SyscallStats]]] = {}
        for key, stats in snapshot.stats.items():
            name = self._name(snapshot, key)
            if flt is not None and flt.has_key_terms and not flt.matches_key(
                name=name, nr=key.nr, pid=key.pid, tid=key.tid, comm=comm_of(key.pid)
            ):
                continue
            selected.setdefault(_group_key(grouping.key, key, name), []).append((key, stats))

        grand_total = sum(s.total_ns for s in snapshot.stats.values())
        interval_s = snapshot.interval_s or 1.0
        rows = []
        groups: dict[tuple[str, tuple[object, ...]], _Group] = {}
        for gkey, members in selected.items():
            group = self._group(grouping, gkey, members, comm_of)
            groups[(grouping.key, gkey)] = group
            values = dict(group.values)
            calls = sum(snapshot.interval[k].count for k, _ in members if k in snapshot.interval)
            values["rate"] = calls / interval_s
            values["time_pct"] = 100.0 * group.values["total_ns"] / grand_total if grand_total \
                else 0.0  # type: ignore[operator]
            if flt is not None and flt.has_metric_terms and not flt.matches_row(values):
                continue
            cells = dict(group.cells)
            cells["rate"] = _format("rate", values["rate"])
            cells["time_pct"] = _format("time_pct", values["time_pct"])
            rows.append(Row("\x1f".join(map(str, gkey)), values, cells))
        self._groups = groups
        rows.sort(key=lambda r: _sort_key(r, sort), reverse=reverse)
        return rows

    def _group(self, grouping: Grouping, gkey: tuple[object, ...],
               members: list[tuple[StatKey, SyscallStats]],
               comm_of: Callable[[int], str]) -> _Group:
        stats = tuple(s for _, s in members)
        cached = self._groups.get((grouping.key, gkey))
        if cached is not None and len(cached.members) == len(stats) and all(
            a is b for a, b in zip(cached.members, stats, strict=True)
        ):
            return cached
        values: dict[str, object] = dict(metrics(merge_stats(stats)))
        values.update(_identity(grouping.key, gkey, comm_of, members[0][0].nr))
        cells = {c.key: _format(c.key, values[c.key]) for c in columns(grouping)
                 if c.key not in ("rate", "time_pct")}
        return _Group(stats, values, cells)


def build_rows(snapshot: Snapshot, grouping: Grouping, flt: Filter | None = None,
               sort: str = DEFAULT_SORT, reverse: bool = True) -> list[Row]:
    """One-off build (tests, record); the live view keeps a RowBuilder for its caches."""
    return RowBuilder().build(snapshot, grouping, flt, sort, reverse)


def _sort_key(row: Row, column: str) -> tuple[object, ...]:
    value = row.values.get(column, 0)
    # Ties break by name/pid so the order is stable from one snapshot to the next.
    return (value, str(row.values.get("name", "")), row.values.get("pid", 0))


def totals(snapshot: Snapshot) -> tuple[int, float]:
    """All calls so far, and calls per second over the last interval."""
    calls = sum(s.count for s in snapshot.stats.values())
    rate = sum(s.count for s in snapshot.interval.values()) / (snapshot.interval_s or 1.0)
    return calls, rate


def stats_for(snapshot: Snapshot, predicate: Callable[[StatKey, str], bool]
              ) -> dict[StatKey, SyscallStats]:
    """The entries whose key and syscall name satisfy predicate (for drill-downs)."""
    return {k: s for k, s in snapshot.stats.items() if predicate(k, key_name(snapshot, k))}
