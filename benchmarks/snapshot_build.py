"""What one tick costs SnapshotBuilder.build when a few entries of many change.

20,000 (pid, tid, syscall) entries, of which 50 change per tick, as the engine hands them over
(the changed entries' totals and their deltas): the builder should cost in proportion to the
50, not to the 20,000. Timed before and after a reset (R in the TUI: totals counted since a
baseline), and the journal writer's flush of the same ticks (4 per flush, as at 4 Hz with the
journal's 1 s flush).

`.venv/bin/python -m benchmarks.snapshot_build` (no root); `--keys`, `--changed`, `--ticks`.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import time
from collections.abc import Callable
from statistics import median

from tracing.model.snapshots import SnapshotBuilder
from tracing.model.stats import Drops, Snapshot, StatKey, SyscallStats, TraceState, no_events


def _stats(count: int) -> SyscallStats:
    return SyscallStats(count, count // 10, count * 1000, 500, 9000, ((10, count),))


def _keys(n: int) -> list[StatKey]:
    return [StatKey(1000 + i // 200, 1000 + i // 20, i % 20) for i in range(n)]


def _build(builder: SnapshotBuilder, tick: int, changes: dict[StatKey, SyscallStats],
           deltas: dict[StatKey, SyscallStats]) -> Snapshot:
    return builder.build(ts_ns=(tick + 1) * 250_000_000, wall_time=float(tick),
                         state=TraceState.TRACING, changes=changes, deltas=deltas,
                         events=no_events(), proc_events=(), processes={}, drops=Drops(),
                         tracer_cpu_s=0.0)


class Ticks:
    """The engine's side: totals per entry, and the changes of each tick."""

    def __init__(self, n_keys: int, n_changed: int, seed: int = 1) -> None:
        self.keys = _keys(n_keys)
        self.counts = dict.fromkeys(self.keys, 1)
        self.n_changed = n_changed
        self.rng = random.Random(seed)

    def first(self) -> tuple[dict[StatKey, SyscallStats], dict[StatKey, SyscallStats]]:
        totals = {k: _stats(c) for k, c in self.counts.items()}
        return totals, dict(totals)

    def next(self) -> tuple[dict[StatKey, SyscallStats], dict[StatKey, SyscallStats]]:
        changes, deltas = {}, {}
        for key in self.rng.sample(self.keys, self.n_changed):
            before = self.counts[key]
            self.counts[key] = now = before + self.rng.randint(1, 100)
            changes[key] = _stats(now)
            deltas[key] = _stats(now) - _stats(before)
        return changes, deltas


def time_builds(n_keys: int, n_changed: int, ticks: int, reset: bool,
                keep: int = 41) -> tuple[list[float], list[Snapshot]]:
    """Seconds per build over `ticks` ticks (after the first, which brings every entry), and
    the first `keep` snapshots (the UI keeps a few seconds' worth, not all of them)."""
    source = Ticks(n_keys, n_changed)
    builder = SnapshotBuilder(0, 0.0, "x86_64")
    snapshots = [_build(builder, 0, *source.first())]
    if reset:
        builder.reset()
    times = []
    for tick in range(1, ticks + 1):
        changes, deltas = source.next()
        started = time.perf_counter()
        snapshot = _build(builder, tick, changes, deltas)
        times.append(time.perf_counter() - started)
        if len(snapshots) < keep:
            snapshots.append(snapshot)
    return times, snapshots


def time_flushes(snapshots: list[Snapshot], per_flush: int = 4) -> list[float]:
    from tracing.session.journal_writer import JournalWriter
    from tracing.session.schema import apply_migrations

    db = sqlite3.connect(":memory:")
    with db:
        apply_migrations(db, 0)
    writer, times = JournalWriter(), []
    writer.flush(db, snapshots[:1], {})
    for i in range(1, len(snapshots), per_flush):
        batch = snapshots[i:i + per_flush]
        started = time.perf_counter()
        writer.flush(db, batch, {})
        times.append(time.perf_counter() - started)
    return times


def _line(what: str, times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[int(len(ordered) * 0.95)]
    return f"{what:<38} median {median(times) * 1e6:9.1f} µs   p95 {p95 * 1e6:9.1f} µs"


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=20_000)
    parser.add_argument("--changed", type=int, default=50)
    parser.add_argument("--ticks", type=int, default=400)
    args = parser.parse_args(argv)
    out(f"{args.keys:,} entries, {args.changed} changed per tick, {args.ticks} ticks")
    times, snapshots = time_builds(args.keys, args.changed, args.ticks, reset=False)
    out(_line("SnapshotBuilder.build", times))
    reset_times, _ = time_builds(args.keys, args.changed, args.ticks, reset=True)
    out(_line("SnapshotBuilder.build after reset()", reset_times))
    out(_line("JournalWriter.flush (4 snapshots)", time_flushes(snapshots)))


if __name__ == "__main__":
    main()
