"""A made-up phased session for the charts' tests: 15 s of ticks every 0.25 s, three phases
of 5 s with different syscalls, exact numbers throughout.

- phase 1 (0-5 s): 2000 getppid a tick (1 µs each), 20 read (40 µs)
- phase 2 (5-10 s): 300 openat a tick (20 µs), 100 of them failing (ENOENT), 20 read
- phase 3 (10-15 s): 1000 getppid (1 µs) and 50 openat (a slower disk: 400 µs, 10 failing)
"""

from __future__ import annotations

from types import MappingProxyType

from tracing.model.stats import (
    Drops,
    ProcessInfo,
    Snapshot,
    StatKey,
    SyscallStats,
    TraceState,
    bucket_of,
    hist_merge,
    no_events,
)

START_NS = 1_000_000_000_000
TICK_NS = 250_000_000
TICKS = 60
PID = 4242
GETPPID, READ, OPENAT = StatKey(PID, PID, 110), StatKey(PID, PID, 0), StatKey(PID, PID, 257)


def calls(count: int, duration_ns: int, errors: int = 0) -> SyscallStats:
    return SyscallStats(count, errors, count * duration_ns, duration_ns, duration_ns,
                        ((bucket_of(duration_ns), count),))


def phase_of(tick: int) -> dict[StatKey, SyscallStats]:
    """The calls of the tick ending at tick * 0.25 s (tick 1..TICKS)."""
    if tick <= 20:
        return {GETPPID: calls(2000, 1000), READ: calls(20, 40_000)}
    if tick <= 40:
        return {OPENAT: calls(300, 20_000, errors=100), READ: calls(20, 40_000)}
    return {GETPPID: calls(1000, 1000), OPENAT: calls(50, 400_000, errors=10)}


def phased_snapshots(ticks: int = TICKS) -> list[Snapshot]:
    processes = MappingProxyType({PID: ProcessInfo(PID, 1, "phases", "/usr/bin/phases",
                                                   ("phases",), "x86_64")})
    total: dict[StatKey, SyscallStats] = {}
    out = []
    for tick in range(1, ticks + 1):
        interval = phase_of(tick)
        for key, d in interval.items():
            old = total.get(key)
            total[key] = d if old is None else SyscallStats(
                old.count + d.count, old.errors + d.errors, old.total_ns + d.total_ns,
                min(old.min_ns, d.min_ns), max(old.max_ns, d.max_ns),
                hist_merge((old.hist, d.hist)))
        # As the kernel's: an interval's extremes are the cumulative ones.
        interval = {key: SyscallStats(d.count, d.errors, d.total_ns, total[key].min_ns,
                                      total[key].max_ns, d.hist) for key, d in interval.items()}
        out.append(Snapshot(
            seq=tick, ts_ns=START_NS + tick * TICK_NS, wall_time=1_700_000_000.0 + tick / 4,
            start_ts_ns=START_NS, start_wall_time=1_700_000_000.0, arch="x86_64",
            state=TraceState.TRACING, stats=MappingProxyType(dict(total)),
            interval=MappingProxyType(interval), interval_s=TICK_NS / 1e9,
            processes=processes, events=no_events(), proc_events=(), drops=Drops(),
            tracer_cpu_s=0.0, targets=("phases",)))
    return out
