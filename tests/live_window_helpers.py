"""Made-up live snapshots for the live window's tests: a trace that makes known calls in
known ticks, built by the real SnapshotBuilder (so intervals, stats and resets are what the
engine hands over)."""

from __future__ import annotations

import errno

import numpy as np

from tracing.model.snapshots import SnapshotBuilder
from tracing.model.stats import (
    EVENT_DTYPE,
    Drops,
    ProcessInfo,
    Snapshot,
    StatKey,
    SyscallStats,
    TraceState,
    bucket_of,
    no_events,
)

TICK_NS = 250_000_000  # 4 snapshots a second, as the engine makes them
PID = 4242
# x86_64 syscall numbers
GETPPID, GETUID, READ = 110, 102, 0
GETPPID_KEY = StatKey(PID, PID, GETPPID)
GETUID_KEY = StatKey(PID, PID, GETUID)
READ_KEY = StatKey(PID, PID, READ)


class Trace:
    """Snapshots of one process, a tick at a time: `tick({key: (calls, each_ns, errors)})`."""

    def __init__(self) -> None:
        self.builder = SnapshotBuilder(start_ts_ns=0, start_wall_time=1_700_000_000.0,
                                       arch="x86_64", targets=("phased",))
        self.totals: dict[StatKey, SyscallStats] = {}
        self.ticks = 0

    def tick(self, calls: dict[StatKey, tuple[int, int, int]] | None = None,
             eagain: dict[StatKey, int] | None = None) -> Snapshot:
        """One snapshot; `eagain`: per entry, that many of its failed calls sent as events
        that failed with EAGAIN (an expected error)."""
        return self._one(calls, _eagain_events(eagain or {}, self.ticks + 1))

    def _one(self, calls: dict[StatKey, tuple[int, int, int]] | None,
             events: np.ndarray) -> Snapshot:
        self.ticks += 1
        deltas: dict[StatKey, SyscallStats] = {}
        for key, (count, each_ns, errors) in (calls or {}).items():
            delta = SyscallStats(count, errors, count * each_ns, each_ns, each_ns,
                                 ((bucket_of(each_ns), count),))
            before = self.totals.get(key)
            self.totals[key] = delta if before is None else _plus(before, delta)
            deltas[key] = delta
        return self.builder.build(
            ts_ns=self.ticks * TICK_NS, wall_time=1_700_000_000.0 + self.ticks * TICK_NS / 1e9,
            state=TraceState.TRACING, changes={k: self.totals[k] for k in deltas},
            deltas=deltas, events=events, proc_events=(),
            processes={PID: ProcessInfo(PID, comm="phased")}, drops=Drops(), tracer_cpu_s=0.0)


def _eagain_events(eagain: dict[StatKey, int], tick: int) -> np.ndarray:
    if not eagain:
        return no_events()
    events = np.zeros(sum(eagain.values()), dtype=EVENT_DTYPE)
    i = 0
    for key, n in eagain.items():
        part = events[i:i + n]
        part["ts"], part["pid"], part["tid"], part["nr"] = tick * TICK_NS, key.pid, key.tid, key.nr
        part["abi"], part["ret"] = key.abi, -errno.EAGAIN
        i += n
    return events


def _plus(a: SyscallStats, b: SyscallStats) -> SyscallStats:
    hist = dict(a.hist)
    for bucket, n in b.hist:
        hist[bucket] = hist.get(bucket, 0) + n
    return SyscallStats(a.count + b.count, a.errors + b.errors, a.total_ns + b.total_ns,
                        min(a.min_ns, b.min_ns), max(a.max_ns, b.max_ns),
                        tuple(sorted(hist.items())))
