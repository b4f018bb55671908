"""Event-stream rate: how many individual syscall events per second reach snapshots.

Every syscall becomes an event (EventSelection(all=True)). Two loops paced to increasing
rates, then unpaced, are traced in this process: getppid (a bare record) and a failed openat
of a 40-byte path (a record with its path captured: the issue's "a path in most of them").
For each rate the events that reached snapshots and the kernel's drop count must add up to
the syscalls counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from benchmarks.common import BenchContext, BenchResult, Check, Section, fmt_int
from benchmarks.inprocess import trace_command

if TYPE_CHECKING:
    from tracing.model.stats import Snapshot

TARGET_EVENTS_PER_S = 250_000
RATES = (100_000, 200_000, 250_000, 300_000, 400_000, 500_000, 750_000, 1_000_000, 0)  # 0: unpaced
QUICK_RATES = (250_000, 0)  # the target rate itself, and unpaced
UNPACED_CALLS = 3_000_000
# The calls benchmarks/c/syscalls.c makes: what each event carries.
WORKLOADS = (("getppid", "getppid (no captured fields)"),
             ("openat", "failed openat, a 40-byte path in every event"))


@dataclass(frozen=True)
class RateRun:
    paced: int  # calls per second asked of the workload; 0 for as fast as it goes
    elapsed_s: float  # the workload's own loop time
    syscalls: int  # every syscall of the traced process, from the exact aggregates
    received: int
    dropped: int

    @property
    def offered_per_s(self) -> float:
        return self.syscalls / self.elapsed_s

    @property
    def received_per_s(self) -> float:
        return self.received / self.elapsed_s

    @property
    def consistent(self) -> bool:
        return self.received + self.dropped == self.syscalls


def one_rate(ctx: BenchContext, paced: int, seconds: float,
             also: Callable[[Snapshot], None] | None = None,
             call: str = "getppid") -> RateRun:
    from tracing.model.selection import EventSelection

    calls = int(paced * seconds) if paced else UNPACED_CALLS // (3 if ctx.quick else 1)
    argv = [str(ctx.program("syscalls")), str(calls), str(paced), call]
    outcome = trace_command(argv, EventSelection(all=True, failed=False), ctx.scratch, also)
    last = outcome.last
    if last is None:
        raise RuntimeError("no snapshot arrived")
    _start_ns, elapsed_ns, _n = (int(x) for x in outcome.stdout.split())
    return RateRun(paced, elapsed_ns / 1e9, last.total_count, outcome.events, last.drops.events)


def _row(r: RateRun) -> tuple[str, ...]:
    return (
        fmt_int(r.paced) if r.paced else "unpaced",
        fmt_int(r.offered_per_s),
        fmt_int(r.received_per_s),
        fmt_int(r.syscalls),
        fmt_int(r.received),
        fmt_int(r.dropped),
        "yes" if r.consistent else "NO",
    )


def summary(runs: list[RateRun]) -> tuple[str, str]:
    """The best received rate with no drops, and the rates at which drops happened."""
    clean = [r.received_per_s for r in runs if r.dropped == 0]
    best = f"{fmt_int(max(clean))} events/s" if clean else "none without drops"
    lossy = [r for r in runs if r.dropped]
    with_drops = ", ".join(
        f"{fmt_int(r.received_per_s)} received of {fmt_int(r.offered_per_s)} offered "
        f"({100 * r.dropped / r.syscalls:.1f}% dropped)" for r in lossy
    ) or "no drops at any rate tried"
    return best, with_drops


def _section(workload: str, runs: list[RateRun]) -> Section:
    best, with_drops = summary(runs)
    return Section(
        title=f"Event stream: every syscall as an event (EventSelection(all=True)), {workload}",
        columns=("paced at /s", "offered /s", "received /s", "syscalls", "received",
                 "dropped", "received + dropped = syscalls"),
        rows=tuple(_row(r) for r in runs),
        notes=(f"Highest received rate with no drops: {best}.",
               f"With drops: {with_drops}.",
               "Rates are over the workload's own loop time; events still in the ring "
               "buffer when it ends are drained after, which flatters the unpaced rate "
               "by at most a buffer's worth (4 MiB, about 44,000 bare events)."),
    )


def run(ctx: BenchContext) -> BenchResult:
    seconds = 1.0 if ctx.quick else 2.0
    sections, checks, failures = [], [], []
    for call, workload in WORKLOADS:
        runs = []
        for paced in QUICK_RATES if ctx.quick else RATES:
            runs.append(one_rate(ctx, paced, seconds, call=call))
            ctx.log(f"event rate, {call}: {fmt_int(paced) if paced else 'unpaced'} done")
        sections.append(_section(workload, runs))
        failures += [f"event rate {call} {fmt_int(r.paced)}: received {r.received} + "
                     f"dropped {r.dropped} != {r.syscalls} syscalls"
                     for r in runs if not r.consistent]
        best_clean = max((r.received_per_s for r in runs if r.dropped == 0), default=0.0)
        checks.append(Check(f"≥ {fmt_int(TARGET_EVENTS_PER_S)} events/s reach snapshots with "
                            f"no drops ({workload})", f"{fmt_int(best_clean)} events/s",
                            best_clean >= TARGET_EVENTS_PER_S))
    return BenchResult(sections=tuple(sections), checks=tuple(checks), failures=tuple(failures))
