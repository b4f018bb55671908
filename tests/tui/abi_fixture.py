"""Two ABIs in one replay (issue 16): the recorded session (tests/tui/data), unchanged, with a
32-bit process added whose calls the kernel keyed as i386 (StatKey.abi 1): getppid (i386 64,
which x86_64 calls semget) beside the recording's own x86_64 getppid, and _llseek (i386 140)
cut short by signals (ERESTARTSYS). The process's ABI was never read (it was gone before
/proc was), as for a short-lived one: the names come from the keys alone.
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

import numpy as np

from syscall_tables import ABI_COMPAT
from tracing.model.stats import EVENT_DTYPE, ProcessInfo, Snapshot, StatKey, SyscallStats

PID32 = 4343
GETPPID32 = StatKey(PID32, PID32, 64, ABI_COMPAT)
LLSEEK32 = StatKey(PID32, PID32, 140, ABI_COMPAT)
GETPPID_PER_TICK = 100
ERESTARTSYS = 512


def _stats(count: int, errors: int = 0) -> SyscallStats:
    return SyscallStats(count, errors, 1_000 * count, 1_000, 1_000, ((64, count),))


def _event(s: Snapshot) -> np.ndarray:
    e = np.zeros(1, dtype=EVENT_DTYPE)
    e["ts"], e["pid"], e["tid"], e["nr"] = s.ts_ns - 1, PID32, PID32, LLSEEK32.nr
    e["ret"], e["duration_ns"], e["abi"] = -ERESTARTSYS, 1_000, ABI_COMPAT
    return e


def with_i386(snapshots: list[Snapshot]) -> list[Snapshot]:
    """Each snapshot with the i386 process's calls: GETPPID_PER_TICK getppid and one
    failed _llseek (an event) per snapshot."""
    out = []
    for n, s in enumerate(snapshots, start=1):
        total = {GETPPID32: _stats(GETPPID_PER_TICK * n), LLSEEK32: _stats(n, n)}
        delta = {GETPPID32: _stats(GETPPID_PER_TICK), LLSEEK32: _stats(1, 1)}
        events = np.concatenate([s.events, _event(s)])
        events.setflags(write=False)
        data = (*s.event_data, b"") if len(s.event_data) == len(s.events) and s.event_data \
            else s.event_data
        processes = {**s.processes, PID32: ProcessInfo(PID32, 1, "old32", "", ("old32",))}
        out.append(dataclasses.replace(
            s, stats=MappingProxyType({**s.stats, **total}),
            interval=MappingProxyType({**s.interval, **delta}),
            since_start=None if s.since_start is None
            else MappingProxyType({**s.since_start, **total}),
            processes=MappingProxyType(processes), events=events, event_data=data))
    return out
