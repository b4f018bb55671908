"""ProcessTracker's threads (no root): names per thread from creation, renames (with or
without the process the kernel could tell), live threads apart from all those seen, no
thread ever taken for a process when events are lost, and bounds on what is kept."""

from __future__ import annotations

import ctypes
import os
import subprocess
import threading
from collections.abc import Iterator

import pytest

from tracing.model.stats import ExitStatus, ProcessInfo, ProcEvent, ProcKind
from tracing.system import processes as processes_module
from tracing.system import threads as threads_module
from tracing.system.processes import ProcessTracker
from tracing.system.threads import ProcessThreads, read_thread_comm

# Ids no task has here (above the usual pid_max of 4194304 is refused; these are below it
# but far above what a test machine reaches): /proc has none of them.
ROOT = 3_900_000
TIDS = range(ROOT + 1, ROOT + 2_001)


def fork(tid: int, pid: int = ROOT, comm: str = "app", thread: bool = True) -> ProcEvent:
    return ProcEvent(1, ProcKind.FORK, pid, tid, pid, -1, False, comm, "", thread)


def exit_(tid: int, pid: int = ROOT, comm: str = "app", gone: bool = False,
          status: int = 0) -> ProcEvent:
    return ProcEvent(2, ProcKind.EXIT, pid, tid, 0, status, gone, comm, "")


def rename(tid: int, comm: str, pid: int = ROOT) -> ProcEvent:
    return ProcEvent(3, ProcKind.RENAME, pid, tid, 0, -1, False, comm, "")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tracker(clock: Clock) -> ProcessTracker:
    t = ProcessTracker(clock=clock)
    t.add_root(ROOT, 0)
    # The root has no /proc entry here: it is what its events say.
    t.processes[ROOT] = t.processes[ROOT].replace(comm="app")
    return t


def root(t: ProcessTracker) -> ProcessInfo:
    return t.snapshot()[ROOT]


def test_a_new_thread_is_named_as_its_creator_and_renames_follow(tracker: ProcessTracker) -> None:
    tracker.apply([fork(ROOT + 1, comm="app"), fork(ROOT + 2, comm="app")], follow=True)
    tracker.apply([rename(ROOT + 1, "io-0"), rename(ROOT + 2, "worker")], follow=True)
    # A thread made by a named thread starts with its creator's name.
    tracker.apply([fork(ROOT + 3, comm="worker")], follow=True)
    info = root(tracker)
    assert dict(info.thread_names) == {ROOT + 1: "io-0", ROOT + 2: "worker", ROOT + 3: "worker"}
    assert [info.thread_name(t) for t in (ROOT, ROOT + 1, ROOT + 2, ROOT + 3, ROOT + 9)] == [
        "app", "io-0", "worker", "worker", "app"]
    assert info.threads == info.live_threads == frozenset({ROOT + 1, ROOT + 2, ROOT + 3})
    assert (info.live_thread_count, info.thread_total) == (4, 4)


def test_a_rename_without_its_process_is_matched_by_thread(tracker: ProcessTracker) -> None:
    tracker.apply([fork(ROOT + 1)], follow=True)
    tracker.apply([rename(ROOT + 1, "io-0", pid=0)], follow=True)
    assert dict(root(tracker).thread_names) == {ROOT + 1: "io-0"}
    # The main thread's rename is the process's name; a task of no traced process is left.
    tracker.apply([rename(ROOT, "server", pid=0), rename(ROOT + 500, "x", pid=0)], follow=True)
    info = root(tracker)
    assert info.comm == "server"
    assert dict(info.thread_names) == {ROOT + 1: "io-0"}
    assert set(tracker.snapshot()) == {ROOT}


def test_a_rename_of_a_thread_whose_creation_was_lost_makes_it_known(
        tracker: ProcessTracker) -> None:
    tracker.apply([rename(ROOT + 7, "late")], follow=True)
    info = root(tracker)
    assert info.live_threads == frozenset({ROOT + 7})
    assert info.thread_name(ROOT + 7) == "late"


def test_live_threads_apart_from_every_thread_seen(tracker: ProcessTracker) -> None:
    tracker.apply([fork(t) for t in TIDS[:620]], follow=True)
    tracker.apply([exit_(t) for t in TIDS[2:620]], follow=True)
    info = root(tracker)
    assert info.live_threads == frozenset({ROOT + 1, ROOT + 2})
    assert (info.live_thread_count, info.thread_total) == (3, 621)
    assert len(info.threads) == 620
    # A thread's last name comes with its exit: its rows keep it.
    tracker.apply([exit_(ROOT + 1, comm="io-0")], follow=True)
    info = root(tracker)
    assert info.thread_name(ROOT + 1) == "io-0"
    assert (info.live_thread_count, info.thread_total) == (2, 621)
    # At the process's exit every thread ended; the name is the main thread's, not that
    # of the last thread to end.
    tracker.apply([exit_(ROOT + 2, comm="worker", gone=True, status=3 << 8)], follow=True)
    info = root(tracker)
    assert info.live_threads == frozenset() and info.exit == ExitStatus(code=3)
    assert (info.comm, info.live_thread_count, info.thread_total) == ("app", 0, 621)


def test_exec_ends_the_other_threads(tracker: ProcessTracker) -> None:
    tracker.apply([fork(ROOT + 1), fork(ROOT + 2)], follow=True)
    tracker.apply([ProcEvent(5, ProcKind.EXEC, ROOT, ROOT, 0, -1, False, "new", "/bin/new")],
                  follow=True)
    info = root(tracker)
    assert info.live_threads == frozenset() and info.thread_total == 3
    assert info.comm == "new"


def test_threads_are_never_processes_when_fork_events_are_lost(
        tracker: ProcessTracker) -> None:
    """2,000 threads: some fork events lost, some with no thread flag (their clone was not
    seen) made by threads already gone, some exit events lost. Every one is a thread."""
    lost_fork, unflagged, rest = TIDS[:500], TIDS[500:1000], TIDS[1000:]
    tracker.apply([fork(t, thread=False) for t in unflagged], follow=True)
    tracker.apply([fork(t) for t in rest], follow=True)
    # Threads known only through their calls (the kernel keys them by process), or their
    # exit (an exit event's pid is the thread's process).
    tracker.note_threads((ROOT, t) for t in lost_fork[:250])
    tracker.apply([exit_(t) for t in lost_fork[250:]], follow=True)
    tracker.apply([exit_(t) for t in unflagged[:250]], follow=True)  # the rest: exit lost
    tracker.note_threads((ROOT, t) for t in unflagged[250:])
    tracker.note_threads((ROOT, ROOT) for _ in range(3))
    shown = tracker.snapshot()
    assert set(shown) == {ROOT}
    assert tracker.alive == {ROOT}
    info = shown[ROOT]
    assert info.thread_total == 2_001
    assert info.threads == set(TIDS)
    # None of the lost or unflagged ones runs (no /proc entry here); the flagged ones do.
    assert info.live_threads == frozenset(rest)
    assert info.live_thread_count == 1_001


def test_a_task_gone_before_its_fork_was_read_becomes_what_its_exit_says(
        tracker: ProcessTracker) -> None:
    child, thread, quiet = ROOT + 10, ROOT + 11, ROOT + 12
    tracker.apply([fork(child, thread=False, comm="sh"), fork(thread, thread=False),
                   fork(quiet, thread=False)], follow=True)
    assert set(tracker.snapshot()) == {ROOT}  # nothing told yet
    tracker.apply([exit_(child, pid=child, comm="true", gone=True, status=1 << 8),
                   exit_(thread)], follow=True)
    # The third's exit is lost, but it made calls of its own: a process, gone.
    tracker.note_threads([(quiet, quiet)])
    shown = tracker.snapshot()
    assert set(shown) == {ROOT, child, quiet}
    assert (shown[child].ppid, shown[child].comm, shown[child].exit) == (
        ROOT, "true", ExitStatus(code=1))
    assert shown[quiet].exit == ExitStatus() and shown[quiet].ppid == ROOT
    assert shown[ROOT].threads == {thread}
    assert tracker.alive == {ROOT}


def test_an_entry_once_taken_for_a_process_goes_when_it_shows_as_a_thread(
        tracker: ProcessTracker) -> None:
    phantom = ROOT + 20
    tracker.processes[phantom] = ProcessInfo(phantom, ppid=ROOT, comm="app")
    tracker.alive.add(phantom)
    tracker._dirty.add(phantom)
    assert set(tracker.snapshot()) == {ROOT, phantom}
    tracker.note_threads([(ROOT, phantom)])
    assert set(tracker.snapshot()) == {ROOT}
    assert tracker.alive == {ROOT}
    # An ended process whose id a thread later reuses stays.
    ended = ROOT + 21
    tracker.processes[ended] = ProcessInfo(ended, ppid=1, exit=ExitStatus(code=0))
    tracker.apply([fork(ended)], follow=True)
    assert ended in tracker.snapshot()


def test_names_are_bounded_and_what_is_dropped_is_counted(
        tracker: ProcessTracker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads_module, "NAMES_MAX", 100)
    monkeypatch.setattr(threads_module, "ENDED_KEPT", 50)
    tracker.apply([fork(t) for t in TIDS[:150]], follow=True)
    info = root(tracker)
    assert len(info.thread_names) == 100 and info.thread_names_dropped == 50
    assert info.live_thread_count == 151  # counted, named or not
    # Ended threads make room for running ones' names, oldest first, and are forgotten
    # past ENDED_KEPT (still counted as seen).
    tracker.apply([exit_(t) for t in TIDS[:80]], follow=True)
    tracker.apply([rename(t, f"n{t - ROOT}") for t in TIDS[100:150]], follow=True)
    info = root(tracker)
    assert len(info.thread_names) <= 100
    assert all(info.thread_names[t] == f"n{t - ROOT}" for t in TIDS[100:150])
    assert len(info.threads) - len(info.live_threads or ()) <= 50
    assert info.live_threads == frozenset(TIDS[80:150])
    assert info.thread_total == 151


def test_pending_forks_are_bounded(tracker: ProcessTracker,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(processes_module, "PENDING_MAX", 10)
    tracker.apply([fork(t, thread=False) for t in TIDS[:30]], follow=True)
    assert list(tracker._pending) == list(TIDS[20:30])


def test_untrusted_names_are_kept_as_data(tracker: ProcessTracker) -> None:
    hostile = "\x1b[31m[b]x\x07"
    tracker.apply([fork(ROOT + 1), rename(ROOT + 1, hostile)], follow=True)
    assert root(tracker).thread_name(ROOT + 1) == hostile  # escaped where shown


def test_process_threads_counts() -> None:
    t = ProcessThreads(1)
    assert t.start(2, "a") and not t.start(2, "a") and not t.start(1, "main")
    t.end(2)
    t.end(3)  # never seen running: ended, counted
    assert t.start(2, "b")  # the id reused
    assert (t.live, list(t.ended), t.seen) == ({2}, [3], 2)


# -- with real threads of this process ---------------------------------------------------


PR_SET_NAME = 15


@pytest.fixture
def named_threads() -> Iterator[list[int]]:
    """Three threads of this process named with prctl(PR_SET_NAME), alive until the end."""
    libc = ctypes.CDLL(None, use_errno=True)
    names = [b"io-0", b"io-1", b"worker"]
    tids: list[int] = []
    ready = threading.Barrier(len(names) + 1)
    done = threading.Event()

    def run(name: bytes) -> None:
        assert libc.prctl(PR_SET_NAME, ctypes.c_char_p(name), 0, 0, 0) == 0
        tids.append(threading.get_native_id())
        ready.wait()
        done.wait()

    threads = [threading.Thread(target=run, args=(n,)) for n in names]
    for t in threads:
        t.start()
    ready.wait()
    yield tids
    done.set()
    for t in threads:
        t.join()


def test_attach_reads_each_threads_name(named_threads: list[int], clock: Clock) -> None:
    pid = os.getpid()
    tracker = ProcessTracker(clock=clock)
    tracker.add_root(pid, 0)
    info = tracker.snapshot()[pid]
    names = {info.thread_name(t) for t in named_threads}
    assert names == {"io-0", "io-1", "worker"}
    assert set(named_threads) <= info.threads
    assert read_thread_comm(pid, named_threads[0]) in names


def test_lost_thread_exits_are_found_in_proc(named_threads: list[int], clock: Clock) -> None:
    pid = os.getpid()
    tracker = ProcessTracker(clock=clock)
    tracker.add_root(pid, 0)
    gone = 3_900_999
    tracker.apply([fork(gone, pid=pid)], follow=True)  # its exit event lost
    assert gone in (tracker.snapshot()[pid].live_threads or ())
    tracker.prune_vanished()
    info = tracker.snapshot()[pid]
    assert gone not in (info.live_threads or ()) and gone in info.threads
    assert set(named_threads) <= (info.live_threads or set())
    # Checked again only after THREAD_CHECK_S.
    tracker.apply([fork(gone + 1, pid=pid)], follow=True)
    tracker.prune_vanished()
    assert gone + 1 in (tracker.snapshot()[pid].live_threads or ())
    clock.now += processes_module.THREAD_CHECK_S
    tracker.prune_vanished()
    assert gone + 1 not in (tracker.snapshot()[pid].live_threads or ())


def test_a_name_for_a_thread_forgotten_to_make_room_is_not_kept(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads_module, "NAMES_MAX", 2)
    t = ProcessThreads(1)
    t.start(2, "b")
    t.start(3, "c")
    t.start(4, "d")  # no room: not named
    t.end(4)
    t.end(2)
    assert (list(t.ended), t.names, t.names_dropped) == ([4, 2], {2: "b", 3: "c"}, 1)
    t.end(4, "late")  # its last name: room is made by forgetting the oldest ended, itself
    assert (list(t.ended), t.names, t.seen) == ([2], {2: "b", 3: "c"}, 3)


def test_a_process_gone_before_its_fork_was_read_keeps_its_parent_through_exec(
        tracker: ProcessTracker) -> None:
    child = ROOT + 30
    tracker.apply([fork(child, thread=False, comm="sh"),
                   ProcEvent(4, ProcKind.EXEC, child, child, 0, -1, False, "true", "/bin/true"),
                   exit_(child, pid=child, comm="true", gone=True)], follow=True)
    shown = tracker.snapshot()
    assert (shown[child].ppid, shown[child].comm, shown[child].exe) == (ROOT, "true",
                                                                         "/bin/true")
    assert shown[child].exit == ExitStatus(code=0) and tracker.alive == {ROOT}


def test_a_child_keeps_the_parent_its_fork_named_when_proc_says_it_was_adopted(
        tracker: ProcessTracker) -> None:
    """The parent ended before the events were read (a busy machine): /proc names the
    process that adopted the child, the fork event its real parent."""
    parent = ROOT + 40
    child = subprocess.Popen(["/bin/sleep", "30"])  # alive; /proc says this test is its parent
    try:
        tracker.apply([fork(parent, thread=False, comm="sh"),  # gone: no /proc entry
                       fork(child.pid, pid=parent, thread=False, comm="sh"),
                       exit_(parent, pid=parent, comm="sh", gone=True),
                       ProcEvent(5, ProcKind.EXEC, child.pid, child.pid, 0, -1, False, "sleep",
                                 "/bin/sleep")], follow=True)
        shown = tracker.snapshot()
        assert shown[child.pid].ppid == parent and shown[parent].ppid == ROOT
    finally:
        child.kill()
        child.wait()
