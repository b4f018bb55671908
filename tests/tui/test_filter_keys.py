"""Keys typed right after `/`: they reach the filter, even in one burst from the terminal.

Textual hands each key to the widget focused when the app takes it in; a burst read at once
("/read" pasted by tmux or typed fast over ssh) was all handed to the table before `/` had
moved the focus, so the filter got nothing. The `/` binding is now checked as it arrives
(a priority binding) and refused while an input has the focus, where `/` is a character.
Enter in the filter likewise: the keys typed after it act on the table.
"""

from __future__ import annotations

from textual import events
from textual.pilot import Pilot
from textual.widgets import Input

from tui.app import SikteApp
from tui.event_log import EventLogScreen
from tui.live import LiveScreen
from tui.picker import PickerScreen
from tui.table import KeyedTable

from .conftest import until
from .test_picker import listed


def burst(pilot: Pilot, text: str) -> None:
    """Every key of `text` queued at once, as the driver does with one read (\r: Enter)."""
    for ch in text:
        key = {"/": "slash", "\r": "enter", " ": "space", "~": "tilde", "!": "exclamation_mark",
               "<": "less_than_sign"}.get(ch, ch)
        pilot.app.post_message(events.Key(key, ch))


async def live_rows(pilot: Pilot) -> LiveScreen:
    await until(pilot, lambda: isinstance(pilot.app.screen, LiveScreen)
                and pilot.app.screen.query_one(KeyedTable).row_count > 0)
    screen = pilot.app.screen
    assert isinstance(screen, LiveScreen)
    return screen


async def test_a_burst_after_slash_fills_the_live_filter(replay_app: SikteApp) -> None:
    async with replay_app.run_test(size=(160, 48)) as pilot:
        screen = await live_rows(pilot)
        field = screen.query_one("#filter", Input)
        burst(pilot, "/read")
        await until(pilot, lambda: field.value == "read", seen=lambda: field.value)
        assert field.has_focus  # and `e` was typed, not run (errors only: "read errors>0")
        await until(pilot, lambda: screen.filter is not None and screen.filter.text == "read")
        # In the input, `/` is a character (a regex term), not the key that opens it.
        burst(pilot, " !name~/x")
        await until(pilot, lambda: field.value == "read !name~/x", seen=lambda: field.value)


async def test_keys_after_enter_act_on_the_table(replay_app: SikteApp) -> None:
    async with replay_app.run_test(size=(160, 48)) as pilot:
        screen = await live_rows(pilot)
        field, table = screen.query_one("#filter", Input), screen.query_one(KeyedTable)
        reverse = screen.sort_reverse
        burst(pilot, "/read\ri")  # `i` after Enter inverts the sort
        await until(pilot, lambda: screen.filter is not None and screen.filter.text == "read",
                    seen=lambda: field.value)
        assert field.value == "read" and table.has_focus
        assert screen.sort_reverse is not reverse
        # Enter on the table is the table's again: a row's details.
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(replay_app.screen, LiveScreen))


async def test_a_burst_after_slash_fills_the_event_filter(replay_app: SikteApp) -> None:
    async with replay_app.run_test(size=(160, 48)) as pilot:
        await live_rows(pilot)
        await pilot.press("E")
        await until(pilot, lambda: isinstance(replay_app.screen, EventLogScreen))
        field = replay_app.screen.query_one(Input)
        burst(pilot, "/ret<0")
        await until(pilot, lambda: field.value == "ret<0", seen=lambda: field.value)
        assert field.has_focus


async def test_a_burst_after_slash_fills_the_picker_filter(picker_app: SikteApp) -> None:
    async with picker_app.run_test(size=(160, 48)) as pilot:
        await listed(pilot)
        assert isinstance(picker_app.screen, PickerScreen)
        field = picker_app.screen.query_one("#picker-filter", Input)
        burst(pilot, "/nginx")
        await until(pilot, lambda: field.value == "nginx", seen=lambda: field.value)
