"""Tracer cost: the tracer's own CPU seconds per million syscalls when it only aggregates.

The engine runs in this process on a getppid loop, with no individual events. The cost is
the process's CPU time (Snapshot.tracer_cpu_s) at the last snapshot minus at the first, so
loading and compiling the program are left out, over the syscalls counted in between.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.common import (
    BenchContext,
    BenchResult,
    Check,
    Section,
    fmt_int,
    median_or_nan,
)
from benchmarks.inprocess import trace_command

TARGET_CPU_S_PER_M = 0.05


@dataclass(frozen=True)
class CostRun:
    cpu_s: float
    syscalls: int
    seconds: float  # between the first and the last snapshot

    @property
    def per_million(self) -> float:
        return self.cpu_s / (self.syscalls / 1e6) if self.syscalls else float("nan")

    @property
    def per_second(self) -> float:
        return self.cpu_s / self.seconds if self.seconds else float("nan")


def one_run(ctx: BenchContext, calls: int) -> CostRun:
    from tracing.model.selection import EventSelection

    program = ctx.program("syscalls")
    outcome = trace_command([str(program), str(calls)], EventSelection(failed=False),
                            ctx.scratch)
    first, last = outcome.first, outcome.last
    if first is None or last is None or outcome.snapshots < 2:
        raise RuntimeError("the workload ended before a second snapshot; make it longer")
    return CostRun(
        cpu_s=last.tracer_cpu_s - first.tracer_cpu_s,
        syscalls=last.total_count - first.total_count,
        seconds=(last.ts_ns - first.ts_ns) / 1e9,
    )


def run(ctx: BenchContext) -> BenchResult:
    calls = 2_000_000 if ctx.quick else 10_000_000
    runs = []
    for i in range(ctx.runs):
        runs.append(one_run(ctx, calls))
        ctx.log(f"tracer cost: run {i + 1}/{ctx.runs} done")
    per_m = median_or_nan([r.per_million for r in runs])
    rows = tuple(
        (str(i + 1), fmt_int(r.syscalls), f"{r.seconds:.2f}", f"{r.cpu_s:.4f}",
         f"{r.per_million:.4f}", f"{r.per_second:.4f}")
        for i, r in enumerate(runs)
    )
    rows += (("median", "", "", "", f"{per_m:.4f}",
              f"{median_or_nan([r.per_second for r in runs]):.4f}"),)
    section = Section(
        title=f"Tracer cost: aggregating only (--events none), {fmt_int(calls)} getppid calls",
        columns=("run", "syscalls", "traced s", "tracer CPU s", "CPU s / M syscalls",
                 "CPU s / traced s"),
        rows=rows,
        notes=(f"Target: at most {TARGET_CPU_S_PER_M} CPU s per million syscalls.",
               "Counted from the first snapshot to the last, so loading the program is "
               "excluded; the cost per traced second is the idle tick cost."),
    )
    check = Check(f"tracer CPU ≤ {TARGET_CPU_S_PER_M} s per million syscalls (aggregating)",
                  f"{per_m:.4f} s", per_m <= TARGET_CPU_S_PER_M)
    return BenchResult(sections=(section,), checks=(check,))
