"""Timing modes on the real kernel (issue 18): counts and errors exact in every mode; sampled
latency weighted so totals and percentiles estimate the exact ones; off measures no time.

The exact-count tests of test_engine.py and test_kernel_fidelity.py also run in every mode.
"""

from __future__ import annotations

import pytest

from tests.ebpf.conftest import TraceRun, run_trace
from tracing.engine.tracer import TraceConfig
from tracing.model.stats import SyscallStats
from tracing.model.timing import Timing

pytestmark = pytest.mark.ebpf

# A sampled thread is timed on one call in at most 2^SAMPLE_SHIFT_MAX (bpf/syscalls.bpf.c):
# the calls after its last timed one are counted but stand in no bucket.
MAX_UNWEIGHED = 1 << 10


def traced(command: tuple[str, ...], timing: Timing) -> TraceRun:
    return run_trace(TraceConfig(command=command, timing=timing, sample_hz=0, tcp=False,
                                 docker=False))


def hist_total(stats: SyscallStats) -> int:
    return sum(c for _, c in stats.hist)


@pytest.mark.parametrize("timing", list(Timing), ids=[str(t) for t in Timing])
def test_counts_errors_and_never_returning_calls_are_exact(workload, timing):
    run = traced((workload, "getppid", "20000", "3"), timing)
    assert run.count("getppid") == 20_000
    assert run.row("getppid").stats.errors == 0
    assert run.count("exit_group") == 1  # never returns: counted at the task's exit
    assert run.last.target_exit is not None and run.last.target_exit.code == 3
    failing = traced((workload, "enoent", "300"), timing)
    openat = failing.row("openat").stats
    assert openat.errors == 300  # (the loader's own opens succeed)
    assert openat.count >= 300


def test_off_measures_no_time(workload):
    run = traced((workload, "getppid", "5000"), Timing.OFF)
    assert run.last.timing == Timing.OFF
    for stats in run.last.stats.values():
        assert stats.count > 0
        assert (stats.total_ns, stats.min_ns, stats.max_ns, stats.hist) == (0, 0, 0, ())


def test_sampled_weights_stand_for_every_call(workload):
    """A busy loop is sampled 1 in N; each timed call weighs the calls since the previous one,
    so the histogram holds every call but those after the thread's last timed one."""
    n = 300_000
    run = traced((workload, "getppid", str(n)), Timing.SAMPLED)
    assert run.last.timing == Timing.SAMPLED
    stats = run.row("getppid").stats
    assert stats.count == n and stats.errors == 0
    assert n - MAX_UNWEIGHED <= hist_total(stats) <= n
    # The weighted mean is a mean of timed calls: between the fastest and slowest of them.
    weighed = hist_total(stats)
    assert stats.min_ns * weighed <= stats.total_ns <= stats.max_ns * weighed


def test_sampled_total_is_near_the_exact_one(workload):
    """The same busy loop timed in full and sampled: the estimate is of the same size (a sane
    factor: two runs on a shared machine, not a timing assertion)."""
    n = 300_000
    exact = traced((workload, "getppid", str(n)), Timing.EXACT).row("getppid").stats
    sampled = traced((workload, "getppid", str(n)), Timing.SAMPLED).row("getppid").stats
    assert exact.count == sampled.count == n
    assert exact.total_ns / 4 <= sampled.total_ns <= exact.total_ns * 4


@pytest.mark.parametrize(("count", "ms"), [(40, 1), (10, 20)], ids=["1ms", "20ms"])
def test_sampled_sleeps_keep_their_median(workload, count, ms):
    """Slow or rare calls are all timed: a sleep's median within 10% of the exact mode's (the
    histogram's buckets are 1/8 of a power of two wide: a median is a bucket's middle)."""
    command = (workload, "sleep", str(count), str(ms))
    stats = traced(command, Timing.SAMPLED).row("nanosleep").stats
    exact = traced(command, Timing.EXACT).row("nanosleep").stats
    assert stats.count == exact.count == count
    assert hist_total(stats) == count  # every call timed, each weighing one
    assert abs(stats.quantile(0.5) - exact.quantile(0.5)) <= exact.quantile(0.5) / 10
    assert ms * 1_000_000 <= stats.quantile(0.5) <= ms * 1_250_000
