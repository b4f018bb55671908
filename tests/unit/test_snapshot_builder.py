"""SnapshotBuilder and the PersistentMap its snapshots share (no root): a later tick never
changes what an earlier snapshot shows, reset() counts from a baseline while the totals since
the start stay carried, and the journal writes those totals."""

from __future__ import annotations

import pickle
import random
import sqlite3

import pytest

from tracing.model.persistent_map import CHUNK, PersistentMap
from tracing.model.snapshots import SnapshotBuilder, rebase
from tracing.model.stats import Drops, Snapshot, StatKey, SyscallStats, TraceState, no_events
from tracing.session.journal_writer import JournalWriter
from tracing.session.schema import apply_migrations

A, B, C = StatKey(1, 1, 0), StatKey(1, 2, 1), StatKey(2, 2, 60)


def stats(count: int, errors: int = 0) -> SyscallStats:
    return SyscallStats(count, errors, count * 100, 100, 100, ((100, count),) if count else ())


def build(builder: SnapshotBuilder, tick: int, changes: dict[StatKey, SyscallStats],
          deltas: dict[StatKey, SyscallStats] | None = None) -> Snapshot:
    return builder.build(ts_ns=tick * 250_000_000, wall_time=float(tick),
                         state=TraceState.TRACING, changes=changes, deltas=deltas,
                         events=no_events(), proc_events=(), processes={}, drops=Drops(),
                         tracer_cpu_s=0.0)


# -- PersistentMap ---------------------------------------------------------------------------

def test_every_version_keeps_what_it_held_in_insertion_order():
    rng = random.Random(14)
    current, expected = PersistentMap[int, float](), {}
    versions = []
    for _ in range(200):
        changes = {rng.randrange(3 * CHUNK * 10): rng.random() for _ in range(rng.randrange(40))}
        current = current.updated(changes)
        expected.update(changes)
        versions.append((current, dict(expected)))
    for version, held in versions:
        assert len(version) == len(held)
        assert list(version.items()) == list(held.items())
        assert list(version.values()) == list(held.values())
        assert version == held and dict(version) == held
        missing = max(held) + 1
        assert missing not in version and version.get(missing, "none") == "none"
        with pytest.raises(KeyError):
            version[missing]


def test_two_versions_made_from_one_do_not_see_each_other():
    base = PersistentMap({1: "a", 2: "b"})
    left = base.updated({3: "left"})
    right = base.updated({4: "right", 1: "A"})
    assert dict(base) == {1: "a", 2: "b"}
    assert dict(left) == {1: "a", 2: "b", 3: "left"}
    assert dict(right) == {1: "A", 2: "b", 4: "right"}
    assert 4 not in left and 3 not in right
    assert left.updated({5: "x"})[5] == "x" and 5 not in right


def test_an_empty_change_is_the_same_version_and_copies_are_equal():
    m = PersistentMap({StatKey(1, 1, 1): stats(3)})
    assert m.updated({}) is m
    assert pickle.loads(pickle.dumps(m)) == m
    assert "PersistentMap(" in repr(m)


# -- SnapshotBuilder -------------------------------------------------------------------------

def test_a_later_tick_never_changes_an_earlier_snapshot():
    builder = SnapshotBuilder(0, 0.0, "x86_64")
    first = build(builder, 1, {A: stats(1), B: stats(2)})
    second = build(builder, 2, {A: stats(5)})
    build(builder, 3, {C: stats(7), B: stats(9)})
    assert dict(first.stats) == {A: stats(1), B: stats(2)}
    assert dict(second.stats) == {A: stats(5), B: stats(2)}
    assert dict(second.interval) == {A: stats(5) - stats(1)}
    assert first.totals is first.stats and first.since_start is None


def test_the_totals_carried_are_the_ones_handed_in_and_the_interval_the_deltas():
    builder = SnapshotBuilder(0, 0.0, "x86_64")
    build(builder, 1, {A: stats(4)})
    delta = SyscallStats(2, 0, 200, 100, 100, ((100, 2),))
    snap = build(builder, 2, {A: stats(6)}, deltas={A: delta})
    assert snap.stats[A] == stats(6) and snap.interval[A] == delta


def test_reset_counts_from_a_baseline_and_keeps_the_totals_since_the_start():
    builder = SnapshotBuilder(0, 0.0, "x86_64")
    before = build(builder, 1, {A: stats(10, 1), B: stats(3)})
    builder.reset()
    after = build(builder, 2, {A: stats(15, 2), C: stats(4)})
    assert after.epoch == before.epoch + 1
    assert dict(after.stats) == {A: stats(15, 2) - stats(10, 1), C: stats(4)}
    assert dict(after.totals) == {A: stats(15, 2), B: stats(3), C: stats(4)}
    assert dict(before.stats) == {A: stats(10, 1), B: stats(3)}  # unchanged by the reset
    builder.reset()
    again = build(builder, 3, {B: stats(8)})
    assert dict(again.stats) == {B: stats(8) - stats(3)}
    assert again.totals[A] == stats(15, 2) and again.totals[B] == stats(8)


def test_rebase_keeps_the_totals_since_the_start():
    builder = SnapshotBuilder(0, 0.0, "x86_64")
    base = build(builder, 1, {A: stats(2)})
    now = build(builder, 2, {A: stats(5), B: stats(1)})
    rebased = rebase(now, base)
    assert dict(rebased.stats) == {A: stats(5) - stats(2), B: stats(1)}
    assert dict(rebased.totals) == dict(now.stats)


# -- the journal writes the totals the snapshots carry ---------------------------------------

def aggregates(db: sqlite3.Connection) -> dict[StatKey, tuple[int, int]]:
    rows = db.execute("SELECT pid, tid, nr, count, errors FROM aggregates").fetchall()
    return {StatKey(p, t, n): (count, errors) for p, t, n, count, errors in rows}


def test_the_journal_writes_totals_since_the_start_across_a_reset():
    db = sqlite3.connect(":memory:")
    with db:
        apply_migrations(db, 0)
    writer = JournalWriter()
    builder = SnapshotBuilder(0, 0.0, "x86_64")
    writer.flush(db, [build(builder, 1, {A: stats(10, 1), B: stats(3)})], {})
    builder.reset()
    batch = [build(builder, 2, {A: stats(12, 1)}), build(builder, 3, {C: stats(4, 4)})]
    writer.flush(db, batch, {})
    assert aggregates(db) == {A: (12, 1), B: (3, 0), C: (4, 4)}
    timeline = db.execute("SELECT sum(count) FROM timeline").fetchone()[0]
    assert timeline == 12 + 3 + 4
