"""The session's activity over time (tracing/model/timeseries.py, tracing/session/series.py):
exact sums per slot, widths that double when the slots are full, rates per covered second,
the recent fixed slots of the live windows, and a saved session's series from its timeline
equal to the live one built from the same snapshots."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

import pytest

from tracing.model.stats import (
    Drops,
    ProcessInfo,
    Snapshot,
    StatKey,
    SyscallStats,
    TraceState,
    bucket_bounds,
    bucket_of,
    no_events,
)
from tracing.model.timeseries import RecentRates, SessionSeries
from tracing.session.journal import Journal
from tracing.session.series import stored_series

START = 5_000_000_000
TICK = 250_000_000
GETPPID, OPENAT = StatKey(10, 10, 110), StatKey(10, 10, 257)
OPENAT_CHILD = StatKey(11, 11, 257)


def delta(count: int, duration_ns: int, errors: int = 0) -> SyscallStats:
    return SyscallStats(count, errors, count * duration_ns, duration_ns, duration_ns,
                        ((bucket_of(duration_ns), count),))


def snap(tick: int, interval: dict[StatKey, SyscallStats], total: dict[StatKey, SyscallStats],
         state: TraceState = TraceState.TRACING) -> Snapshot:
    return Snapshot(
        seq=tick, ts_ns=START + tick * TICK, wall_time=1_700_000_000.0 + tick / 4,
        start_ts_ns=START, start_wall_time=1_700_000_000.0, arch="x86_64", state=state,
        stats=MappingProxyType(dict(total)), interval=MappingProxyType(interval),
        interval_s=TICK / 1e9,
        processes=MappingProxyType({10: ProcessInfo(10, 1, "work"),
                                    11: ProcessInfo(11, 10, "child")}),
        events=no_events(), proc_events=(), drops=Drops(), tracer_cpu_s=0.0)


def phased(ticks: int = 16) -> list[Snapshot]:
    """Ticks 1..ticks: the first half 40 getppid (1 µs) a tick; the second half 8 openat
    (20 µs) a tick, 3 of them failed, and 2 more from a child process (5 µs)."""
    total: dict[StatKey, SyscallStats] = {}
    out = []
    for tick in range(1, ticks + 1):
        if tick <= ticks // 2:
            interval = {GETPPID: delta(40, 1000)}
        else:
            interval = {OPENAT: delta(8, 20_000, errors=3), OPENAT_CHILD: delta(2, 5000)}
        for key, d in interval.items():
            before = total.get(key, SyscallStats())
            total[key] = SyscallStats(before.count + d.count, before.errors + d.errors,
                                      before.total_ns + d.total_ns, 0, 0, ())
        out.append(snap(tick, interval, total))
    return out


def live(snapshots: list[Snapshot], **kwargs: int) -> SessionSeries:
    series = SessionSeries(**kwargs)
    for s in snapshots:
        series.add(s)
    return series


def test_each_slot_holds_the_intervals_that_end_in_it_exactly() -> None:
    series = live(phased())
    points = series.rates()
    # 16 ticks of 0.25 s: 8 slots of 0.5 s, two ticks each (ticks 1-2 end in slot 0, ...).
    assert [(p.start_s, p.end_s) for p in points] == [(k / 2, (k + 1) / 2) for k in range(8)]
    assert [p.calls for p in points] == [80] * 4 + [20] * 4
    assert [p.errors for p in points] == [0] * 4 + [6] * 4
    assert [p.seconds for p in points] == [0.5] * 8
    assert [p.calls_per_s for p in points] == [160.0] * 4 + [40.0] * 4
    assert [p.errors_per_s for p in points] == [0.0] * 4 + [12.0] * 4
    assert sum(p.calls for p in points) == sum(s.count for s in phased()[-1].stats.values())


def test_a_syscall_merges_its_processes_and_keeps_its_histogram() -> None:
    series = live(phased())
    assert series.syscall_ids() == {(110, 0), (257, 0)}
    points = series.syscall({(257, 0)})
    assert [p.stats.count for p in points] == [0] * 4 + [20] * 4
    last = points[-1]
    assert (last.stats.errors, last.stats.total_ns) == (6, 2 * 8 * 20_000 + 2 * 2 * 5000)
    assert last.stats.hist == ((bucket_of(5000), 4), (bucket_of(20_000), 16))
    assert last.calls_per_s == 40.0
    low, high = bucket_bounds(bucket_of(20_000))
    assert last.quantile_ns(0.5) == last.quantile_ns(0.99) == (low + high - 1) // 2
    low, high = bucket_bounds(bucket_of(5000))
    assert last.quantile_ns(0.2) == (low + high - 1) // 2  # 4 of 20 are the child's 5 µs
    getppid = series.syscall({(110, 0)})
    assert [p.stats.count for p in getppid] == [80] * 4 + [0] * 4
    assert getppid[0].quantile_ns(0.99) == (lambda b: (b[0] + b[1] - 1) // 2)(
        bucket_bounds(bucket_of(1000)))


def test_a_stretch_picks_the_slots_it_overlaps() -> None:
    series = live(phased())
    since = START + 2_500_000_000  # 2.5 s: slots 5..7
    assert [p.start_s for p in series.rates(since)] == [2.5, 3.0, 3.5]
    assert [p.start_s for p in series.rates(START + 1_200_000_000, START + 2_000_000_000)] \
        == [1.0, 1.5]
    assert series.offset_s(since) == 2.5


def test_full_slots_double_their_width_and_keep_every_call() -> None:
    series = live(phased(16), max_slots=4)  # 8 half-second slots do not fit in 4
    assert series.slot_ns == 1_000_000_000 and len(series) == 4
    points = series.rates()
    assert [(p.start_s, p.end_s) for p in points] == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0),
                                                      (3.0, 4.0)]
    assert [p.calls for p in points] == [160, 160, 40, 40]
    assert [p.seconds for p in points] == [1.0] * 4
    assert [p.calls_per_s for p in points] == [160.0, 160.0, 40.0, 40.0]
    assert [p.stats.errors for p in series.syscall({(257, 0)})] == [0, 0, 12, 12]
    # Twice more: a long session stays within its slots.
    longer = live(phased(64), max_slots=4)
    assert longer.slot_ns == 4_000_000_000 and len(longer) == 4
    assert [p.calls for p in longer.rates()] == [640, 640, 160, 160]


def test_a_slot_rate_is_per_second_its_intervals_cover() -> None:
    series = SessionSeries(START)
    # One tick that lasted 2 s (a loaded machine) ends in slot 3: its rate is per 2 s.
    series.add(dataclasses.replace(snap(8, {GETPPID: delta(100, 1000)}, {}), interval_s=2.0))
    (point,) = series.rates()  # the slots nothing ended in cover no time: not drawn
    assert (point.start_s, point.calls, point.seconds, point.calls_per_s) == (1.5, 100, 2.0, 50.0)


def test_a_tick_shown_again_counts_once() -> None:
    snapshots = phased(4)
    series = live(snapshots)
    series.add(dataclasses.replace(snapshots[-1], interval=MappingProxyType({})))  # a reset
    assert [(p.calls, p.seconds) for p in series.rates()] == [(80, 0.5), (20, 0.5)]


def test_saved_snapshots_are_stretches_not_ticks() -> None:
    series = SessionSeries()
    series.add(snap(4, {GETPPID: delta(5, 10)}, {}, state=TraceState.SAVED))
    assert len(series) == 0 and series.start_ns is None


def test_recent_rates_keep_fixed_slots_and_forget_the_oldest() -> None:
    recent = RecentRates(slot_ns=1_000_000_000, kept_ns=3_000_000_000)
    for second in range(1, 7):
        recent.add(second * 1_000_000_000, 1.0, 10 * second, second)
    points = recent.rates(0, 0)
    assert [p.start_s for p in points] == [3.0, 4.0, 5.0]  # the last 3 slots
    assert [p.calls for p in points] == [40, 50, 60]
    assert [p.errors_per_s for p in points] == [4.0, 5.0, 6.0]
    assert [p.start_s for p in recent.rates(4_500_000_000, 1_000_000_000)] == [3.0, 4.0]


def test_the_live_series_feeds_the_recent_rates() -> None:
    series = live(phased())
    points = series.recent.rates(START + 3_000_000_000, START)
    assert [(p.start_s, p.calls, p.errors) for p in points] == [(3.0, 20, 6), (3.5, 20, 6)]


@pytest.mark.parametrize("max_slots", [240, 4])
def test_a_saved_session_gives_the_live_series(max_slots: int) -> None:
    snapshots = phased()
    journal = Journal(None, {"targets": ["work"]})
    for s in snapshots:
        journal.put(s)
    journal.close()
    saved = stored_series(journal.stored(), max_slots=max_slots)
    ran = live(snapshots, max_slots=max_slots)
    assert saved.closed and saved.slot_ns == ran.slot_ns
    assert [(p.start_s, p.calls, p.errors, p.seconds) for p in saved.rates()] \
        == [(p.start_s, p.calls, p.errors, p.seconds) for p in ran.rates()]
    for sid in ((110, 0), (257, 0)):
        assert [p.stats for p in saved.syscall({sid})] == [p.stats for p in ran.syscall({sid})]


def test_a_saved_session_covers_its_quiet_slots_and_clips_the_last() -> None:
    series = SessionSeries(START)
    series.add_entry(START + 400_000_000, 110, 0, 7, 1, 700, ((bucket_of(100), 7),))
    series.close(START + 1_700_000_000)
    points = series.rates()
    assert [(p.start_s, p.calls, p.seconds) for p in points] == [
        (0.0, 7, 0.5), (0.5, 0, 0.5), (1.0, 0, 0.5), (1.5, 0, 0.2)]
    assert points[0].calls_per_s == 14.0


def test_bad_slots_are_refused() -> None:
    with pytest.raises(ValueError):
        SessionSeries(slot_ns=0)
    with pytest.raises(ValueError):
        SessionSeries(max_slots=1)
    with pytest.raises(ValueError):  # no snapshot yet: no start to count from
        SessionSeries().offset_s(0)
