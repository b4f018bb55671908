"""The Samples drill-down on a replay source (no root): top functions, sorting, scopes,
callers and callees, the flame view's selection and zoom, reset; and snapshots of the
screens at 80x24 and 160x48."""

from __future__ import annotations

import dataclasses

import pytest
from textual.pilot import Pilot

from tracing.model.samples import StackSample
from tracing.sources import ReplaySource
from tui.app import SikteApp
from tui.columns import RowKey
from tui.samples import FlameScreen, NeighboursScreen, SamplesScreen
from tui.table import KeyedTable

from .conftest import NOW, SIZES, until

PID = 19953  # the fixture's python process, with threads 19954..19956


def stack(*frames: str, tid: int = PID, count: int, kernel: int = 0) -> StackSample:
    modules = tuple("/usr/bin/python3.11" if i < len(frames) - kernel else "[kernel]"
                    for i in range(len(frames)))
    return StackSample(PID, tid, "python", frames, modules, kernel, count)


# Cumulative counts: 100 samples by the third snapshot, 150 by the fourth.
STACKS = [
    (),
    (stack("main", "work", "burn", count=30),),
    (stack("main", "work", "burn", count=60), stack("main", "work", count=10),
     stack("main", "idle", "burn", tid=19954, count=20),
     stack("main", "work", "write", "ksys_write", kernel=1, count=10)),
    (stack("main", "work", "burn", count=110),),
]


@pytest.fixture
def sampled(snapshots):
    return [dataclasses.replace(s, samples=STACKS[i], sample_hz=99)
            for i, s in enumerate(snapshots)]


def app_on(items) -> SikteApp:
    return SikteApp(source=ReplaySource(items), clock=lambda: NOW)



async def open_samples(pilot: Pilot) -> SamplesScreen:
    await until(pilot, lambda: pilot.app.screen.query_one(KeyedTable).row_count > 0)
    await until(pilot, lambda: pilot.app.screen.session.samples.total == 150)
    await pilot.press("s")
    await until(pilot, lambda: isinstance(pilot.app.screen, SamplesScreen))
    await pilot.pause(0.1)
    return pilot.app.screen  # type: ignore[return-value]


def table_of(screen, selector: str = "#functions") -> dict[RowKey, dict]:
    return {r.key: r.values for r in screen.query_one(selector, KeyedTable).rows}


def title(screen, selector: str) -> str:
    return str(screen.query_one(selector).render())


async def test_top_functions_with_self_and_total_samples(sampled):
    app = app_on(sampled)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_samples(pilot)
        rows = table_of(screen)
        assert (rows[("burn",)]["self"], rows[("burn",)]["total"]) == (130, 130)
        assert (rows[("work",)]["self"], rows[("work",)]["total"]) == (10, 130)
        assert (rows[("main",)]["self"], rows[("main",)]["total"]) == (0, 150)
        assert round(rows[("burn",)]["self_pct"], 1) == 86.7
        assert rows[("ksys_write",)]["module"] == "[kernel]"
        keys = [r.key for r in screen.query_one(KeyedTable).rows]
        assert keys[:3] == [("burn",), ("ksys_write",), ("work",)]  # equal self counts: by name
        assert "99 Hz · 150 samples" in title(screen, "#samples-title")
        header = str(app.screen_stack[-2].query_one("#status").render())
        assert "samples 150 @99 Hz" in header


async def test_sorting_and_scopes(sampled):
    app = app_on(sampled)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_samples(pilot)
        await pilot.press("full_stop")  # self -> self%
        await pilot.press("full_stop")  # -> total
        assert screen.sort_column == "total" and screen.sort_reverse
        assert next(r.key for r in screen.query_one(KeyedTable).rows) == ("main",)
        await pilot.press("i")
        assert not screen.sort_reverse
        assert next(r.key for r in screen.query_one(KeyedTable).rows) == ("ksys_write",)
        await pilot.press("g")  # per process
        assert screen.scope == "process"
        assert table_of(screen)[(PID, "burn")]["pid"] == PID
        await pilot.press("g")  # per thread: the two threads' burn apart
        rows = table_of(screen)
        assert rows[(PID, PID, "burn")]["self"] == 110
        assert rows[(PID, 19954, "burn")]["self"] == 20
        assert "per thread" in title(screen, "#samples-title")


async def test_enter_shows_callers_and_callees_and_escape_goes_back(sampled):
    app = app_on(sampled)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_samples(pilot)
        screen.query_one(KeyedTable).focus()
        await pilot.press("enter")  # on burn, the top row
        await until(pilot, lambda: isinstance(app.screen, NeighboursScreen))
        callers = app.screen
        assert table_of(callers, "#callers") == {
            ("work",): {"name": "work", "samples": 110, "pct": pytest.approx(84.6, abs=0.05)},
            ("idle",): {"name": "idle", "samples": 20, "pct": pytest.approx(15.4, abs=0.05)}}
        assert list(table_of(callers, "#callees")) == [("(self)",)]
        assert "self 130 (86.7%)" in title(callers, "#callers-title")
        # Enter on a caller moves to it.
        callers.query_one("#callers", KeyedTable).focus()
        await pilot.press("enter")
        assert callers.function == "work"
        assert list(table_of(callers, "#callees")) == [("burn",), ("(self)",), ("write",)]
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, SamplesScreen))
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, SamplesScreen))


async def test_flame_selection_zoom_and_back(sampled):
    app = app_on(sampled)
    async with app.run_test(size=(120, 30)) as pilot:
        await open_samples(pilot)
        await pilot.press("f")
        await until(pilot, lambda: isinstance(app.screen, FlameScreen))
        flame = app.screen
        await pilot.pause(0.1)
        assert flame.rows[0][0].count == 150 and flame.selected == ()
        await pilot.press("down", "down", "down")  # python, main, work (the busiest)
        assert flame.selected == ("python", "main", "work")
        await pilot.press("right")  # idle, beside work
        assert flame.selected == ("python", "main", "idle")
        await pilot.press("left", "enter")  # zoom into work
        assert flame.zoom == ("python", "main", "work")
        top = flame.rows[0][0]
        assert (top.name, top.count, top.width) == ("work", 130, 120)
        assert [(c.name, c.count) for c in flame.rows[1]] == [("burn", 110), ("write", 10)]
        assert "zoom: all ▸ python ▸ main ▸ work" in title(flame, "#flame-title")
        await pilot.press("escape")  # zoom out
        assert flame.zoom == () and isinstance(app.screen, FlameScreen)
        await pilot.press("escape")  # at the top: back
        await until(pilot, lambda: isinstance(app.screen, SamplesScreen))


async def test_reset_counts_samples_from_zero(sampled):
    source = ReplaySource(sampled[:3])
    app = SikteApp(source=source, clock=lambda: NOW)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.screen.query(KeyedTable))
        live = app.screen
        await until(pilot, lambda: live.session.samples.total == 100)
        await pilot.press("R")
        assert live.session.samples.total == 0
        source._emit(sampled[3])  # the next snapshot: burn from 60 to 110
        await until(pilot, lambda: live.session.samples.total == 50)
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, SamplesScreen))
        assert table_of(app.screen) == {
            ("burn",): pytest.approx({"function": "burn", "self": 50, "self_pct": 100.0,
                                   "total": 50, "total_pct": 100.0, "module": "python3.11",
                                   "pid": 0, "tid": 0, "comm": ""}),
            ("work",): pytest.approx({"function": "work", "self": 0, "self_pct": 0.0,
                                   "total": 50, "total_pct": 100.0, "module": "python3.11",
                                   "pid": 0, "tid": 0, "comm": ""}),
            ("main",): pytest.approx({"function": "main", "self": 0, "self_pct": 0.0,
                                   "total": 50, "total_pct": 100.0, "module": "python3.11",
                                   "pid": 0, "tid": 0, "comm": ""})}


async def test_no_samples_says_so(snapshots):
    app = app_on(snapshots)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.screen.query_one(KeyedTable).row_count > 0)
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, SamplesScreen))
        await pilot.pause(0.1)
        assert app.screen.query_one(KeyedTable).row_count == 0
        assert "sampling is off" in title(app.screen, "#samples-title")


@pytest.mark.parametrize("size", SIZES)
def test_samples_snapshot(snap_compare, sampled, size):
    async def run_before(pilot: Pilot) -> None:
        await open_samples(pilot)
        await pilot.pause(0.2)

    assert snap_compare(app_on(sampled), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_flame_snapshot(snap_compare, sampled, size):
    async def run_before(pilot: Pilot) -> None:
        await open_samples(pilot)
        await pilot.press("f", "down", "down", "down")
        await pilot.pause(0.2)

    assert snap_compare(app_on(sampled), terminal_size=size, run_before=run_before)
