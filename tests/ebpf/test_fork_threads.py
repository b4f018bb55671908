"""Threads and processes told apart at fork on the real kernel (root): a thread, made by
clone or clone3 with CLONE_THREAD, shares its process's descriptor table (no copy is made
for it) and its I/O counts for its process exactly; a child made by fork or vfork still
starts with a copy of its parent's table and names its inherited descriptors."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.ebpf.conftest import HERE, TraceRun
from tests.helpers import wait_until
from tracing.engine.tracer import TraceConfig, Tracer
from tracing.model.stats import ProcEvent, ProcKind

pytestmark = pytest.mark.ebpf

PYTHON = "/usr/bin/python3"
THREADS, K, L = 8, 1_000, 4_321
Trace = Callable[..., TraceRun]

# pthread_create (clone3 in this C library) makes THREADS threads; each opens its own file,
# writes (i + 1) * 100 bytes to it and K bytes to a descriptor the process opened before.
# With every thread alive, the process waits for the test's go; then a fork child writes L
# bytes through the inherited descriptor.
WORKER = """
import os, sys, threading, time
shared = os.open(sys.argv[1] + "/shared", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
n, k, l = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
wrote = threading.Barrier(n + 1)
done = threading.Event()

def work(i):
    fd = os.open(f"{sys.argv[1]}/t-{i}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, b"t" * (i + 1) * 100)
    os.close(fd)
    os.write(shared, b"s" * k)
    wrote.wait()
    done.wait()

threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
for t in threads:
    t.start()
wrote.wait()
open(sys.argv[1] + "/ready", "w").close()
while not os.path.exists(sys.argv[1] + "/go"):
    time.sleep(0.01)
done.set()
for t in threads:
    t.join()
child = os.fork()
if child == 0:
    os.write(shared, b"c" * l)
    os._exit(0)
os.waitpid(child, 0)
"""


def forks(run: TraceRun) -> list[ProcEvent]:
    return [e for s in run.snapshots for e in s.proc_events if e.kind == ProcKind.FORK]


def test_threads_share_one_table_and_a_fork_child_gets_its_copy(trace: Trace,
                                                                tmp_path: Path) -> None:
    tables_seen: set[int] = set()
    while_alive: list[set[int]] = []

    def watch(tracer: Tracer) -> None:
        wait_until(lambda: (tmp_path / "ready").exists(), "the threads' writes", timeout=60)
        command = tracer.command
        assert command is not None
        # Every thread's fork event is in once the tracer has seen them all as threads and
        # finished a tick after that.
        wait_until(lambda: len(tracer._tracker._threads.get(command.pid, ())) >= THREADS,
                   "the threads' fork events")
        first = tracer.last_snapshot
        wait_until(lambda: tracer.last_snapshot is not first, "a tick")
        while_alive.append(set(tracer._files.table.tables))
        (tmp_path / "go").touch()
        while tracer.running:  # no copy appears, however briefly it lives
            tables_seen.update(list(tracer._files.table.tables))
            time.sleep(0.01)

    run = trace(TraceConfig(command=(PYTHON, "-c", WORKER, str(tmp_path), str(THREADS),
                                     str(K), str(L))), timeout=120, while_running=watch)
    command = run.tracer.command
    assert command is not None and run.last.target_exit is not None
    assert run.last.target_exit.code == 0
    events = forks(run)
    threads = [e for e in events if e.thread]
    (child,) = [e for e in events if not e.thread]
    assert len(threads) == THREADS
    assert {e.pid for e in events} == {command.pid}
    assert while_alive == [{command.pid}]
    assert tables_seen <= {command.pid, child.tid}
    paths = run.last.paths
    assert paths is not None
    written = {(key.pid, paths.name(key.path_id)): (s.opens, s.writes, s.bytes_written)
               for key, s in run.last.files.items() if s.bytes_written}
    root = bytes(tmp_path)
    assert written == {
        (command.pid, root + b"/shared"): (1, THREADS, THREADS * K),
        (child.tid, root + b"/shared"): (0, 1, L),  # named from the copy of the table
        **{(command.pid, root + b"/t-%d" % i): (1, 1, (i + 1) * 100) for i in range(THREADS)},
    }


def test_threads_made_by_clone_are_flagged_and_fork_and_vfork_are_not(tmp_path: Path,
                                                                       trace: Trace) -> None:
    binary = tmp_path / "fork_threads"
    subprocess.run(["gcc", "-O2", "-o", str(binary), str(HERE / "fork_threads.c")], check=True)
    run = trace(TraceConfig(command=(str(binary),)))
    assert run.last.target_exit is not None and run.last.target_exit.code == 0
    events = forks(run)
    assert [e.thread for e in events] == [True, True, True, False, False]
    command = run.tracer.command
    assert command is not None
    assert {e.pid for e in events} == {command.pid}
    assert len({e.tid for e in events}) == 5


@pytest.fixture(autouse=True)
def _readable(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)  # a command launched as the invoking user reaches it
