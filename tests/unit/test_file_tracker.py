"""The FileTracker over hand-built batches: descriptor names on records, exact per-file
totals when descriptor numbers are reused, handovers, exec, fork and exit, and the order of
process events among the records."""

from __future__ import annotations

import dataclasses
import errno
import os
from collections.abc import Mapping

import numpy as np
import pytest

from tests.fd_helpers import AT_FDCWD, PID, Calls, by_path, io, names, path, proc, tracker
from tracing.engine.tracer import _joined, _selected
from tracing.model.captures import IoTotals
from tracing.model.file_tracker import RETAIN_EVERY_S, RETAIN_MAX, FileTracker
from tracing.model.files import FileKey, FileStats, merge_files
from tracing.model.selection import EventSelection
from tracing.model.snapshots import SnapshotBuilder, rebase
from tracing.model.stats import Drops, ProcKind, Snapshot, TraceState

K, L = 1234, 777


def test_a_reused_descriptor_number_never_mixes_two_files() -> None:
    files = tracker()
    records = (Calls().openat(b"/tmp/A", 3, os.O_WRONLY).write(3, K)
               .close(3, IoTotals(calls=2, writes=1, bytes_written=K, io_ns=50))
               .openat(b"/tmp/B", 3, os.O_WRONLY).write(3, L).apply(files))
    files.live({(PID, 3): IoTotals(calls=1, writes=1, bytes_written=L, io_ns=9)})
    assert by_path(files) == {b"/tmp/A": (1, 0, 2, 0, 0, 1, K, 50),
                              b"/tmp/B": (1, 0, 1, 0, 0, 1, L, 9)}
    # Each write names the file its descriptor meant at that moment.
    fd_names = [files.paths.name(p) for p in records["fd_path"].tolist()]
    assert fd_names == [b"", b"/tmp/A", b"/tmp/A", b"", b"/tmp/B"]


def test_the_live_totals_are_replaced_each_tick_not_added() -> None:
    files = tracker()
    Calls().openat(b"/var/log/x", 4).apply(files)
    files.live({(PID, 4): IoTotals(calls=1, reads=1, bytes_read=10)})
    files.live({(PID, 4): IoTotals(calls=3, reads=3, bytes_read=30)})
    assert by_path(files) == {b"/var/log/x": (1, 0, 3, 3, 30, 0, 0, 0)}


def test_failed_opens_count_by_errno_per_path() -> None:
    files = tracker()
    calls = Calls()
    for _ in range(3):
        calls.openat(b"/etc/missing", -errno.ENOENT)
    calls.openat(b"/etc/shadow", -errno.EACCES).openat(b"/etc/missing", -errno.EACCES)
    calls.apply(files)
    stats = {files.paths.name(k.path_id): s for k, s in files.files().items()}
    assert stats[b"/etc/missing"].open_errors == ((errno.ENOENT, 3), (errno.EACCES, 1))
    assert stats[b"/etc/missing"].open_failures == 4
    assert stats[b"/etc/missing"].opens == 0
    assert stats[b"/etc/shadow"].open_errors == ((errno.EACCES, 1),)
    assert names(files) == {}


def test_dup2_over_an_open_descriptor_hands_its_totals_to_its_file() -> None:
    files = tracker()
    Calls().openat(b"/a", 3).openat(b"/b", 4).call(
        "dup2", (3, 4), 4, io(4, IoTotals(calls=5, reads=5, bytes_read=500))).apply(files)
    assert names(files) == {3: b"/a", 4: b"/a"}
    files.live({(PID, 3): IoTotals(calls=1), (PID, 4): IoTotals(calls=2)})
    assert by_path(files) == {b"/a": (1, 0, 3, 0, 0, 0, 0, 0),
                              b"/b": (1, 0, 5, 5, 500, 0, 0, 0)}


def test_pipe_ends_share_one_name_and_each_pair_its_own() -> None:
    files = tracker()
    Calls().pipe2((5, 6)).pipe2((7, 8), os.O_CLOEXEC).apply(files)
    assert names(files) == {5: b"pipe:[1]", 6: b"pipe:[1]", 7: b"pipe:[2]", 8: b"pipe:[2]"}
    table = files.table.tables[PID]
    assert [table[fd].cloexec for fd in (5, 6, 7, 8)] == [False, False, True, True]


def test_exec_drops_cloexec_descriptors_and_their_totals_follow_them() -> None:
    files = tracker()
    Calls().openat(b"/keep", 3).openat(b"/lib.so", 4, os.O_CLOEXEC).apply(files)
    files.apply_batch(*_empty(), (proc(ProcKind.EXEC, 100),))
    assert names(files) == {3: b"/keep"}
    # The kernel still holds /lib.so's totals under (pid, 4): they stay /lib.so's.
    files.live({(PID, 4): IoTotals(calls=7)})
    assert by_path(files)[b"/lib.so"] == (1, 0, 7, 0, 0, 0, 0, 0)
    # Number 4 reused: the kernel hands the old totals over with the open.
    Calls(ts=200).openat(b"/new", 4, handover=io(4, IoTotals(calls=7))).apply(files)
    files.live({(PID, 4): IoTotals(calls=1)})
    assert by_path(files) == {b"/keep": (1, 0, 0, 0, 0, 0, 0, 0),
                              b"/lib.so": (1, 0, 7, 0, 0, 0, 0, 0),
                              b"/new": (1, 0, 1, 0, 0, 0, 0, 0)}


def test_a_descriptor_wrongly_taken_for_cloexec_is_back_once_used() -> None:
    # Python's os.set_inheritable clears O_CLOEXEC with ioctl(FIONCLEX), which the table
    # does not see: exec drops the descriptor, the shell's dup2 from it shows it open.
    files = tracker()
    Calls().openat(b"/kept", 5, os.O_CLOEXEC).apply(files)
    files.apply_batch(*_empty(), (proc(ProcKind.EXEC, 100),))
    records = Calls(ts=200).write(5, 3).call("dup2", (5, 1), 1).write(1, 5).apply(files)
    assert [files.paths.name(p) for p in records["fd_path"].tolist()] == [b"/kept"] * 3
    assert names(files) == {1: b"/kept", 5: b"/kept"}


def test_process_events_apply_between_the_records_they_happened_between() -> None:
    files = tracker()
    # open(O_CLOEXEC) = 3 at ts 10, exec at ts 15, open(O_CLOEXEC) = 3 at ts 20.
    calls = Calls().openat(b"/before", 3, os.O_CLOEXEC).openat(b"/after", 3, os.O_CLOEXEC)
    calls.apply(files, (proc(ProcKind.EXEC, 15),))
    assert names(files) == {3: b"/after"}


def test_fork_copies_the_table_and_the_child_changes_only_its_own() -> None:
    files = tracker()
    child = PID + 1
    Calls().openat(b"/shared", 3).apply(files, (proc(ProcKind.FORK, 15, tid=child),))
    Calls(pid=child, ts=20).close(3).apply(files)
    assert names(files) == {3: b"/shared"}
    assert names(files, child) == {}


def test_a_new_thread_shares_its_process_table() -> None:
    files = tracker()
    thread = PID + 7
    Calls().openat(b"/x", 3).apply(files, (proc(ProcKind.FORK, 15, tid=thread),))
    files.apply_batch(*_empty(), (proc(ProcKind.EXIT, 30, tid=thread),))
    assert thread not in files.table.tables
    # The thread's calls carry the process id: they use and change the process's table.
    records = Calls(ts=40).read(3, 10).apply(files)
    assert files.paths.name(int(records["fd_path"][0])) == b"/x"


def test_a_fork_the_kernel_flags_as_a_thread_copies_nothing() -> None:
    files = tracker()
    thread = PID + 7
    fork = dataclasses.replace(proc(ProcKind.FORK, 15, tid=thread), thread=True)
    Calls().openat(b"/x", 3).apply(files, (fork,))
    assert list(files.table.tables) == [PID]
    Calls(ts=20).close(3).apply(files)  # a thread's call carries its process's id
    assert names(files) == {}


def _lost_child() -> tuple[FileTracker, int]:
    """PID forked CHILD, which opened /log as 3 and /lib.so as 4 (O_CLOEXEC), exec'd, and
    exited with its exit event lost; the kernel's live totals read."""
    files = tracker()
    child = PID + 1
    Calls().openat(b"/shared", 3).apply(files, (proc(ProcKind.FORK, 15, tid=child),))
    Calls(pid=child, ts=20).close(3).openat(b"/log", 3, os.O_WRONLY) \
        .openat(b"/lib.so", 4, os.O_CLOEXEC).apply(files)
    files.apply_batch(*_empty(), (proc(ProcKind.EXEC, 100, pid=child),))
    files.live({(child, 3): IoTotals(calls=2, writes=2, bytes_written=K),
                (child, 4): IoTotals(calls=1, reads=1, bytes_read=L),
                (PID, 3): IoTotals(calls=1, reads=1, bytes_read=10)})
    return files, child


def test_retain_forgets_processes_not_alive_and_hands_their_io_over_once() -> None:
    files, child = _lost_child()
    assert files.retain({PID}) == {child}
    assert list(files.table.tables) == [PID]
    assert not files.table.stale  # /lib.so's entry, dropped at exec, went with the table
    # The tracer takes the kernel's entries of the forgotten process, as at an exit.
    files.process_gone(child, {3: IoTotals(calls=2, writes=2, bytes_written=K),
                               4: IoTotals(calls=1, reads=1, bytes_read=L)})
    files.live({(PID, 3): IoTotals(calls=1, reads=1, bytes_read=10)})
    assert by_path(files, child) == {b"/log": (1, 0, 2, 0, 0, 2, K, 0),
                                     b"/lib.so": (1, 0, 1, 1, L, 0, 0, 0)}
    assert by_path(files) == {b"/shared": (1, 0, 1, 1, 10, 0, 0, 0)}
    assert files.retain({PID}) == set()


def test_retain_keeps_alive_processes_and_their_live_totals() -> None:
    files, child = _lost_child()
    assert files.retain({PID, child, 99}) == set()
    assert names(files, child) == {3: b"/log"}
    assert by_path(files, child)[b"/log"] == (1, 0, 2, 0, 0, 2, K, 0)


def test_retain_now_and_then_forgets_only_what_two_rounds_found_dead() -> None:
    files, child = _lost_child()
    other = PID + 2
    Calls(pid=other).openat(b"/o", 3).apply(files)
    assert files.retain_now_and_then({PID}, 100.0) == set()  # first seen not alive
    assert files.retain_now_and_then({PID}, 100.0 + RETAIN_EVERY_S - 0.5) == set()
    # `other` is known alive by the second round (its fork event came late): it stays.
    assert files.retain_now_and_then({PID, other}, 100.0 + RETAIN_EVERY_S) == {child}
    assert sorted(files.table.tables) == [PID, other]
    assert files.retain_now_and_then({PID}, 100.0 + 2 * RETAIN_EVERY_S) == set()
    assert files.retain_now_and_then({PID}, 100.0 + 3 * RETAIN_EVERY_S) == {other}


def test_retain_forgets_at_most_retain_max_at_a_time() -> None:
    files = tracker()
    calls = Calls()
    for pid in range(1000, 1000 + RETAIN_MAX + 3):
        calls.call("openat", (AT_FDCWD, 0x1000, os.O_RDONLY), 3, path(1, b"/f"), pid=pid)
    calls.apply(files)
    first = files.retain(set())
    assert first == set(range(1000, 1000 + RETAIN_MAX))
    assert files.retain(set()) == set(range(1000 + RETAIN_MAX, 1000 + RETAIN_MAX + 3))
    assert files.table.tables == {}


def test_exit_attributes_the_last_totals_once() -> None:
    files = tracker()
    Calls().openat(b"/log", 3, os.O_WRONLY).apply(files)
    files.apply_batch(*_empty(), (proc(ProcKind.EXIT, 50, gone=True),))
    # The live map was read before the exited process's entries were taken out.
    files.live({(PID, 3): IoTotals(calls=2, writes=2, bytes_written=K)})
    files.process_gone(PID, {3: IoTotals(calls=2, writes=2, bytes_written=K)})
    assert by_path(files) == {b"/log": (1, 0, 2, 0, 0, 2, K, 0)}
    assert names(files) == {}
    assert files.files() is files.files()  # nothing changed: the same mapping


def test_exit_without_its_event_seen_still_attributes() -> None:
    files = tracker()
    Calls().openat(b"/log", 3).apply(files)
    files.process_gone(PID, {3: IoTotals(calls=1)})
    assert by_path(files) == {b"/log": (1, 0, 1, 0, 0, 0, 0, 0)}


def test_live_totals_of_an_unknown_descriptor_wait_for_its_name() -> None:
    files = tracker()
    files.live({(PID, 9): IoTotals(calls=3)})
    assert by_path(files) == {}
    Calls().openat(b"/late", 9).apply(files)
    assert by_path(files) == {b"/late": (1, 0, 3, 0, 0, 0, 0, 0)}


def test_seeded_descriptors_name_records_and_unknown_ones_are_zero() -> None:
    files = tracker()
    files.seed(PID, {0: b"/dev/pts/3", 1: b"/dev/pts/3", 5: b"socket:[991]"}, cloexec=[5])
    records = Calls().write(1, 3).write(5, 4).write(8, 1).read(0, 1).apply(files)
    fd_names = [files.paths.name(p) for p in records["fd_path"].tolist()]
    assert fd_names == [b"/dev/pts/3", b"socket:[991]", b"", b"/dev/pts/3"]
    table = files.table.tables[PID]
    assert (table[5].kind, table[5].cloexec, table[0].kind) == ("socket", True, "file")


def test_records_of_i386_processes_use_their_own_numbers() -> None:
    files = tracker()
    Calls(abi=1).call("open", (0x1000, os.O_RDONLY), 3, path(0, b"/etc/hosts"),
                      abi_table="i386").apply(files)
    assert names(files) == {3: b"/etc/hosts"}


def test_records_that_touch_no_descriptor_cost_no_table_work() -> None:
    files = tracker()
    calls = Calls()
    for _ in range(5):
        calls.call("getpid", (), PID)
    records = calls.apply(files)
    assert records["fd_path"].tolist() == [0] * 5
    assert files.files() == {}


def _empty() -> tuple[np.ndarray, list[bytes]]:
    return Calls().records(), []


# -- into snapshots ----------------------------------------------------------------------------

def _snapshot(builder: SnapshotBuilder, events: np.ndarray, data: tuple[bytes, ...],
              files: Mapping[FileKey, FileStats]) -> Snapshot:
    return builder.build(ts_ns=1, wall_time=1.0, state=TraceState.TRACING, changes={},
                         events=events, event_data=data, files=files, proc_events=(),
                         processes={}, drops=Drops(), tracer_cpu_s=0.0,
                         selection=EventSelection(all=True))


def test_snapshots_carry_the_selected_events_captures_files_and_paths() -> None:
    files = tracker()
    calls = Calls().openat(b"/sel", 3).call("getpid", (), PID, selected=False)
    calls.openat(b"/missing", -errno.ENOENT)
    records = calls.apply(files)
    events, data = _selected(records, calls.data)
    assert events["nr"].tolist() == [257, 257] and data == (calls.data[0], calls.data[2])
    assert not events.flags.writeable
    builder = SnapshotBuilder(0, 0.0, "x86_64", paths=files.paths)
    snap = _snapshot(builder, events, data, files.files())
    assert snap.paths is files.paths and snap.selection == EventSelection(all=True)
    assert {snap.paths.name(k.path_id): s.opens for k, s in snap.files.items()} == {
        b"/sel": 1, b"/missing": 0}
    with pytest.raises(ValueError, match="1 captures for 2 events"):
        _snapshot(builder, events, data[:1], files.files())
    # Rebased (reset in a replay): no events, so no captures; the files stay whole.
    later = rebase(snap, snap)
    assert len(later.events) == 0 and later.event_data == () and later.files is snap.files


def test_batches_of_a_final_drain_join_with_their_captures() -> None:
    first = Calls().openat(b"/a", 3)
    second = Calls(ts=100).write(3, 1)
    records, data = _joined((first.records(), first.data), (second.records(), ()))
    assert len(records) == 2 and list(data) == [first.data[0], b""]
    assert _joined((records, data), (second.records()[:0], ()))[0] is records


def test_per_path_totals_merge_every_process() -> None:
    files = tracker()
    other = PID + 1
    Calls().openat(b"/shared", 3).openat(b"/gone", -errno.ENOENT).apply(files)
    Calls(pid=other).openat(b"/shared", 4).openat(b"/gone", -errno.ENOENT).apply(files)
    files.live({(PID, 3): IoTotals(1, 1, 5), (other, 4): IoTotals(2, 0, 0, 2, 7)})
    merged = {files.paths.name(p): s for p, s in merge_files(files.files()).items()}
    assert merged[b"/shared"] == FileStats(opens=2, calls=3, reads=1, bytes_read=5, writes=2,
                                           bytes_written=7)
    assert merged[b"/gone"].open_errors == ((errno.ENOENT, 2),)
