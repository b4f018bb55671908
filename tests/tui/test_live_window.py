"""The live window (`w` during a live trace), driven by Pilot on made-up snapshots with exact
numbers: 2.5 s of getppid (100 calls a tick), then 10 s of getuid (7 a tick, 1 failing), at 4
snapshots a second. The last 5 s hold 20 ticks of getuid only: 140 calls, 20 errors."""

from __future__ import annotations

import pytest
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import OptionList, Static

from tests.live_window_helpers import GETPPID_KEY, GETUID_KEY, PID, Trace
from tracing.model.stats import Snapshot
from tracing.sources import ReplaySource
from tui.app import SikteApp
from tui.detail import DetailScreen
from tui.live import LiveScreen
from tui.table import KeyedTable
from tui.window_menu import WindowMenu

from .conftest import NOW, SIZES, until


class PushSource(ReplaySource):
    """A replay that goes on: the test hands it more snapshots after the start."""

    def push(self, snapshot: Snapshot) -> None:
        self._emit(snapshot)


def phased() -> tuple[Trace, list[Snapshot]]:
    trace = Trace()
    snapshots = [trace.tick({GETPPID_KEY: (100, 500, 0)}) for _ in range(10)]
    snapshots += [trace.tick({GETUID_KEY: (7, 2_000, 1)}) for _ in range(40)]
    return trace, snapshots


def make_app() -> tuple[SikteApp, PushSource, Trace]:
    trace, snapshots = phased()
    source = PushSource(snapshots, title="phased")
    return SikteApp(source=source, clock=lambda: NOW), source, trace


def table(app: SikteApp) -> KeyedTable:
    return app.screen.query_one(KeyedTable)


def counts(app: SikteApp) -> dict[str, tuple[int, int]]:
    """name (or pid) -> (calls, errors) of the rows shown."""
    rows = table(app).rows
    return {str(r.values.get("name", r.values.get("pid"))): (
        int(str(r.values["count"])), int(str(r.values["errors"]))) for r in rows}


def plain(widget: Static) -> str:
    content = widget.content
    return Text.from_markup(content).plain if isinstance(content, str) else str(content)


def header(app: SikteApp) -> str:
    return plain(app.screen.query_one("#status", Static))


async def choose(pilot: Pilot, *keys: str) -> None:
    await pilot.press("w")
    await until(pilot, lambda: isinstance(pilot.app.screen, WindowMenu))
    await pilot.press(*keys)
    await until(pilot, lambda: isinstance(pilot.app.screen, LiveScreen))


EVERYTHING = {"getppid": (1_000, 0), "getuid": (280, 40)}
LAST_5_S = {"getuid": (140, 20)}


async def test_w_shows_the_last_5_s_at_once_then_since_start_again():
    app, _, _ = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: counts(app) == EVERYTHING, seen=lambda: counts(app))
        assert "window:" not in header(app)
        await choose(pilot, "1")
        assert counts(app) == LAST_5_S  # at once: no snapshot came in between
        assert "window: last 5 s" in header(app) and "syscalls 140 " in header(app)
        assert app.screen.session.latest.stats.keys() == {GETUID_KEY}
        await choose(pilot, "0")
        assert counts(app) == EVERYTHING
        assert "window:" not in header(app) and "syscalls 1,280 " in header(app)
        await choose(pilot, "2")  # 30 s: the whole 12.5 s
        assert counts(app) == EVERYTHING and "window: last 30 s" in header(app)
        await choose(pilot, "a")
        assert "window:" not in header(app)


async def test_the_chooser_marks_the_current_window_and_enter_picks_the_highlighted_one():
    app, _, _ = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: counts(app) == EVERYTHING, seen=lambda: counts(app))
        await pilot.press("w")
        await until(pilot, lambda: isinstance(app.screen, WindowMenu))
        options = app.screen.query_one(OptionList)
        assert options.highlighted == 4  # since start, the default
        assert "◂ now" in str(options.get_option_at_index(4).prompt)
        await pilot.press("up", "enter")
        await until(pilot, lambda: isinstance(app.screen, LiveScreen))
        assert "window: last 5 min" in header(app)
        await pilot.press("w")
        await until(pilot, lambda: isinstance(app.screen, WindowMenu))
        assert app.screen.query_one(OptionList).highlighted == 3
        await pilot.press("escape")  # cancelled: nothing changes
        await until(pilot, lambda: isinstance(app.screen, LiveScreen))
        assert "window: last 5 min" in header(app) and counts(app) == EVERYTHING


async def test_the_window_slides_with_new_snapshots():
    app, source, trace = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: counts(app) == EVERYTHING, seen=lambda: counts(app))
        await choose(pilot, "1")
        for _ in range(8):  # 2 s more of getppid, 3 calls a tick
            source.push(trace.tick({GETPPID_KEY: (3, 500, 0)}))
        # 12 ticks of getuid are left in the last 5 s, and the 8 new ones.
        expected = {"getuid": (84, 12), "getppid": (24, 0)}
        await until(pilot, lambda: counts(app) == expected, seen=lambda: counts(app))
        for _ in range(12):
            source.push(trace.tick({GETPPID_KEY: (3, 500, 0)}))
        await until(pilot, lambda: counts(app) == {"getppid": (60, 0)},
                    seen=lambda: counts(app))
        await choose(pilot, "0")
        assert counts(app) == {"getppid": (1_060, 0), "getuid": (280, 40)}


async def test_groupings_filters_and_details_show_the_window():
    app, _, _ = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: counts(app) == EVERYTHING, seen=lambda: counts(app))
        await choose(pilot, "1")
        await pilot.press("g")  # by process
        await until(pilot, lambda: counts(app) == {str(PID): (140, 20)},
                    seen=lambda: counts(app))
        await pilot.press("g", "g", "g", "g")  # back by syscall
        await until(pilot, lambda: "name" in table(app).rows[0].values)
        await choose(pilot, "2")
        await pilot.press("e")  # errors only: over 30 s, getuid's 40
        await until(pilot, lambda: counts(app) == {"getuid": (280, 40)},
                    seen=lambda: counts(app))
        await choose(pilot, "1")
        assert counts(app) == LAST_5_S
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        title = plain(app.screen.query_one("#detail-title", Static))
        assert title.startswith("getuid · all processes · calls 140 · errors 20"), title


@pytest.mark.parametrize("size", SIZES)
async def test_the_header_says_the_window_at_any_width(size):
    app, _, _ = make_app()
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: counts(app) == EVERYTHING, seen=lambda: counts(app))
        await choose(pilot, "4")
        first = header(app).splitlines()[0]
        assert "window: last 5 min" in first
        assert first.index("window:") < first.index("sikte-tui")  # the title is cut first


async def test_a_window_chosen_while_paused_is_shown_at_once_and_stays_paused():
    app, source, trace = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: counts(app) == EVERYTHING, seen=lambda: counts(app))
        await pilot.press("p")
        await until(pilot, lambda: "paused" in header(app))
        await choose(pilot, "1")
        assert counts(app) == LAST_5_S and "window: last 5 s" in header(app)
        assert "paused" in header(app)
        for _ in range(20):  # 5 s of getppid while paused: the table stays
            source.push(trace.tick({GETPPID_KEY: (3, 500, 0)}))
        screen = app.screen
        assert isinstance(screen, LiveScreen)
        # The newest was taken by a render tick (paused: the header only).
        await until(pilot, lambda: screen.session.newest.seq == 70 and screen._pending is None)
        assert counts(app) == LAST_5_S
        await pilot.press("p")  # catching up: the window at the newest snapshot
        await until(pilot, lambda: counts(app) == {"getppid": (60, 0)},
                    seen=lambda: counts(app))
