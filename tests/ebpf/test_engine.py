"""The tracing engine on the real kernel: exact counts for workloads with known syscalls."""

from __future__ import annotations

import errno
import re
import subprocess
import sys
import time

import pytest

from syscall_tables import syscall_number
from tracing.engine.tracer import TraceConfig
from tracing.model.selection import EventSelection
from tracing.model.stats import TraceState
from tracing.model.timing import Timing

pytestmark = pytest.mark.ebpf

N = 20_000

# Counts and errors are exact in every timing mode (issue 18): the exact-count tests run in all.
all_timings = pytest.mark.parametrize("timing", list(Timing), ids=[str(t) for t in Timing])


@all_timings
def test_exact_getppid_count_agrees_with_strace(workload, trace, timing):
    run = trace(TraceConfig(command=(workload, "getppid", str(N), "7"), timing=timing))
    assert run.count("getppid") == N
    assert run.count("execve") == 1  # the command's own exec is traced
    assert run.last.target_exit.code == 7
    assert run.last.state == TraceState.EXITED

    strace = subprocess.run(
        ["strace", "-f", "-c", "-e", "trace=getppid", workload, "getppid", str(N)],
        capture_output=True, text=True, check=True,
    )
    line = next(ln for ln in strace.stderr.splitlines() if ln.rstrip().endswith("getppid"))
    assert int(line.split()[3]) == run.count("getppid")


@all_timings
def test_children_of_a_shell_are_followed(workload, trace, timing):
    m = 3_000
    script = f"for i in 1 2 3 4 5; do {workload} getppid {m} & done; wait"
    run = trace(TraceConfig(command=("/bin/sh", "-c", script), timing=timing))
    children = [p for p in run.last.processes.values() if p.comm == "workload"]
    assert len(children) == 5
    assert all(p.exit is not None and p.exit.code == 0 for p in children)
    assert all(run.count("getppid", p.pid) == m for p in children)
    # The shell itself reads its parent once at start (for $PPID): 5M plus that one.
    assert run.count("getppid", run.tracer.command.pid) == 1
    assert run.count("getppid") == 5 * m + 1
    # Each snapshot's interval is exactly what changed: they add up to the totals.
    summed: dict = {}
    for snapshot in run.snapshots:
        for key, delta in snapshot.interval.items():
            summed[key] = summed.get(key, 0) + delta.count
    assert summed == {key: s.count for key, s in run.last.stats.items()}


def test_children_are_not_followed_with_no_follow(workload, trace):
    script = f"{workload} getppid 1000; exit 0"
    run = trace(TraceConfig(command=("/bin/sh", "-c", script), follow=False))
    # Only the shell is traced: its own single getppid (for $PPID), none of the child's 1000.
    assert run.count("getppid") == 1
    assert run.count("wait4") >= 1
    assert set(run.last.processes) == {run.tracer.command.pid}


@all_timings
def test_python_threads(trace, timing):
    m = 2_500
    code = (
        "import os, threading\n"
        f"ts = [threading.Thread(target=lambda: [os.getppid() for _ in range({m})])"
        " for _ in range(4)]\n"
        "[t.start() for t in ts]; [t.join() for t in ts]\n"
    )
    run = trace(TraceConfig(command=(sys.executable, "-c", code), timing=timing))
    assert run.count("getppid") == 4 * m
    tids = {k.tid for k, s in run.last.stats.items()
            if k.nr == syscall_number("getppid", run.last.arch)}
    assert len(tids) == 4
    pid = run.tracer.command.pid
    assert len(run.last.processes[pid].threads) >= 4


@all_timings
def test_failed_opens_are_errors_with_enoent_events(workload, trace, timing):
    n = 500
    run = trace(TraceConfig(command=(workload, "enoent", str(n)), timing=timing))
    openat = run.row("openat")
    assert openat.stats.errors == n
    nr = syscall_number("openat", run.last.arch)
    failed = [e for e in run.events if e.nr == nr and e.failed]
    assert len(failed) == n
    assert {e.errno for e in failed} == {errno.ENOENT}


def test_nanosleep_latency_percentiles(workload, trace):
    run = trace(TraceConfig(command=(workload, "sleep", "20", "20")))
    stats = run.row("nanosleep").stats
    assert stats.count == 20
    assert 20_000_000 <= stats.quantile(0.50) <= 25_000_000
    assert stats.min_ns >= 20_000_000


def test_attach_counts_only_after_attach(workload, trace):
    n = 4_000
    proc = subprocess.Popen([workload, "wait-then", str(n)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    assert proc.stdout.readline() == b"ready\n"  # its earlier syscalls are done

    def release(_tracer):
        time.sleep(0.3)
        proc.stdin.write(b"x")
        proc.stdin.close()

    run = trace(TraceConfig(pids=(proc.pid,)), while_running=release)
    proc.wait()
    assert run.count("getppid") == n
    assert run.count("execve") == 0
    assert run.last.state == TraceState.EXITED


def test_event_drops_are_exact(workload, trace):
    # A one-page ring buffer cannot hold a burst of 50k events: some are dropped, and every
    # counted syscall is either received or a counted drop.
    run = trace(TraceConfig(command=(workload, "getppid", "50000"),
                            events=EventSelection(all=True, failed=False), ringbuf_pages=1))
    drops = run.last.drops
    assert drops.events > 0
    assert len(run.events) + drops.events == run.last.total_count
    assert drops.events_sent == len(run.events)


def test_command_runs_as_the_sudo_user(workload, tmp_path):
    env = {"SUDO_UID": "65534", "SUDO_GID": "65534", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "record", "--json", "--no-journal", "--", "id", "-u"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    # With --json the command's stdout goes to stderr, so stdout stays one JSON document.
    assert re.search(r"^65534$", result.stderr, re.M)
    assert '"syscalls"' in result.stdout
