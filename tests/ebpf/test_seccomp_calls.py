"""Calls a seccomp filter refuses are counted, as strace counts them (issue 16).

The kernel runs seccomp before the raw_syscalls:sys_enter tracepoint, so a refused call
(SECCOMP_RET_ERRNO, as Docker's default profile and systemd's SystemCallFilter= refuse)
never reaches sys_enter; only its exit is seen. The kernel program counts such a call in a
thread it already traces, with time 0 (bpf/syscalls.bpf.c unseen_call)."""

from __future__ import annotations

import errno
import re
import signal
import subprocess
from collections.abc import Callable

import pytest

from syscall_tables import syscall_number
from tests.ebpf.conftest import HERE, TraceRun
from tests.ebpf.fidelity import compile_c
from tests.ebpf.test_kernel_fidelity import (
    config,
    counts_of,
    devnull,  # noqa: F401  (the fixture, used by name)
    ended,
    named_counts,
    pid_of,
    strace_counts,
)
from tracing.engine.tracer import TraceConfig

pytestmark = pytest.mark.ebpf

Trace = Callable[..., TraceRun]


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("seccomp") / "seccomp_workload"
    return compile_c(HERE / "seccomp_workload.c", out)


def test_calls_refused_with_an_errno_are_counted_as_strace_counts(
        trace: Trace, workload: str, devnull: int) -> None:  # noqa: F811
    reference = strace_counts([workload])
    assert reference["getppid"] == (100, 100)
    run = trace(config((workload,), devnull))
    pid = pid_of(run)
    assert ended(run.last.target_exit).code == 0  # each getppid failed with EPERM
    counted = named_counts(run, pid)
    assert counted["getppid"] == (100, 100)
    assert counted["getpid"] == (50, 0)
    # Everything else too: strace does not list exit_group, which never returns.
    assert counted.pop("exit_group") == (1, 0)
    assert counted == reference
    # Their time is 0 (the filter's is not measured), a real minimum, not "unset".
    getppid = syscall_number("getppid", run.last.arch)
    (stats,) = [s for k, s in run.last.stats.items() if k.pid == pid and k.nr == getppid]
    assert (stats.total_ns, stats.min_ns, stats.max_ns) == (0, 0, 0)
    assert dict(stats.hist) == {0: 100}
    # Failed calls are sent as events (the default selection): these too, with their error.
    refused = [e for e in run.events if e.pid == pid and e.nr == getppid]
    assert len(refused) == 100
    assert {(e.ret, e.duration_ns) for e in refused} == {(-errno.EPERM, 0)}


def test_a_trapped_call_is_counted_as_strace_counts(
        trace: Trace, workload: str, devnull: int) -> None:  # noqa: F811
    # SECCOMP_RET_TRAP: SIGSYS, handled; the call returns its own number (the kernel rolls
    # the registers back for the handler), which strace shows as a success.
    reference = strace_counts([workload, "trap"])
    run = trace(config((workload, "trap"), devnull))
    assert ended(run.last.target_exit).code == 0
    counted = named_counts(run, pid_of(run))
    assert counted["getppid"] == reference["getppid"] == (100, 0)
    assert counted.pop("exit_group") == (1, 0)
    assert counted == reference


@pytest.mark.parametrize("mode", ["kill", "kill-thread"])
def test_a_killing_call_is_counted_once_and_the_process_dies_of_sigsys(
        trace: Trace, workload: str, devnull: int, mode: str) -> None:  # noqa: F811
    # SECCOMP_RET_KILL_PROCESS (and KILL_THREAD of the last thread) rolls the call back and
    # forces SIGSYS: the call exits once (strace counts it), then the signal kills.
    reference = strace_counts_killed([workload, mode])
    run = trace(config((workload, mode), devnull))
    pid = pid_of(run)
    assert ended(run.last.target_exit).signal == signal.SIGSYS
    counted = named_counts(run, pid)
    assert counted["getppid"] == (1, 0)
    assert counted["getpid"] == (50, 0)
    assert "exit_group" not in counted
    assert counted == reference


def strace_counts_killed(argv: list[str]) -> dict[str, tuple[int, int]]:
    """strace_counts of a command that dies of a signal (strace then exits non-zero)."""
    result = subprocess.run(["strace", "-f", "-c", "-U", "name,calls,errors", *argv],
                            capture_output=True, text=True)
    counts = {}
    for line in result.stderr.splitlines():
        m = re.fullmatch(r"(\w+)\s+(\d+)\s*(\d*)\s*", line)
        if m and m[1] not in ("syscall", "total"):
            counts[m[1]] = (int(m[2]), int(m[3] or 0))
    assert counts, result.stderr[-2000:]
    return counts


def test_our_uretprobe_returns_are_not_taken_for_refused_calls(
        trace: Trace, workload: str, devnull: int) -> None:  # noqa: F811
    # A uretprobe on libc's syscall() returns through the uretprobe syscall (x86_64, Linux
    # 6.11+), whose exit shows the number -1 with no call in flight: not a call of the target.
    cfg = TraceConfig(command=(workload,), command_stdin=devnull, command_stdout=devnull,
                      command_stderr=devnull, sample_hz=0, tcp=False, docker=False,
                      uprobes=("c:syscall",))
    run = trace(cfg)
    pid = pid_of(run)
    assert ended(run.last.target_exit).code == 0
    counts = counts_of(run, pid)
    assert named_counts(run, pid)["getppid"] == (100, 100)
    assert named_counts(run, pid)["getpid"] == (50, 0)
    assert (0xFFFFFFFF, 0) not in counts
    uretprobe = syscall_number("uretprobe", run.last.arch)
    assert uretprobe is None or (uretprobe, 0) not in counts


def test_refused_i386_calls_are_counted_under_their_abi(
        trace: Trace, tmp_path_factory: pytest.TempPathFactory, devnull: int) -> None:  # noqa: F811
    # The ABI of a call whose entry was not seen comes from the registers at its exit, as at
    # entry: an i386 process's getppid is number 64 of the i386 table, not x86_64's 64 (semop).
    binary = compile_c(HERE / "seccomp_workload.c",
                       tmp_path_factory.mktemp("seccomp32") / "seccomp_workload32", "-m32")
    reference = strace_counts([binary])
    run = trace(config((binary,), devnull))
    pid = pid_of(run)
    assert ended(run.last.target_exit).code == 0
    getppid, getpid = syscall_number("getppid", "i386"), syscall_number("getpid", "i386")
    assert getppid is not None and getpid is not None
    counts = counts_of(run, pid)
    assert counts[(getppid, 1)] == (100, 100)
    assert counts[(getpid, 1)] == (50, 0)
    counted = named_counts(run, pid)
    assert counted.pop("exit_group") == (1, 0)
    assert counted == reference
