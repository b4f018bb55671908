"""Bounded snapshots under process churn (no root): SnapshotBuilder folds the entries of
long-gone processes into one per syscall under pid 0, per-syscall totals stay exact, earlier
snapshots keep what they showed, and the journal keeps every process's own rows (a reused
pid's included) by adding up the intervals."""

from __future__ import annotations

import sqlite3

from tracing.model.persistent_map import PersistentMap
from tracing.model.snapshots import FOLDED_PID, SnapshotBuilder
from tracing.model.stats import (
    Drops,
    ProcEvent,
    ProcKind,
    Snapshot,
    StatKey,
    SyscallStats,
    TraceState,
    merge_stats,
    no_events,
)
from tracing.session.journal_writer import JournalWriter
from tracing.session.schema import apply_migrations


def stats(count: int) -> SyscallStats:
    return SyscallStats(count, 0, count * 100, 100, 100, ((100, count),))


def exit_of(pid: int) -> ProcEvent:
    return ProcEvent(ts_ns=1, kind=ProcKind.EXIT, pid=pid, tid=pid, ppid=1, status=0,
                     process_gone=True, comm="true", filename="")


def fork_of(pid: int) -> ProcEvent:
    return ProcEvent(ts_ns=1, kind=ProcKind.FORK, pid=1, tid=pid, ppid=1, status=0,
                     process_gone=False, comm="sh", filename="")


def build(builder: SnapshotBuilder, tick: int, changes: dict[StatKey, SyscallStats],
          proc_events: tuple[ProcEvent, ...] = ()) -> Snapshot:
    return builder.build(ts_ns=tick * 250_000_000, wall_time=float(tick),
                         state=TraceState.TRACING, changes=changes, events=no_events(),
                         proc_events=proc_events, processes={}, drops=Drops(),
                         tracer_cpu_s=0.0)


def by_syscall(snapshot: Snapshot) -> dict[int, SyscallStats]:
    groups: dict[int, list[SyscallStats]] = {}
    for key, value in snapshot.stats.items():
        groups.setdefault(key.nr, []).append(value)
    return {nr: merge_stats(items) for nr, items in groups.items()}


def churn(builder: SnapshotBuilder, processes: int) -> list[Snapshot]:
    """Each tick, a process (pid 100 + tick) makes 3 calls of 2 syscalls and exits."""
    snapshots = []
    for tick in range(processes):
        pid = 100 + tick
        changes = {StatKey(pid, pid, nr): stats(3) for nr in (0, 1)}
        snapshots.append(build(builder, tick, changes, (fork_of(pid), exit_of(pid))))
    return snapshots


def test_folded_entries_keep_every_syscall_total_and_stay_bounded() -> None:
    builder = SnapshotBuilder(0, 0.0, "x86_64")
    builder.fold_after = 8
    snapshots = churn(builder, 50)
    last = snapshots[-1]
    assert by_syscall(last) == {0: stats(150), 1: stats(150)}
    assert len(last.stats) <= builder.fold_after + 2 + 2  # held, this tick's, the folded
    assert {k for k in last.stats if k.pid == FOLDED_PID} == {StatKey(0, 0, 0), StatKey(0, 0, 1)}
    # An earlier snapshot still shows what it showed.
    assert by_syscall(snapshots[9]) == {0: stats(30), 1: stats(30)}
    assert StatKey(109, 109, 0) in snapshots[9].stats


def test_a_process_is_folded_only_after_a_snapshot_carried_its_final_totals() -> None:
    builder = SnapshotBuilder(0, 0.0, "x86_64")
    builder.fold_after = 0
    first = build(builder, 1, {StatKey(5, 5, 0): stats(1)}, (exit_of(5),))
    assert StatKey(5, 5, 0) in first.stats
    second = build(builder, 2, {StatKey(6, 6, 0): stats(1)})
    assert StatKey(5, 5, 0) not in second.stats
    assert second.stats[StatKey(0, 0, 0)] == stats(1)


def test_a_reused_pid_is_not_folded_while_it_lives() -> None:
    builder = SnapshotBuilder(0, 0.0, "x86_64")
    builder.fold_after = 0
    build(builder, 1, {StatKey(5, 5, 0): stats(1)}, (exit_of(5),))
    again = build(builder, 2, {StatKey(5, 5, 0): stats(3)}, (fork_of(5),))
    later = build(builder, 3, {StatKey(6, 6, 0): stats(1)})
    assert later.stats[StatKey(5, 5, 0)] == stats(3)
    assert again.interval[StatKey(5, 5, 0)] == stats(3) - stats(1)


def test_the_journal_keeps_each_process_rows_and_adds_a_reused_pid() -> None:
    db = sqlite3.connect(":memory:")
    with db:
        apply_migrations(db, 0)
    writer = JournalWriter()
    builder = SnapshotBuilder(0, 0.0, "x86_64")
    builder.fold_after = 2
    for snapshot in churn(builder, 20):
        writer.flush(db, [snapshot], {})
    # pid 100 exited and was folded; it comes back: its new counts start from zero in the
    # snapshots (the old ones are in the folded rows), and add to its row in the journal.
    reborn = build(builder, 30, {StatKey(100, 100, 0): stats(2)}, (fork_of(100),))
    assert reborn.interval[StatKey(100, 100, 0)] == stats(2)
    writer.flush(db, [reborn], {})
    rows = dict(((pid, nr), count) for pid, nr, count in
                db.execute("SELECT pid, nr, count FROM aggregates"))
    assert rows[(100, 0)] == 3 + 2
    assert all(rows[(pid, nr)] == 3 for pid in range(101, 120) for nr in (0, 1))
    assert FOLDED_PID not in {pid for pid, _ in rows}
    assert sum(c for (_, nr), c in rows.items() if nr == 0) == by_syscall(reborn)[0].count


def test_persistent_map_bulk_build_and_missing_keys() -> None:
    built = PersistentMap.from_lists(list(range(100)), [str(i) for i in range(100)])
    assert dict(built) == {i: str(i) for i in range(100)}
    assert built.missing([5, 100, 101, 99]) == [100, 101]
    newer = built.updated({100: "x"})
    assert built.missing([100]) == [100] and newer.missing([100]) == []
