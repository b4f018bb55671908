"""The list of benchmarks `python -m benchmarks` runs, in order.

To add one, write a module with `run(ctx: BenchContext) -> BenchResult` and append a
Benchmark here; `--only NAME` then selects it, and its sections and checks go to the
terminal and to docs/performance.md like the others.
"""

from __future__ import annotations

from benchmarks import (
    bystander,
    clock,
    event_rate,
    overhead,
    picker,
    sessions,
    tracer_cost,
    ui_latency,
)
from benchmarks.common import Benchmark

BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark("overhead", "workload CPU and wall time under each tracer", overhead.run),
    Benchmark("bystander", "CPU of an untraced dd while each tracer traces an idle process",
              bystander.run),
    Benchmark("tracer-cost", "tracer CPU s per million syscalls, aggregating only",
              tracer_cost.run),
    Benchmark("event-rate", "events/s that reach snapshots, and drops", event_rate.run),
    Benchmark("clock", "ns per clock read and per bare syscall", clock.run),
    Benchmark("ui-latency", "key to screen in the real terminal under load", ui_latency.run),
    Benchmark("sessions", "journal throughput, Parquet export time and size", sessions.run),
    Benchmark("picker", "picker typing latency and RSS, 2,000 processes of 4 KB command lines",
              picker.run),
)


def by_name(names: list[str] | None) -> tuple[Benchmark, ...]:
    if not names:
        return BENCHMARKS
    wanted = set(names)
    return tuple(b for b in BENCHMARKS if b.name in wanted)
