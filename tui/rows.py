"""Table rows for the live view: grouping, filtering, rates, sorting (the groupings and
their columns are declared in tui/columns.py).

Pure Python over tracing's model (no Textual). The RowBuilder keeps every grouping's rows up
to date from each snapshot's interval (what changed), so a snapshot costs what changed and a
render costs a sort; only the rows on screen are ever formatted.

Rates are calls per second over the last RATE_WINDOW_S of snapshots (a call made twice a
second reads 2.0, not 0 or 4 by the luck of one tick), and none once the targets are gone.

With a live window (the last 5 s...: tracing/model/live_window.py) the snapshots fed carry
the window's stats: the rows are rebuilt from them when shown (a window also loses what
leaves it, which growing rows cannot), the expected errors are those of the window's
snapshots, and the rates stay the recent ones.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from operator import attrgetter, itemgetter
from typing import Any

from tracing.boundary.display_text import sanitize
from tracing.model.expected_errors import expected_error_counts
from tracing.model.live_window import MAX_SPAN_S
from tracing.model.report import key_abi, key_name, labelled
from tracing.model.stats import Snapshot, StatKey, SyscallStats, TraceState
from tracing.model.timing import Timing
from tracing.query.syscall_filter import Filter
from tui.columns import GROUPINGS, Grouping, Row, RowKey, columns, grouping_columns
from tui.row_aggregate import ATTRIBUTES, Aggregate

DEFAULT_SORT = "total_ns"
RATE_WINDOW_S = 3.0  # rates are over the snapshots of the last 3 seconds
_GONE = frozenset((TraceState.EXITED, TraceState.STOPPED))  # no rate: nothing runs any more
# Snapshots with expected errors kept for a live window (by time, and by count: each is a
# small dict of the entries that had some).
EXPECTED_LOG_LIMIT = 5_000

# The groupings whose rows are syscalls: their keys end with the ABI code, so the calls of
# different ABIs stay apart (i386 getppid and x86_64 getppid are two rows).
_BY_SYSCALL = frozenset(("syscall", "pid_syscall"))
# Time columns: with timing off all are 0, and sorting by one sorts by calls instead.
_TIME_SORTS = frozenset(("total_ns", "avg_ns", "p50_ns", "p95_ns", "p99_ns", "max_ns"))


def _group_key(grouping: str, key: StatKey, name: str, comm: str = "") -> RowKey:
    if grouping == "syscall":
        return (name, key.abi)
    if grouping == "comm":
        return (comm,)
    if grouping == "process":
        return (key.pid,)
    if grouping == "thread":
        return (key.pid, key.tid)
    return (key.pid, name, key.abi)


def _identity(grouping: str, key: StatKey, name: str, snapshot: Snapshot) -> dict[str, object]:
    comm = _comm(snapshot, key.pid)
    if grouping == "syscall":
        return {"name": name, "nr": key.nr, "abi": key_abi(snapshot, key)}
    if grouping == "comm":
        return {"comm": comm, "procs": 0}
    if grouping == "process":
        return {"pid": key.pid, "comm": comm, "container": _container(snapshot, key.pid)}
    if grouping == "thread":  # the thread's own name (io-0, worker), else its process's
        return {"pid": key.pid, "tid": key.tid, "comm": _thread_comm(snapshot, key.pid, key.tid),
                "container": _container(snapshot, key.pid)}
    return {"pid": key.pid, "comm": comm, "name": name, "nr": key.nr,
            "abi": key_abi(snapshot, key)}


def _comm(snapshot: Snapshot, pid: int) -> str:
    """The process's name as shown (control characters escaped): `comm=` filters match
    what the user sees and can type."""
    info = snapshot.processes.get(pid)
    return _shown_comm(info.comm) if info else "?"


def _thread_comm(snapshot: Snapshot, pid: int, tid: int) -> str:
    """A thread's name as shown (escaped, like _comm)."""
    info = snapshot.processes.get(pid)
    return _shown_comm(info.thread_name(tid)) if info else "?"


@lru_cache(maxsize=4096)
def _shown_comm(comm: str) -> str:
    # Asked for every changed entry of every snapshot: a few hundred distinct names.
    return sanitize(comm)


def _container(snapshot: Snapshot, pid: int) -> str:
    info = snapshot.processes.get(pid)
    return (info.container if info else "") or "-"


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
        self.timing = "exact"  # the snapshots' timing mode: how time cells are marked
        self._names: dict[tuple[StatKey, str], str] = {}
        self._aggs: dict[str, dict[RowKey, Aggregate]] = {
            g.key: {} for g in GROUPINGS}
        # Per syscall grouping: the ABI codes each name has rows under. A name with two is
        # labelled with each row's ABI (`getppid (i386)`).
        self._abis: dict[str, dict[str, set[int]]] = {g: {} for g in _BY_SYSCALL}
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
        # A live window's start (None: no window), and this epoch's expected errors per
        # snapshot (its ts_ns) over the longest window, to count a window's.
        self.window_from_ns: int | None = None
        self._expected_log: deque[tuple[int, dict[StatKey, int]]] = deque()

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

    def feed(self, snapshot: Snapshot, window_from_ns: int | None = None) -> None:
        """`window_from_ns`: the snapshot's stats are a live window's, of the snapshots that
        ended after that time (SessionView.window.cutoff_ns); the rows are rebuilt from them.
        The same snapshot fed again (another window chosen) leaves the rates as they are."""
        self._count_events(snapshot)
        if snapshot.timing != self.timing:  # another trace or session: cells marked anew
            self.timing = snapshot.timing
            self._stale = {g.key for g in GROUPINGS}
        again = (snapshot.seq, snapshot.epoch) == (self._seq, self._epoch)
        follows = self._seq is not None and snapshot.seq == self._seq + 1 \
            and snapshot.epoch == self._epoch
        self._check_comms(snapshot)
        windowed = self.window_from_ns is not None or window_from_ns is not None
        self.window_from_ns = window_from_ns
        if follows and not windowed:
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
        if not again:
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
            self._expected_log.clear()
        counts = expected_error_counts(snapshot.events)
        for key, n in counts.items():
            self._expected[key] = self._expected.get(key, 0) + n
        self._events_seen = (snapshot.epoch, snapshot.seq)
        log = self._expected_log
        if counts:
            log.append((snapshot.ts_ns, dict(counts)))
        oldest = snapshot.ts_ns - round(MAX_SPAN_S * 1e9)
        while log and (log[0][0] <= oldest or len(log) > EXPECTED_LOG_LIMIT):
            log.popleft()

    def _expected_counts(self) -> dict[StatKey, int]:
        """The expected errors of what the rows count: the epoch's, or the window's."""
        since = self.window_from_ns
        if since is None:
            return self._expected
        counts: dict[StatKey, int] = {}
        for ts_ns, entries in reversed(self._expected_log):
            if ts_ns <= since:
                break
            for key, n in entries.items():
                counts[key] = counts.get(key, 0) + n
        return counts

    def _count_totals(self, entries: Mapping[StatKey, SyscallStats]) -> None:
        for stats in entries.values():
            self.grand_total += stats.total_ns
            self.total_calls += stats.count

    def _rebuild(self, grouping: Grouping) -> None:
        """One grouping from the last snapshot's totals (after a filter change, a reset...)."""
        self._aggs[grouping.key] = {}
        self._credited[grouping.key] = {}
        if grouping.key in _BY_SYSCALL:
            self._abis[grouping.key] = {}
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
        expected = self._expected_counts()
        for key, stats in entries.items():
            self._add_entry(snapshot, key, stats, groupings, expected)
        for key in expected_keys:
            if key not in entries and key in snapshot.stats:
                self._add_entry(snapshot, key, None, groupings, expected)

    def _add_entry(self, snapshot: Snapshot, key: StatKey, stats: SyscallStats | None,
                   groupings: list[Grouping], expected_of: Mapping[StatKey, int]) -> None:
        name = self._selected_name(snapshot, key)
        if name is None:
            return
        comm = _comm(snapshot, key.pid) if any(g.key == "comm" for g in groupings) else ""
        expected = expected_of.get(key, 0)
        for g in groupings:
            aggs = self._aggs[g.key]
            gkey = _group_key(g.key, key, name, comm)
            agg = aggs.get(gkey)
            if agg is None:
                if stats is None:
                    continue
                identity = _identity(g.key, key, name, snapshot)
                agg = aggs[gkey] = Aggregate(self, g, gkey, identity)
                if g.key in _BY_SYSCALL:
                    self._label_abis(g.key, agg, name, key.abi)
            if stats is not None:
                agg.add(stats)
            if agg.pids is not None:
                agg.add_pid(key.pid)
                self._comm_of[key.pid] = comm
            credited = self._credited[g.key]
            if expected != credited.get(key, 0):
                agg.add_expected(expected - credited.get(key, 0))
                credited[key] = expected

    def _label_abis(self, grouping: str, agg: Aggregate, name: str, abi: int) -> None:
        """A new syscall row: where its name now has rows under two ABIs, every row of that
        name shows its ABI (rare: only then are the grouping's rows looked through)."""
        abis = self._abis[grouping].setdefault(name, set())
        abis.add(abi)
        if len(abis) < 2:
            return
        for other in self._aggs[grouping].values():
            if other.row.key[-1] in abis and other.row.key[-2] == name:
                other.set_identity("name", labelled(name, str(other.identity["abi"])))

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
        """A process's comm changes at exec, a thread's when it is renamed: update the rows
        of processes that changed (a rename may name only its thread)."""
        changed = {e.pid for e in snapshot.proc_events}
        if not changed:
            return
        tids = {e.tid for e in snapshot.proc_events}
        for g in GROUPINGS:
            if "pid" not in grouping_columns(g):
                continue
            for agg in self._aggs[g.key].values():
                pid = agg.identity["pid"]
                if g.key == "thread" and (pid in changed or agg.identity["tid"] in tids):
                    tid = agg.identity["tid"]
                    assert isinstance(pid, int) and isinstance(tid, int)
                    agg.set_identity("comm", _thread_comm(snapshot, pid, tid))
                elif pid in changed:
                    agg.set_identity("comm", _comm(snapshot, pid))
                    if "container" in agg.identity:
                        agg.set_identity("container", _container(snapshot, pid))

    def _selected_name(self, snapshot: Snapshot, key: StatKey) -> str | None:
        """The entry's syscall name, or None when the filter's key terms leave it out."""
        name = self._name(snapshot, key)
        flt = self.filter
        if flt is not None and flt.has_key_terms and not flt.matches_key(
            name=name, nr=key.nr, pid=key.pid, tid=key.tid, comm=_comm(snapshot, key.pid),
            thread_comm=_thread_comm(snapshot, key.pid, key.tid)
        ):
            return None
        return name

    def _name(self, snapshot: Snapshot, key: StatKey) -> str:
        # The key holds the call's ABI, which names it; the host's arch and the probes are
        # the same for every snapshot of a trace.
        name = self._names.get((key, snapshot.arch))
        if name is None:
            name = self._names[(key, snapshot.arch)] = key_name(snapshot, key)
        return name

    def sorted_by(self, column: str) -> str:
        """The column rows are sorted by when `column` is asked: with timing off nothing was
        timed (every time 0), so a time column sorts by calls, the busiest rows first."""
        if self.timing == Timing.OFF and (column in _TIME_SORTS or column == "time_pct"):
            return "count"
        return column

    def rows(self, grouping: Grouping, sort: str = DEFAULT_SORT,
             reverse: bool = True) -> list[Row]:
        """The rows of a grouping, metric-filtered and sorted (reverse: largest first)."""
        self.shown = grouping.key
        if grouping.key in self._stale:
            self._rebuild(grouping)
        aggs: Iterable[Aggregate] = self._aggs[grouping.key].values()
        flt = self.filter
        if flt is not None and flt.has_metric_terms:
            aggs = [a for a in aggs if flt.matches_row(a)]
        # %time orders like total time, and is cheaper to sort by. Ties break by name, then
        # pid, so rows keep their places from one render to the next.
        column = "total_ns" if sort == "time_pct" else sort
        column = self.sorted_by(column)
        primary: Callable[[Aggregate], Any]
        if column in ATTRIBUTES:
            primary = attrgetter(column)
        elif column in grouping_columns(grouping):
            def primary(a: Aggregate) -> Any:
                return a.identity[column]
        else:
            primary = itemgetter(column)
        numeric = next(c.numeric for c in columns(grouping) if c.key == sort)
        if numeric and reverse:  # largest first, but ties still by name A to Z
            def key(a: Aggregate) -> tuple[object, ...]:
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
