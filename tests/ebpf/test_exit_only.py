"""--timing off counts each call at its exit alone (EXIT_ONLY in bpf/syscalls.bpf.c): the
calls whose exit does not say what they were, or that have none, or that return twice,
counted as exactly as with --timing exact and as strace counts them.

Workloads: tests/ebpf/exit_only.c.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Callable

import pytest

from syscall_tables import abi_syscall_name
from tests.ebpf.conftest import TraceRun, run_trace
from tests.ebpf.test_kernel_fidelity import strace_counts
from tracing.engine.tracer import TraceConfig
from tracing.model.selection import EventSelection
from tracing.model.timing import Timing

pytestmark = pytest.mark.ebpf


def traced(command: tuple[str, ...], timing: Timing,
           events: EventSelection = EventSelection.none) -> TraceRun:
    return run_trace(TraceConfig(command=command, timing=timing, events=events, sample_hz=0,
                                 tcp=False, docker=False))


def counts(run: TraceRun) -> Counter[tuple[str, int]]:
    """(name, 'calls'|'errors') over every traced process."""
    found: Counter[tuple[str, int]] = Counter()
    for key, s in run.last.stats.items():
        name = abi_syscall_name(run.last.arch, key.abi, key.nr)
        found[(name, 0)] += s.count
        found[(name, 1)] += s.errors
    return found


@pytest.fixture(scope="module")
def exit_only(c_program: Callable[[str], str]) -> str:
    return c_program("exit_only")


def test_the_engine_runs_exit_only() -> None:
    """This kernel (6.x, with BTF) takes the exit-only path: the program is built so."""
    from tracing.engine.program import EngineOptions, build_cflags

    flags = build_cflags(EngineOptions(timing=Timing.OFF), "x86_64")
    assert "-DEXIT_ONLY=1" in flags
    assert "-DEXIT_ONLY=0" in build_cflags(EngineOptions(timing=Timing.EXACT), "x86_64")


def test_handler_returns_are_counted_as_strace_counts_them(exit_only: str) -> None:
    """rt_sigreturn restores the registers, its number too: the frames handed to the
    thread's handlers say which call returned."""
    argv = (exit_only, "signals", "500")
    off, exact = counts(traced(argv, Timing.OFF)), counts(traced(argv, Timing.EXACT))
    assert off[("rt_sigreturn", 0)] == 1000
    assert off == exact
    assert strace_counts(list(argv))["rt_sigreturn"] == (1000, 0)


@pytest.mark.parametrize("timing", [Timing.OFF, Timing.EXACT], ids=str)
def test_exit_group_with_blocked_threads_is_counted_once(exit_only: str, timing: Timing) -> None:
    """The calling thread ends inside exit_group (counted at its exit); the other threads'
    reads return as they are killed (counted there, once each, not as failures)."""
    run = traced((exit_only, "threads", "6"), timing)
    assert run.last.target_exit is not None and run.last.target_exit.code == 5
    calls = counts(run)
    assert calls[("exit_group", 0)] == 1 and calls[("exit", 0)] == 0
    # Each thread's blocked read, the main thread's six reads of their bytes, the loader's.
    assert calls[("read", 0)] == 6 + 6 + 1 and calls[("read", 1)] == 0
    assert calls[("gettid", 0)] == 6 and calls[("clone3", 0)] == 6


def test_a_new_task_return_from_fork_is_not_a_call(exit_only: str) -> None:
    argv = (exit_only, "forks", "40")
    off = counts(traced(argv, Timing.OFF))
    forks = off[("fork", 0)] + off[("clone", 0)] + off[("clone3", 0)]
    assert forks == 40
    assert off[("getppid", 0)] == 40
    assert off[("exit_group", 0)] == 41  # each child's _exit, and the parent's return
    assert off == counts(traced(argv, Timing.EXACT))


def test_the_no_call_number_is_still_counted(exit_only: str) -> None:
    """syscall(-1) exits with the number -1 like a handler's return: with no frame given
    to a handler it is counted as the number -1 (ENOSYS), as sys_enter counts it."""
    run = traced((exit_only, "nocall", "25"), Timing.OFF)
    minus_one = [s for k, s in run.last.stats.items() if k.nr == 0xFFFF_FFFF and k.abi == 0]
    assert sum(s.count for s in minus_one) == sum(s.errors for s in minus_one) == 25
    assert counts(run)[("rt_sigreturn", 0)] == 0


def test_exec_fields_are_captured_while_events_are_selected(exit_only: str,
                                                            tmp_path) -> None:
    """sys_enter is attached only while events are selected: it captures an exec's path
    and arguments, which a successful exec replaces before its exit."""
    trace_file = tmp_path / "trace.txt"
    subprocess.run([*record_command(), "--timing", "off", "--events", "all", "--trace",
                    str(trace_file), "--no-journal", "--", exit_only, "nocall", "1"],
                   check=True, capture_output=True)
    execve = [ln for ln in trace_file.read_text().splitlines() if "execve(" in ln]
    assert len(execve) == 1
    assert execve[0].startswith(f'execve("{exit_only}", [')
    assert '"nocall", "1"]' in execve[0]
    assert execve[0].endswith("= 0 <->")


def record_command() -> list[str]:
    return [sys.executable, "-m", "cli.main", "record"]
