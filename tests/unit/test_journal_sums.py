"""The journal's sums of a flush (tracing/session/journal_writer.py): an entry's changes over
the flushed snapshots summed as one, and SQL sikte_hist_add adding two histogram blobs, give
what the plain definitions give (a SyscallStats merged step by step with hist_merge, and the
blobs decoded, merged and encoded again), for every shape a flush meets."""

from __future__ import annotations

import random
import sqlite3
from types import MappingProxyType

from tracing.model.stats import (
    Drops,
    Hist,
    Snapshot,
    StatKey,
    SyscallStats,
    TraceState,
    hist_merge,
    no_events,
)
from tracing.session.journal_writer import JournalWriter, _hist_add, summed_intervals
from tracing.session.schema import apply_migrations, hist_from_blob, hist_to_blob


def added(first: SyscallStats, then: SyscallStats) -> SyscallStats:
    """The definition: two successive changes as one (min and max: the later's)."""
    return SyscallStats(first.count + then.count, first.errors + then.errors,
                        first.total_ns + then.total_ns, then.min_ns, then.max_ns,
                        hist_merge((first.hist, then.hist)))


def folded(snapshots: list[Snapshot]) -> dict[StatKey, SyscallStats]:
    changes: dict[StatKey, SyscallStats] = {}
    for snapshot in snapshots:
        for key, delta in snapshot.interval.items():
            before = changes.get(key)
            changes[key] = delta if before is None else added(before, delta)
    return changes


def a_hist(rng: random.Random, most: int) -> Hist:
    return tuple(sorted({rng.randint(0, 300): rng.randint(1, 10**6)
                         for _ in range(rng.randint(0, most))}.items()))


def a_snapshot(seq: int, interval: dict[StatKey, SyscallStats]) -> Snapshot:
    return Snapshot(
        seq=seq, ts_ns=seq * 250_000_000, wall_time=1_700_000_000.0 + seq / 4, start_ts_ns=0,
        start_wall_time=1_700_000_000.0, arch="x86_64", state=TraceState.TRACING,
        stats=MappingProxyType(dict(interval)), interval=MappingProxyType(interval),
        interval_s=0.25, processes=MappingProxyType({}), events=no_events(), proc_events=(),
        drops=Drops(), tracer_cpu_s=0.0)


def flushed(rng: random.Random, n: int = 4) -> list[Snapshot]:
    """Snapshots whose entries change in some of them: once, several times, never twice
    alike; some changes without a call (count 0, no histogram)."""
    keys = [StatKey(10 + i % 3, 100 + i, nr, i % 2) for i in range(60) for nr in (0, 39)]
    out = []
    for seq in range(1, n + 1):
        interval = {}
        for key in rng.sample(keys, rng.randint(1, len(keys))):
            hist = a_hist(rng, 6)
            count = sum(c for _, c in hist)
            interval[key] = SyscallStats(count, rng.randint(0, 3), rng.randint(0, 10**9),
                                         rng.randint(0, 99), rng.randint(100, 10**6), hist)
        out.append(a_snapshot(seq, interval))
    return out


def test_a_flush_sums_each_entry_as_merging_step_by_step_does() -> None:
    rng = random.Random(11)
    for n in (1, 2, 4, 7):
        snapshots = flushed(rng, n)
        assert summed_intervals(snapshots) == folded(snapshots)


def test_an_entry_changed_once_is_its_change_as_it_came() -> None:
    change = SyscallStats(3, 1, 300, 50, 150, ((9, 1), (12, 2)))
    key = StatKey(1, 1, 0)
    summed = summed_intervals([a_snapshot(1, {key: change}), a_snapshot(2, {})])
    assert summed == {key: change}


def test_sikte_hist_add_adds_the_buckets_of_two_blobs() -> None:
    rng = random.Random(5)
    for _ in range(2000):
        old, new = a_hist(rng, 12), a_hist(rng, 6)
        old_blob = hist_to_blob(old) if old or rng.random() < 0.5 else None
        expected = hist_to_blob(hist_merge((hist_from_blob(old_blob), hist_from_blob(
            hist_to_blob(new)))))
        assert _hist_add(old_blob, hist_to_blob(new)) == expected
    assert _hist_add(None, None) == _hist_add(b"", b"") == b""
    assert hist_from_blob(_hist_add(hist_to_blob(((3, 2), (7, 1))),
                                    hist_to_blob(((1, 4), (7, 5))))) == ((1, 4), (3, 2), (7, 6))


def test_flushed_rows_hold_the_sum_of_every_flush() -> None:
    """Through SQLite: after several flushes each aggregates row is the entry's changes
    over all of them (the upsert adds counts and histograms with sikte_hist_add)."""
    rng = random.Random(3)
    snapshots = flushed(rng, 9)
    db = sqlite3.connect(":memory:")
    with db:
        apply_migrations(db, 0)
    writer = JournalWriter()
    for start in range(0, 9, 4):
        writer.flush(db, snapshots[start:start + 4], {})
    rows = {StatKey(pid, tid, nr, abi): (count, errors, total, hist_from_blob(hist))
            for pid, tid, nr, abi, count, errors, total, hist in db.execute(
                "SELECT pid, tid, nr, abi, count, errors, total_ns, hist FROM aggregates")}
    expected = {k: (s.count, s.errors, s.total_ns, s.hist)
                for k, s in folded(snapshots).items()}
    assert rows == expected
