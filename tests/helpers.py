"""Helpers shared by the test folders: waiting on a condition with a deadline, and making
snapshots heavier."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from types import MappingProxyType

import numpy as np
import pytest

from tracing.model.stats import EVENT_DTYPE, Snapshot, StatKey, SyscallStats, merge_stats


def wait_until(condition: Callable[[], object], what: str = "the condition",
               timeout: float = 30.0, interval: float = 0.05,
               seen: Callable[[], object] | None = None) -> object:
    """The first true value of `condition()` before the deadline; past it, the test fails
    saying what it waited for and the last value seen (of `seen()` when given)."""
    end = time.monotonic() + timeout
    value = condition()
    while not value:
        if time.monotonic() >= end:
            last = seen() if seen is not None else value
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}; last: {last!r}")
        time.sleep(interval)
        value = condition()
    return value


def with_extra_events(snapshot: Snapshot, n: int) -> Snapshot:
    """The snapshot with n individual events more (88 bytes each), to fill a cap or a disk."""
    extra = np.zeros(n, dtype=EVENT_DTYPE)
    extra["ts"] = snapshot.ts_ns - 1
    extra["pid"] = extra["tid"] = 1
    events = np.concatenate([snapshot.events, extra])
    events.setflags(write=False)
    return dataclasses.replace(snapshot, events=events)


def played_again(snapshots: list[Snapshot], times: int) -> list[Snapshot]:
    """The stream `times` times over, as one trace going on: each round's totals (`stats`)
    continue from the round before, as the engine's would (the journal writes the totals the
    snapshots carry, it does not add up their intervals)."""
    running: dict[StatKey, SyscallStats] = {}
    out = []
    for _ in range(times):
        for s in snapshots:
            for key, delta in s.interval.items():
                before = running.get(key)
                running[key] = delta if before is None else merge_stats((before, delta))
            out.append(dataclasses.replace(s, stats=MappingProxyType(dict(running))))
    return out
