"""A live trace's window (tracing/model/live_window.py): the last few seconds' exact counts,
errors and histograms from the snapshots' intervals, switchable at once, bounded in time and
in entries, emptied by a reset."""

from __future__ import annotations

import pytest

from tests.live_window_helpers import (
    GETPPID_KEY,
    GETUID_KEY,
    PID,
    READ_KEY,
    TICK_NS,
    Trace,
)
from tracing.model.deltas import sum_intervals
from tracing.model.live_window import MAX_SPAN_S, LiveWindow, span_label
from tracing.model.stats import Snapshot, StatKey, bucket_bounds, bucket_of
from tui.columns import GROUPINGS
from tui.rows import RowBuilder


def phased(window: LiveWindow) -> tuple[Trace, Snapshot]:
    """2.5 s of getppid (100 a tick), then 10 s of getuid (7 a tick, 1 failing)."""
    trace = Trace()
    snapshot = None
    for _ in range(10):
        snapshot = trace.tick({GETPPID_KEY: (100, 500, 0)})
        window.add(snapshot)
    for _ in range(40):
        snapshot = trace.tick({GETUID_KEY: (7, 2_000, 1)})
        window.add(snapshot)
    assert snapshot is not None
    return trace, snapshot


def test_since_start_is_the_snapshot_itself():
    window = LiveWindow()
    _, last = phased(window)
    assert window.span_s is None and window.view(last) is last
    assert window.cutoff_ns is None and window.label() == "since start"


def test_a_5_s_window_holds_only_the_calls_of_its_last_5_s():
    window = LiveWindow()
    _, last = phased(window)
    window.set_span(5)
    view = window.view(last)
    # 12.5 s in: the ticks that end after 7.5 s are the last 20, all of them getuid.
    assert set(view.stats) == {GETUID_KEY}
    stats = view.stats[GETUID_KEY]
    assert (stats.count, stats.errors, stats.total_ns) == (140, 20, 280_000)
    assert stats.hist == ((bucket_of(2_000), 140),)
    assert view.since_start is None and view.totals is view.stats
    assert view.interval is last.interval and view.seq == last.seq  # the rest is its own
    assert window.cutoff_ns == last.ts_ns - 5_000_000_000
    assert window.covered_s == pytest.approx(5.0)
    assert window.label() == "last 5 s"


def test_choosing_another_span_sums_it_again_at_once():
    window = LiveWindow()
    trace, last = phased(window)
    window.set_span(5)
    window.set_span(30)
    view = window.view(last)
    assert view.stats[GETPPID_KEY].count == 1_000 and view.stats[GETUID_KEY].count == 280
    assert dict(view.stats) == sum_intervals([trace.totals])  # everything: 12.5 s < 30 s
    window.set_span(None)
    assert window.view(last) is last


def test_calls_leave_the_window_as_it_slides_and_percentiles_follow():
    window = LiveWindow()
    window.set_span(5)
    trace = Trace()
    for _ in range(20):  # 5 s of slow calls: 1 ms each
        window.add(trace.tick({GETUID_KEY: (10, 1_000_000, 0)}))
    slow = window.stats()[GETUID_KEY]
    assert slow.count == 200
    for i in range(1, 21):  # then fast ones, 1 µs: one tick at a time the slow ones go
        window.add(trace.tick({GETUID_KEY: (10, 1_000, 0)}))
        stats = window.stats()[GETUID_KEY]
        assert stats.count == 200
        assert stats.total_ns == (20 - i) * 10 * 1_000_000 + i * 10 * 1_000
    low, high = bucket_bounds(bucket_of(1_000))
    assert window.stats()[GETUID_KEY].quantile(0.99) == (low + high - 1) // 2
    # The saved-session way (a sum of the same intervals) gives the same numbers.
    assert window.stats()[GETUID_KEY].hist == ((bucket_of(1_000), 200),)


def test_a_quiet_stretch_empties_the_window():
    window = LiveWindow()
    window.set_span(5)
    trace = Trace()
    window.add(trace.tick({GETPPID_KEY: (3, 100, 0)}))
    for _ in range(19):
        window.add(trace.tick())
    assert window.stats()[GETPPID_KEY].count == 3  # its tick ended 4.75 s ago
    window.add(trace.tick())
    assert window.stats() == {}


def test_a_reset_empties_the_window():
    window = LiveWindow()
    window.set_span(30)
    trace = Trace()
    for _ in range(4):
        window.add(trace.tick({GETPPID_KEY: (5, 100, 0)}))
    trace.builder.reset()  # R: a new epoch
    snapshot = trace.tick({GETUID_KEY: (2, 100, 0)})
    assert snapshot.epoch == 1
    window.add(snapshot)
    assert set(window.stats()) == {GETUID_KEY} and window.stats()[GETUID_KEY].count == 2


def test_a_snapshot_that_does_not_follow_starts_the_window_over():
    window = LiveWindow()
    window.set_span(30)
    trace = Trace()
    window.add(trace.tick({GETPPID_KEY: (5, 100, 0)}))
    trace.tick({GETPPID_KEY: (5, 100, 0)})  # never seen: the sum would miss it
    window.add(trace.tick({GETUID_KEY: (1, 100, 0)}))
    assert set(window.stats()) == {GETUID_KEY}


def test_the_history_is_bounded_by_the_longest_span():
    window = LiveWindow()
    trace = Trace()
    ticks = int(2 * MAX_SPAN_S * 1e9 / TICK_NS)  # 10 minutes
    for _ in range(ticks):
        window.add(trace.tick({GETPPID_KEY: (1, 100, 0)}))
    assert window.kept_s == pytest.approx(MAX_SPAN_S)
    window.set_span(MAX_SPAN_S)
    assert window.stats()[GETPPID_KEY].count == int(MAX_SPAN_S * 1e9 / TICK_NS)
    assert window.label() == "last 5 min"


def test_past_the_entry_bound_the_oldest_intervals_go_and_the_label_says_so():
    window = LiveWindow(max_entries=100)
    window.set_span(60)
    trace = Trace()
    kept = []
    for tick in range(40):  # 10 s of 10 new entries a tick: 400 entries for 100 held
        calls = {StatKey(PID, PID + tick, n): (1, 100, 0) for n in range(10)}
        snapshot = trace.tick(calls)
        kept.append(snapshot.interval)
        window.add(snapshot)
    stats = window.stats()
    assert len(stats) == 100
    assert stats == sum_intervals(kept[-10:])  # exactly the 10 newest intervals
    assert window.short and window.kept_s == pytest.approx(2.5)
    assert window.label() == "last 1 min (2.5s kept)"
    window.set_span(1)
    assert not window.short and len(window.stats()) == 40


def test_only_positive_spans_are_windows():
    window = LiveWindow()
    for bad in (0, -5, float("nan")):
        with pytest.raises(ValueError):
            window.set_span(bad)


def test_labels():
    assert [span_label(s) for s in (5, 30, 60, 300, None)] == [
        "last 5 s", "last 30 s", "last 1 min", "last 5 min", "since start"]


# -- the live table's rows on a window (tui/rows.py) ----------------------------------------

def read_row(window: LiveWindow, builder: RowBuilder, snapshot: Snapshot) -> dict[str, object]:
    window.add(snapshot)
    builder.feed(window.view(snapshot), window.cutoff_ns)
    rows = builder.rows(GROUPINGS[0])
    assert [r.key for r in rows] == [("read", 0)]
    return {"count": rows[0].values["count"], "errors": rows[0].values["errors"],
            "unexpected": rows[0].values["unexpected"], "cell": rows[0].cells["errors"]}


@pytest.mark.parametrize("expected_first", [True, False], ids=["EAGAIN first", "EAGAIN last"])
def test_a_windows_expected_errors_are_those_of_its_snapshots(expected_first: bool):
    """5 s of reads failing with EAGAIN (sent as events), then 5 s failing with errors
    no event says (unexpected), or the other way round."""
    window, builder, trace = LiveWindow(), RowBuilder(), Trace()
    window.set_span(5)
    row: dict[str, object] = {}
    for phase in (expected_first, not expected_first):
        for _ in range(20):
            row = read_row(window, builder, trace.tick(
                {READ_KEY: (10, 1_000, 10)}, eagain={READ_KEY: 10} if phase else None))
    if expected_first:  # the window holds the unexpected ones only
        assert row == {"count": 200, "errors": 200, "unexpected": 200, "cell": "200"}
    else:
        assert row == {"count": 200, "errors": 200, "unexpected": 0, "cell": "*200"}
    window.set_span(None)  # since the start: half of the 400 errors were EAGAIN
    last = trace.tick({READ_KEY: (0, 0, 0)})
    assert read_row(window, builder, last) == {
        "count": 400, "errors": 400, "unexpected": 200, "cell": "400"}
