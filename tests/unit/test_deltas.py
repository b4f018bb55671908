"""Sums of intervals (tracing/model/deltas.py): exact counts and histograms, extremes bounded
by the histogram, entries forgotten when their calls leave the stretch."""

from __future__ import annotations

from tracing.model.deltas import DeltaSum, stretch_stats, sum_intervals
from tracing.model.stats import StatKey, SyscallStats, bucket_bounds, bucket_of

A, B = StatKey(10, 10, 39), StatKey(10, 11, 0)


def delta(count: int, duration_ns: int, errors: int = 0, max_ns: int = 0) -> SyscallStats:
    return SyscallStats(count, errors, count * duration_ns, 0, max_ns or duration_ns,
                        ((bucket_of(duration_ns), count),))


def test_sums_are_exact_and_percentiles_come_from_the_summed_histogram() -> None:
    stats = sum_intervals([{A: delta(3, 1000)}, {A: delta(1, 50_000, errors=1), B: delta(2, 10)}])
    assert stats[A].count == 4 and stats[A].errors == 1 and stats[A].total_ns == 53_000
    assert stats[A].hist == ((bucket_of(1000), 3), (bucket_of(50_000), 1))
    assert stats[B].count == 2 and stats[B].total_ns == 20
    low, high = bucket_bounds(bucket_of(1000))
    assert stats[A].min_ns == low
    assert stats[A].quantile(0.5) == (low + high - 1) // 2
    assert stats[A].max_ns == 50_000  # the maximum since the start is below the bucket's top


def test_subtracting_an_interval_leaves_the_others_and_forgets_emptied_entries() -> None:
    window = DeltaSum()
    first, second = {A: delta(3, 1000), B: delta(2, 10)}, {A: delta(5, 2000)}
    window.add(first)
    window.add(second)
    assert window.stats()[A].count == 8
    window.subtract(first)
    stats = window.stats()
    assert set(stats) == {A}
    assert stats[A].count == 5 and stats[A].total_ns == 10_000
    assert stats[A].hist == ((bucket_of(2000), 5),)
    window.subtract(second)
    assert window.stats() == {} and len(window) == 0


def test_an_empty_histogram_has_no_extremes() -> None:
    assert stretch_stats(0, 0, 0, 7, {}) == SyscallStats()
