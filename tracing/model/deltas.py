"""Sums of snapshot intervals: the statistics of a stretch of time, made of the changes
(Snapshot.interval) that fall inside it.

A stretch's counts, errors, total time and histogram are exact sums. Its minimum and maximum
are not kept by the kernel (it keeps them since the start only), so they are bounded by the
stretch's histogram: the lowest bucket's lower bound, and the highest bucket's upper bound or
the maximum since the start, whichever is lower (what the journal's timeline stores too).
Percentiles come from the summed histogram, exactly as a saved session's stretch gives them.

Pure: no bcc, no Textual.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from tracing.model.stats import StatKey, SyscallStats, bucket_bounds

Sums = list[int]  # count, errors, total_ns, max_ns since the start (an upper bound)


def stretch_stats(count: int, errors: int, total_ns: int, max_ns: int,
                  hist: Mapping[int, int]) -> SyscallStats:
    """One entry of a stretch, its extremes bounded by its histogram (see the module)."""
    buckets = tuple(sorted((b, c) for b, c in hist.items() if c))
    if not buckets:
        return SyscallStats(count, errors, total_ns, 0, 0, ())
    low = bucket_bounds(buckets[0][0])[0]
    high = bucket_bounds(buckets[-1][0])[1] - 1
    if max_ns:
        high = max(min(high, max_ns), low)
    return SyscallStats(count, errors, total_ns, low, high, buckets)


class DeltaSum:
    """Per StatKey, the sum of the intervals added, less those subtracted (a sliding window
    adds each new interval and subtracts those that fall out of it). An entry whose count
    comes back to zero is forgotten. `stats()` is cheap when little changed: each entry's
    SyscallStats is made again only after it changed."""

    def __init__(self) -> None:
        self._sums: dict[StatKey, Sums] = {}
        self._hists: dict[StatKey, dict[int, int]] = {}
        self._made: dict[StatKey, SyscallStats] = {}

    def __len__(self) -> int:
        return len(self._sums)

    def clear(self) -> None:
        self._sums.clear()
        self._hists.clear()
        self._made.clear()

    def add(self, interval: Mapping[StatKey, SyscallStats]) -> None:
        for key, delta in interval.items():
            if not delta.count:
                continue
            sums = self._sums.get(key)
            if sums is None:
                sums = self._sums[key] = [0, 0, 0, 0]
                self._hists[key] = {}
            sums[0] += delta.count
            sums[1] += delta.errors
            sums[2] += delta.total_ns
            sums[3] = max(sums[3], delta.max_ns)
            hist = self._hists[key]
            for bucket, n in delta.hist:
                hist[bucket] = hist.get(bucket, 0) + n
            self._made.pop(key, None)

    def subtract(self, interval: Mapping[StatKey, SyscallStats]) -> None:
        """Take off an interval added before (whole: never a part of one)."""
        for key, delta in interval.items():
            sums = self._sums.get(key)
            if sums is None or not delta.count:
                continue
            sums[0] -= delta.count
            sums[1] -= delta.errors
            sums[2] -= delta.total_ns
            self._made.pop(key, None)
            if sums[0] <= 0:
                del self._sums[key], self._hists[key]
                continue
            hist = self._hists[key]
            for bucket, n in delta.hist:
                left = hist.get(bucket, 0) - n
                if left > 0:
                    hist[bucket] = left
                else:
                    hist.pop(bucket, None)

    def stats(self) -> dict[StatKey, SyscallStats]:
        """Every entry with calls in the stretch (a new dict: the caller may keep it)."""
        made = self._made
        for key, sums in self._sums.items():
            if key not in made:
                made[key] = stretch_stats(sums[0], sums[1], sums[2], sums[3], self._hists[key])
        return dict(made)


def sum_intervals(intervals: Iterable[Mapping[StatKey, SyscallStats]]
                  ) -> dict[StatKey, SyscallStats]:
    """The stretch made of these intervals."""
    total = DeltaSum()
    for interval in intervals:
        total.add(interval)
    return total.stats()
