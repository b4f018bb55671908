"""The clock floor: what a clock read and a bare syscall cost on this machine.

Timing a syscall takes two clock reads in the kernel (bpf_ktime_get_ns at entry and exit);
in a VM where reading the TSC is slow, those reads are a large part of the tracing cost.
"""

from __future__ import annotations

import subprocess

from benchmarks.common import BenchContext, BenchResult, Section, median_or_nan

CALLS = 10_000_000
LABELS = {
    "rdtsc": "rdtsc (the TSC read under every clock)",
    "clock_gettime": "clock_gettime(CLOCK_MONOTONIC), vDSO",
    "getppid": "getppid(), a bare syscall (untraced)",
}


def one_run(ctx: BenchContext, calls: int) -> dict[str, float]:
    out = subprocess.run([str(ctx.program("clocks")), str(calls)], capture_output=True,
                         text=True, check=True).stdout
    return {name: float(ns) for name, ns in (line.split() for line in out.splitlines())}


def run(ctx: BenchContext) -> BenchResult:
    calls = CALLS // 10 if ctx.quick else CALLS
    runs = [one_run(ctx, calls) for _ in range(ctx.runs)]
    ctx.log("clock floor done")
    rows = tuple(
        (LABELS.get(name, name), f"{median_or_nan([r[name] for r in runs]):.1f}")
        for name in runs[0]
    )
    section = Section(
        title=f"Clock floor: ns per call, median of {ctx.runs} runs of {calls:,} calls",
        columns=("operation", "ns per call"),
        rows=rows,
        notes=("bpf_ktime_get_ns reads the same clocksource; the tracer reads it twice per "
               "syscall (entry and exit).",),
    )
    return BenchResult(sections=(section,))
