"""Turns what the engine reads each tick into immutable Snapshots.

Pure: no bcc, no Textual, no I/O. Live tracing and replay both feed it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from types import MappingProxyType

import numpy as np

from tracing.model import (
    Drops,
    ExitStatus,
    ProcessInfo,
    ProcEvent,
    Snapshot,
    StatKey,
    SyscallEvent,
    SyscallStats,
)


def events_from_array(arr: np.ndarray) -> tuple[SyscallEvent, ...]:
    """Convert a batch of kernel events (bpf_engine.SYS_EVENT_DTYPE) to model events."""
    cols = [arr[name].tolist() for name in ("ts", "pid", "tid", "nr", "ret", "duration_ns")]
    args = [tuple(a) for a in arr["args"].tolist()]
    return tuple(
        SyscallEvent(ts, pid, tid, nr, ret, dur, a)
        for ts, pid, tid, nr, ret, dur, a in zip(*cols, args, strict=True)
    )


class SnapshotBuilder:
    """Keeps the previous tick's totals, so each snapshot carries both the cumulative stats
    and the interval's change; `reset()` starts the cumulative view from zero again."""

    def __init__(self, start_ts_ns: int, start_wall_time: float, arch: str,
                 targets: tuple[str, ...] = ()) -> None:
        self.start_ts_ns = start_ts_ns
        self.start_wall_time = start_wall_time
        self.arch = arch
        self.targets = targets
        self._seq = 0
        self._prev: Mapping[StatKey, SyscallStats] = {}
        self._prev_ts_ns = start_ts_ns
        self._baseline: Mapping[StatKey, SyscallStats] = {}

    def reset(self) -> None:
        self._baseline = self._prev

    def build(
        self,
        *,
        ts_ns: int,
        wall_time: float,
        state: str,
        raw_stats: Mapping[StatKey, SyscallStats],
        events: Iterable[SyscallEvent],
        proc_events: Iterable[ProcEvent],
        processes: Mapping[int, ProcessInfo],
        drops: Drops,
        tracer_cpu_s: float,
        target_exit: ExitStatus | None = None,
    ) -> Snapshot:
        interval = {}
        for key, now in raw_stats.items():
            before = self._prev.get(key)
            if before is None:
                interval[key] = now
            elif now.count != before.count:
                interval[key] = now - before
        cumulative = self._since_baseline(raw_stats)
        interval_s = max((ts_ns - self._prev_ts_ns) / 1e9, 1e-9)
        self._prev, self._prev_ts_ns = raw_stats, ts_ns
        self._seq += 1
        return Snapshot(
            seq=self._seq,
            ts_ns=ts_ns,
            wall_time=wall_time,
            start_ts_ns=self.start_ts_ns,
            start_wall_time=self.start_wall_time,
            arch=self.arch,
            state=state,
            stats=MappingProxyType(cumulative),
            interval=MappingProxyType(interval),
            interval_s=interval_s,
            processes=MappingProxyType(processes),  # the tracker never mutates a handed-out dict
            events=tuple(events),
            proc_events=tuple(proc_events),
            drops=drops,
            tracer_cpu_s=tracer_cpu_s,
            target_exit=target_exit,
            targets=self.targets,
        )

    def _since_baseline(self, raw: Mapping[StatKey, SyscallStats]) -> dict[StatKey, SyscallStats]:
        if not self._baseline:
            return dict(raw)
        result = {}
        for key, now in raw.items():
            base = self._baseline.get(key)
            if base is None:
                result[key] = now
            elif now.count != base.count:
                result[key] = now - base
        return result


def rebase(snapshot: Snapshot, baseline: Snapshot | None) -> Snapshot:
    """The snapshot as counted since `baseline` (for reset in replayed sessions)."""
    if baseline is None:
        return snapshot
    base = baseline.stats
    stats = {}
    for key, now in snapshot.stats.items():
        before = base.get(key)
        if before is None:
            stats[key] = now
        elif now.count != before.count:
            stats[key] = now - before
    return dataclasses.replace(snapshot, stats=MappingProxyType(stats))
