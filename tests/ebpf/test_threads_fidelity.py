"""Threads on the real kernel (root): each thread under its own name (prctl PR_SET_NAME, or
renamed by another thread through /proc/self/task/TID/comm), the threads running counted
apart from every thread seen, and a storm of 2,000 threads that is one process, never a
thread taken for a child process."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.ebpf.conftest import HERE, TraceRun
from tests.helpers import wait_until
from tracing.engine import task_offsets
from tracing.engine.tracer import TraceConfig, Tracer
from tracing.model.report import key_name
from tracing.model.stats import ProcessInfo

pytestmark = pytest.mark.ebpf

PYTHON = "/usr/bin/python3"
Trace = Callable[..., TraceRun]

# Three threads name themselves with prctl(PR_SET_NAME); a fourth is renamed by the main
# thread (as pthread_setname_np does for another thread: a write to its comm file). Each
# makes one getppid. They run until DIR/go; DIR/tids says which thread is which.
NAMED = """
import ctypes, json, os, sys, threading, time
libc = ctypes.CDLL(None, use_errno=True)
d = sys.argv[1]
names = {}
ready = threading.Barrier(5)

def run(name):
    if name:
        assert libc.prctl(15, ctypes.c_char_p(name.encode()), 0, 0, 0) == 0
    names[threading.get_native_id()] = name
    os.getppid()
    ready.wait()
    while not os.path.exists(d + "/go"):
        time.sleep(0.01)

threads = [threading.Thread(target=run, args=(n,)) for n in ("io-0", "io-1", "worker", "")]
for t in threads:
    t.start()
ready.wait()
(other,) = [tid for tid, n in names.items() if not n]
with open(f"/proc/self/task/{other}/comm", "w") as f:
    f.write("from-main")
names[other] = "from-main"
with open(d + "/tids.tmp", "w") as f:
    json.dump(names, f)
os.rename(d + "/tids.tmp", d + "/tids")
for t in threads:
    t.join()
"""

STORM_N, STORM_KEEP = 2_000, 5


def process_of(tracer: Tracer) -> ProcessInfo | None:
    command, snapshot = tracer.command, tracer.last_snapshot
    if command is None or snapshot is None:
        return None
    return snapshot.processes.get(command.pid)


def test_each_thread_shows_its_own_name(trace: Trace, tmp_path: Path) -> None:
    expected: dict[int, str] = {}
    seen: list[ProcessInfo] = []

    def watch(tracer: Tracer) -> None:
        wait_until(lambda: (tmp_path / "tids").exists(), "the named threads", timeout=60)
        expected.update({int(t): n for t, n in json.loads((tmp_path / "tids").read_text())
                         .items()})
        info = wait_until(
            lambda: (p := process_of(tracer)) is not None and dict(p.thread_names) == expected
            and p, "every thread's name", seen=lambda: process_of(tracer))
        assert isinstance(info, ProcessInfo)
        seen.append(info)
        (tmp_path / "go").touch()

    run = trace(TraceConfig(command=(PYTHON, "-c", NAMED, str(tmp_path))), timeout=120,
                while_running=watch)
    command = run.tracer.command
    assert command is not None and run.last.target_exit is not None
    assert run.last.target_exit.code == 0
    (running,) = seen
    assert len(expected) == 4 and sorted(expected.values()) == [
        "from-main", "io-0", "io-1", "worker"]
    assert running.comm == "python3"
    assert (running.live_thread_count, running.thread_total) == (5, 5)
    assert {t: running.thread_name(t) for t in expected} == expected
    # At the end, every thread's calls are under its own name, the main one's under the
    # process's; none is running.
    info = run.last.processes[command.pid]
    tids = {k.tid for k in run.last.stats if k.pid == command.pid}
    assert tids == {command.pid, *expected}
    assert {t: info.thread_name(t) for t in tids} == {command.pid: "python3", **expected}
    assert (info.live_thread_count, info.thread_total) == (0, 5)
    assert set(run.last.processes) == {command.pid}


def _storm(trace: Trace, tmp_path: Path) -> tuple[TraceRun, ProcessInfo, int]:
    """The storm traced: the run, the process as seen while STORM_KEEP threads still ran
    (its lost exits are found missing from /proc/PID/task every few seconds), its pid."""
    binary = tmp_path / "thread_storm"
    subprocess.run(["gcc", "-O2", "-pthread", "-o", str(binary), str(HERE / "thread_storm.c")],
                   check=True)
    seen: list[ProcessInfo] = []

    def watch(tracer: Tracer) -> None:
        wait_until(lambda: (tmp_path / "ready").exists(), "the storm", timeout=60)
        # The N - K ended threads' exit events may come a tick after the workload joined
        # them (the kernel wakes the joiner first).
        # Names lost with their rename events are read again from /proc (after a loss).
        info = wait_until(
            lambda: (p := process_of(tracer)) is not None
            and (p.live_thread_count, p.thread_total) == (STORM_KEEP + 1, STORM_N + 1)
            and _running_names(p) == {f"st-{i}" for i in range(STORM_KEEP)} and p,
            "the running threads counted and named",
            seen=lambda: (_counts(process_of(tracer)), _running_names(process_of(tracer))))
        assert isinstance(info, ProcessInfo)
        seen.append(info)
        (tmp_path / "go").touch()

    run = trace(TraceConfig(command=(str(binary), str(tmp_path), str(STORM_N),
                                     str(STORM_KEEP))), timeout=180, while_running=watch)
    command = run.tracer.command
    assert command is not None and run.last.target_exit is not None
    assert run.last.target_exit.code == 0
    # No thread ever shows as a process, whatever the kernel could deliver.
    assert all(set(s.processes) == {command.pid} for s in run.snapshots)
    (running,) = seen
    assert {running.thread_name(t) for t in running.live_threads or ()} == {
        f"st-{i}" for i in range(STORM_KEEP)}
    info = run.last.processes[command.pid]
    assert (info.live_thread_count, info.thread_total) == (0, STORM_N + 1)
    return run, info, command.pid


def test_a_storm_of_threads_is_one_process(trace: Trace, tmp_path: Path) -> None:
    run, info, pid = _storm(trace, tmp_path)
    assert {k.tid for k in run.last.stats if k.pid == pid} <= {pid, *info.threads}
    # Every thread's own getppid, under its own name when its name was kept.
    getppid = [k for k, s in run.last.stats.items() if s.count and k.pid == pid
               and k.tid != pid and key_name(run.last, k) == "getppid"]
    assert len(getppid) == STORM_N
    assert all(run.last.stats[k].count == 1 for k in getppid)
    if not run.last.drops.proc_events:
        assert {info.thread_name(k.tid) for k in getppid} == {f"st-{i}" for i in
                                                              range(STORM_N)}
    assert info.thread_names_dropped == 0


def test_a_storm_whose_process_events_are_lost_is_still_one_process(
        trace: Trace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a process event ring of one page most fork, rename and exit events are lost:
    the threads are known from their calls (keyed by their process) and /proc."""
    monkeypatch.setattr(task_offsets, "PROC_EVENTS_BYTES", 1)
    run, _, _ = _storm(trace, tmp_path)
    assert run.last.drops.proc_events > 0  # the point of the test


def _running_names(info: ProcessInfo | None) -> set[str]:
    return set() if info is None else {info.thread_name(t) for t in info.live_threads or ()}


def _counts(info: ProcessInfo | None) -> tuple[int, int] | None:
    return None if info is None else (info.live_thread_count, info.thread_total)


@pytest.fixture(autouse=True)
def _readable(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)  # a command launched as the invoking user reaches it
