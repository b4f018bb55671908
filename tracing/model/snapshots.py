"""Turns what the engine reads each tick into immutable Snapshots.

Pure: no bcc, no Textual, no I/O. Live tracing and replay both feed it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from types import MappingProxyType

import numpy as np

from tracing.model.connections import Connection
from tracing.model.samples import StackSample
from tracing.model.stats import (
    Drops,
    ExitStatus,
    ProcessInfo,
    ProcEvent,
    Snapshot,
    StatKey,
    SyscallStats,
    TraceState,
    no_events,
)


class SnapshotBuilder:
    """Keeps the cumulative statistics, updated from the entries that changed each tick, so
    each snapshot carries both the totals and the interval's change at a cost proportional to
    what changed. `reset()` starts the shown totals from zero again (a new epoch)."""

    def __init__(self, start_ts_ns: int, start_wall_time: float, arch: str,
                 targets: tuple[str, ...] = (), sample_hz: int = 0,
                 probes: Mapping[int, str] | None = None, tcp_monitored: bool = True) -> None:
        self.start_ts_ns = start_ts_ns
        self.start_wall_time = start_wall_time
        self.arch = arch
        self.targets = targets
        self.sample_hz = sample_hz
        self.tcp_monitored = tcp_monitored
        self.probes = MappingProxyType(dict(probes or {}))
        self.epoch = 0
        self._seq = 0
        self._prev_ts_ns = start_ts_ns
        self._cumulative: dict[StatKey, SyscallStats] = {}
        self._baseline: dict[StatKey, SyscallStats] = {}
        self._since_reset: dict[StatKey, SyscallStats] | None = None

    def reset(self) -> None:
        self._baseline = dict(self._cumulative)
        self._since_reset = {}
        self.epoch += 1

    def _apply(self, changes: Mapping[StatKey, SyscallStats],
               deltas: Mapping[StatKey, SyscallStats] | None) -> Mapping[StatKey, SyscallStats]:
        interval: dict[StatKey, SyscallStats] = {}
        for key, now in changes.items():
            if deltas is None:
                before = self._cumulative.get(key)
                interval[key] = now if before is None else now - before
            self._cumulative[key] = now
            if self._since_reset is not None:
                base = self._baseline.get(key)
                self._since_reset[key] = now if base is None else now - base
        return interval if deltas is None else deltas

    def build(
        self,
        *,
        ts_ns: int,
        wall_time: float,
        state: TraceState,
        changes: Mapping[StatKey, SyscallStats],
        events: np.ndarray,
        deltas: Mapping[StatKey, SyscallStats] | None = None,
        proc_events: Iterable[ProcEvent],
        processes: Mapping[int, ProcessInfo],
        drops: Drops,
        tracer_cpu_s: float,
        target_exit: ExitStatus | None = None,
        samples: Iterable[StackSample] = (),
        connections: tuple[Connection, ...] = (),
        samples_until_ns: int = 0,
    ) -> Snapshot:
        """`changes`: the entries that are new or changed since the last build, cumulative;
        `deltas`: their change since then, when the caller has it (else it is computed)."""
        interval = self._apply(changes, deltas)
        shown = self._cumulative if self._since_reset is None else self._since_reset
        interval_s = max((ts_ns - self._prev_ts_ns) / 1e9, 1e-9)
        self._prev_ts_ns = ts_ns
        self._seq += 1
        return Snapshot(
            seq=self._seq,
            ts_ns=ts_ns,
            wall_time=wall_time,
            start_ts_ns=self.start_ts_ns,
            start_wall_time=self.start_wall_time,
            arch=self.arch,
            state=state,
            stats=MappingProxyType(dict(shown)),
            interval=MappingProxyType(dict(interval)),
            interval_s=interval_s,
            processes=MappingProxyType(processes),  # the tracker never mutates a handed-out dict
            events=events,
            proc_events=tuple(proc_events),
            drops=drops,
            tracer_cpu_s=tracer_cpu_s,
            target_exit=target_exit,
            targets=self.targets,
            epoch=self.epoch,
            samples=tuple(samples),
            samples_until_ns=samples_until_ns,
            connections=connections,
            tcp_monitored=self.tcp_monitored,
            sample_hz=self.sample_hz,
            probes=self.probes,
        )


def rebase(snapshot: Snapshot, baseline: Snapshot | None) -> Snapshot:
    """The snapshot as counted since `baseline` (for reset in replayed sessions); its
    samples stay cumulative (SampleSet keeps its own baseline)."""
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
    # Counted since the baseline: nothing happened in between, and its events are older.
    return dataclasses.replace(snapshot, stats=MappingProxyType(stats),
                               interval=MappingProxyType({}), events=no_events(),
                               epoch=snapshot.epoch + 1)
