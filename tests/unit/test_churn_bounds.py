"""Tracer memory under process churn (issue 16, no root): what the tracer keeps of exited
processes is bounded however long the churn runs, and no count or exit is lost for it."""

from __future__ import annotations

import dataclasses
import sqlite3
from types import MappingProxyType

from tests.unit.test_snapshot_fold import build, by_syscall, exit_of, stats
from tracing.model.snapshots import FOLDED_PID, SnapshotBuilder, folded_entry
from tracing.model.stats import ExitStatus, ProcessInfo, Snapshot, StatKey
from tracing.session.journal_writer import JournalWriter
from tracing.session.schema import apply_migrations


def test_entries_read_after_their_process_exit_are_folded_too() -> None:
    """Under load the kernel's entries of a process come a tick after its exit: they are
    folded like the others (they were kept for good), every per-syscall total exact."""
    builder = SnapshotBuilder(0, 0.0, "x86_64")
    builder.fold_after = 8
    last = None
    for tick in range(1, 201):
        pid = 1000 + tick
        # This tick: the exit of `pid`; its entries only at the next tick.
        late = {StatKey(pid - 1, pid - 1, 0): stats(2), StatKey(pid - 1, pid - 1, 1): stats(1)}
        last = build(builder, tick, late if tick > 1 else {}, (exit_of(pid),))
    assert last is not None
    held = {k.pid for k in last.stats if k.pid != FOLDED_PID}
    assert len(held) <= 8
    assert len(builder._entries_of) <= 8  # the per-pid index is bounded as well
    totals = by_syscall(last)
    assert (totals[0].count, totals[1].count) == (2 * 199, 199)


def _snapshot(processes: dict[int, ProcessInfo]) -> Snapshot:
    builder = SnapshotBuilder(0, 0.0, "x86_64")
    snapshot = build(builder, 1, {})
    return dataclasses.replace(snapshot, processes=MappingProxyType(processes))


def _process(pid: int, exited: bool) -> ProcessInfo:
    return ProcessInfo(pid=pid, ppid=1, comm="true",
                       exit=ExitStatus(code=0) if exited else None)


def test_the_journal_keeps_only_the_processes_of_its_last_snapshot() -> None:
    """The journal writer's copy of what it wrote follows the tracer's processes: folded ones
    are let go; each exit is written even when the snapshot with it is not a batch's last
    (a batch behind a slow flush), and the folded entry is not a process row."""
    db = sqlite3.connect(":memory:")
    with db:
        apply_migrations(db, 0)
    writer = JournalWriter()
    running = {pid: _process(pid, False) for pid in range(100, 110)}
    writer.flush(db, [_snapshot({1: _process(1, False), **running})], {})
    # 100..109 exit, then are folded, both within one batch.
    exited = {pid: _process(pid, True) for pid in range(100, 110)}
    folded = {1: _process(1, False), FOLDED_PID: folded_entry(10)}
    writer.flush(db, [_snapshot({1: _process(1, False), **exited}), _snapshot(folded)], {})
    assert set(writer.processes) == {1}
    rows = dict(db.execute("SELECT pid, exit_code FROM processes").fetchall())
    assert rows == {1: None, **{pid: 0 for pid in range(100, 110)}}
