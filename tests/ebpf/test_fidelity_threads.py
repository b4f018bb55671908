"""2,000 threads alive together are one process (issue 16, "Must show" 4, the thread half;
tests/ebpf/test_churn.py has the 20,000 processes): no thread shows as a process of its own,
every thread's calls count for its process, and no process event is lost.

many_threads.c starts N threads with pthread_create (clone3), each makes one getppid, waits
until all N are alive, and ends (the exit system call); the process exits 0."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.ebpf.fidelity import record

pytestmark = pytest.mark.ebpf

THREADS = 2_000


def test_two_thousand_threads_are_one_process(c_program: Callable[[str], str]) -> None:
    run = record([c_program("many_threads"), str(THREADS)])
    assert run.returncode == 0, run.stderr[-3000:]
    pid = run.command_pid
    phantoms = sorted(set(run.processes) - {pid})
    assert not phantoms, (f"{len(phantoms)} threads shown as processes (first: "
                          f"{phantoms[:10]}); drops: {run.drops()}")
    assert run.drops() == {}
    assert set(run.per_pid) == {pid}
    proc = run.processes[pid]
    assert (proc["exit_code"], proc["exit_signal"]) == (0, None)
    calls = run.per_pid[pid]
    assert calls[("x86_64", "getppid")] == (THREADS, 0)  # one in each thread, none in main
    assert calls[("x86_64", "clone3")] == (THREADS, 0)
    assert calls[("x86_64", "exit")] == (THREADS, 0)  # each thread's own end
    assert calls[("x86_64", "exit_group")] == (1, 0)
