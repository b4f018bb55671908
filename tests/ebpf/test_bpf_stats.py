"""BPF run-time statistics while tracing (issue 18): what they count, and that they are off
again however the tracer ends. Real kernel, real programs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ebpf.conftest import run_trace
from tests.helpers import wait_until
from tracing.engine import bpf_stats
from tracing.engine.tracer import TraceConfig, Tracer

pytestmark = pytest.mark.ebpf

N = 20_000
ROOT = Path(__file__).resolve().parents[2]

# Every syscall entered on the machine, counted by a program of our own: what the tracer's
# entry program can have run for, at most, in a window that encloses its own.
COUNTER = r"""
BPF_PERCPU_ARRAY(calls, u64, 1);
RAW_TRACEPOINT_PROBE(sys_enter)
{
    int zero = 0;
    u64 *n = calls.lookup(&zero);
    if (n)
        (*n)++;
    return 0;
}
"""


def stats_fds(pid: int | str = "self") -> int:
    """How many BPF statistics holds (BPF_ENABLE_STATS fds) a process has open."""
    held = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):  # closed meanwhile (the listing's own fd)
            held += os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:bpf-stats"
    return held


class Counter:
    """COUNTER loaded: the calls it counted, and whether statistics are on in the kernel
    (its own run count moves when they are: reading it is a bpf() syscall)."""

    def __init__(self, bpf: object) -> None:
        self.table = bpf[b"calls"]  # type: ignore[index]
        self.prog_fd = int(bpf.funcs[b"raw_tracepoint__sys_enter"].fd)  # type: ignore[attr-defined]

    def calls(self) -> int:
        return sum(self.table[self.table.Key(0)])

    def stats_on(self) -> bool:
        first = bpf_stats.prog_run_stats(self.prog_fd)[1]
        return bpf_stats.prog_run_stats(self.prog_fd)[1] > first


@pytest.fixture
def counter() -> Iterator[Counter]:
    from tracing.engine import kheaders, tracefs

    tracefs.ensure_mounted()
    kheaders.prepare_bcc_environment(kheaders.find_kernel_headers())
    import bcc

    bpf = bcc.BPF(text=COUNTER.encode())
    try:
        yield Counter(bpf)
    finally:
        bpf.cleanup()


@pytest.fixture
def waiting(workload: str) -> Iterator[subprocess.Popen[bytes]]:
    """The workload, started and waiting for a byte on stdin before its N getppid calls."""
    proc = subprocess.Popen([workload, "wait-then", str(N)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    yield proc
    proc.kill()
    proc.wait()


def config(pid: int) -> TraceConfig:
    return TraceConfig(pids=(pid,), sample_hz=0, tcp=False, docker=False)


def test_runs_cover_the_traced_calls_and_no_more_than_the_machine_made(
        monkeypatch: pytest.MonkeyPatch, counter: Counter,
        waiting: subprocess.Popen[bytes]) -> None:
    monkeypatch.setenv(bpf_stats.MODE_VARIABLE, bpf_stats.ALWAYS)
    held_before = stats_fds()
    sysctl = bpf_stats.stats_sysctl()

    def go(tracer: Tracer) -> None:
        # On while tracing: held by us, and the kernel counts runs.
        assert stats_fds() == held_before + 1
        assert counter.stats_on()
        assert bpf_stats.stats_sysctl() == sysctl  # the admin's setting: never written
        assert waiting.stdin is not None
        waiting.stdin.write(b"x")
        waiting.stdin.close()

    before = counter.calls()
    run = run_trace(config(waiting.pid), while_running=go)
    made = counter.calls() - before
    assert waiting.wait(10) == 0
    last = run.last
    assert run.count("getppid") == N
    assert last.bpf_stats
    # Each of the target's calls ran our entry program once while statistics were on; the
    # rest are the machine's other calls, which the counter saw as well.
    assert N <= last.bpf_runs <= made
    assert last.bpf_run_ns > 0
    assert 0 < last.bpf_on_ns <= last.ts_ns - last.start_ts_ns
    assert stats_fds() == held_before  # given back at the end
    assert bpf_stats.stats_sysctl() == sysctl


def test_sampled_statistics_go_off_while_tracing(waiting: subprocess.Popen[bytes]) -> None:
    held_before = stats_fds()
    seen: list[int] = []

    def watch(tracer: Tracer) -> None:
        seen.append(stats_fds() - held_before)  # on from the start
        wait_until(lambda: stats_fds() == held_before, "statistics off after the first stretch",
                   timeout=20)
        seen.append(stats_fds() - held_before)
        tracer.stop()

    run = run_trace(config(waiting.pid), while_running=watch)
    assert seen == [1, 0]
    last = run.last
    assert last.bpf_stats and 0 < last.bpf_on_ns < last.ts_ns - last.start_ts_ns
    assert stats_fds() == held_before


def test_statistics_are_restored_when_the_tracer_is_killed(counter: Counter) -> None:
    if bpf_stats.stats_sysctl() != 0:
        pytest.skip("BPF statistics are on already (kernel.bpf_stats_enabled=1)")
    target = subprocess.Popen(["sleep", "60"])
    script = (
        "import sys\n"
        "from tracing.engine.tracer import TraceConfig, Tracer\n"
        f"t = Tracer(TraceConfig(pids=({target.pid},), sample_hz=0, tcp=False, docker=False),"
        " on_snapshot=lambda s: None)\n"
        "t.start()\n"
        "print('ready', flush=True)\n"
        "sys.stdin.read()\n"
    )
    env = {**os.environ, bpf_stats.MODE_VARIABLE: bpf_stats.ALWAYS, "PYTHONPATH": str(ROOT)}
    tracer = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, env=env, cwd=ROOT)
    try:
        assert tracer.stdout is not None and tracer.stdout.readline() == b"ready\n"
        assert stats_fds(tracer.pid) == 1
        assert counter.stats_on()
        tracer.send_signal(signal.SIGKILL)
        assert tracer.wait(10) == -signal.SIGKILL
        # Nothing ran to turn them off: the kernel did, as the process's files closed. (Other
        # tracers on this machine may hold them for a moment: wait for a moment off.)
        wait_until(lambda: not counter.stats_on(), "statistics off after SIGKILL", timeout=20)
        assert bpf_stats.stats_sysctl() == 0
    finally:
        tracer.kill()
        tracer.wait()
        target.kill()
        target.wait()
