"""A pasted filter of any length, in the live view and the connections view (Pilot, no
root): the app keeps answering keys and says in one line what it did with the text.

A 33,000-character paste once froze the live view for 100 s and took 2.1 GB: each of its
characters arrived as a key (a terminal without bracketed paste), and each key re-parsed
the whole text.
"""

from __future__ import annotations

import pytest
from rich.text import Text
from textual import events
from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import Input, Static

from tracing.model.stats import Snapshot
from tracing.query.syscall_filter import ERRORS_ONLY
from tracing.query.terms import MAX_FILTER_CHARS
from tracing.sources import ReplaySource
from tui.app import SikteApp
from tui.columns import GROUPINGS, RowKey
from tui.connections import ConnectionsScreen
from tui.filter_input import FilterInput
from tui.live import LiveScreen
from tui.table import KeyedTable

from .conftest import NOW, until
from .connections_fixture import with_connections

SIZE = (160, 48)
PASTE = ("read pid=42 " * 3000)[:33_000]
PASTE_REFUSED = ("✗ a filter holds at most 1,000 characters: the 33,000 pasted were not "
                 "added")
FULL = "✗ a filter holds at most 1,000 characters: delete some to type more"


def plain(widget: Static) -> str:
    content = widget.content
    return Text.from_markup(content).plain if isinstance(content, str) else str(content)


def names(table: KeyedTable) -> list[RowKey]:
    return [row.key for row in table.rows]


async def live_loaded(pilot: Pilot) -> LiveScreen:
    screen = await until(pilot, lambda: isinstance(pilot.app.screen, LiveScreen)
                         and pilot.app.screen.query_one(KeyedTable).row_count > 0
                         and pilot.app.screen)
    assert isinstance(screen, LiveScreen)
    return screen


async def paste(pilot: Pilot, field: Input, text: str) -> None:
    """A bracketed paste, as the terminal delivers it to the focused input."""
    assert field.has_focus
    field.post_message(events.Paste(text))
    await pilot.pause()


async def test_a_33k_paste_in_the_live_view_is_refused_in_one_line(replay_app: SikteApp):
    async with replay_app.run_test(size=SIZE) as pilot:
        live = await live_loaded(pilot)
        table = live.query_one(KeyedTable)
        await pilot.press("slash", *"getppid", "enter")
        await until(pilot, lambda: names(table) == [("getppid", 0)], seen=lambda: names(table))
        await pilot.press("slash", "end")
        field = live.query_one("#filter", Input)
        message = live.query_one("#filter-message", Static)
        await paste(pilot, field, PASTE)
        await until(pilot, lambda: message.display and plain(message) == PASTE_REFUSED,
                    seen=lambda: plain(message))
        # Nothing of the paste went in; the last filter still holds.
        assert field.value == "getppid"
        assert names(table) == [("getppid", 0)]
        # The app answers the next keys: Escape clears, g groups by process.
        await pilot.press("escape")
        await until(pilot, lambda: not message.display and table.row_count > 1)
        await pilot.press("g")
        await until(pilot, lambda: live.grouping == GROUPINGS[1])


async def test_a_paste_typed_key_by_key_stops_at_the_limit(replay_app: SikteApp,
                                                             monkeypatch: pytest.MonkeyPatch):
    """A terminal without bracketed paste: every character is a key. The input takes the
    first 1,000 and says once that it is full; the app then answers keys."""
    async with replay_app.run_test(size=SIZE) as pilot:
        live = await live_loaded(pilot)
        await pilot.press("slash")
        field = live.query_one("#filter", FilterInput)
        message = live.query_one("#filter-message", Static)
        refusals: list[str] = []
        post = field.post_message

        def spy(message: Message) -> bool:
            if isinstance(message, FilterInput.TooLong):
                refusals.append(message.line)
            return post(message)

        monkeypatch.setattr(field, "post_message", spy)
        for ch in PASTE[:MAX_FILTER_CHARS + 500]:
            field.insert_text_at_cursor(ch)  # what a key press does in an Input
        assert field.value == PASTE[:MAX_FILTER_CHARS]
        await until(pilot, lambda: plain(message) == FULL, seen=lambda: plain(message))
        assert refusals == [FULL.removeprefix("✗ ")]  # one message for 500 refused keys
        await pilot.press("escape", "g")
        await until(pilot, lambda: live.grouping == GROUPINGS[1])
        assert field.value == ""


async def test_a_filter_made_too_long_by_a_key_says_so(replay_app: SikteApp):
    """`e` adds its term to the filter's text: past the limit it is not applied, and the
    line says why; the last filter holds."""
    async with replay_app.run_test(size=SIZE) as pilot:
        live = await live_loaded(pilot)
        table = live.query_one(KeyedTable)
        text = ("getppid " * 125)[:MAX_FILTER_CHARS - 1]
        await pilot.press("slash")
        await paste(pilot, live.query_one("#filter", Input), text)
        await pilot.press("enter")
        await until(pilot, lambda: names(table) == [("getppid", 0)], seen=lambda: names(table))
        await pilot.press("e")
        message = live.query_one("#filter-message", Static)
        await until(pilot, lambda: message.display, seen=lambda: plain(message))
        longer = len(text) + len(f" {ERRORS_ONLY}")  # past the limit
        assert plain(message) == (f"✗ the filter is {longer:,} characters long; the limit is "
                                  f"1,000: shorten it (Esc clears it)")
        assert names(table) == [("getppid", 0)]
        assert live.filter is not None and live.filter.text == text


async def test_a_33k_paste_in_the_connections_view_is_refused_in_one_line(
        snapshots: list[Snapshot]):
    app = SikteApp(source=ReplaySource(with_connections(snapshots)), clock=lambda: NOW)
    async with app.run_test(size=SIZE) as pilot:
        await live_loaded(pilot)
        await until(pilot, lambda: len(app.session.connections) == 8)
        await pilot.press("c")
        screen = await until(pilot, lambda: isinstance(app.screen, ConnectionsScreen)
                             and app.screen)
        assert isinstance(screen, ConnectionsScreen)
        table = screen.query_one("#connections", KeyedTable)
        await until(pilot, lambda: table.row_count > 0)
        everything = names(table)
        await pilot.press("slash")
        field = screen.query_one("#connections-filter", Input)
        message = screen.query_one("#connections-filter-message", Static)
        await paste(pilot, field, PASTE)
        await until(pilot, lambda: message.display and plain(message) == PASTE_REFUSED,
                    seen=lambda: plain(message))
        assert field.value == ""
        assert names(table) == everything
        # The app answers: Enter hands the keys to the table, g groups by remote endpoint.
        await pilot.press("enter", "g")
        await until(pilot, lambda: screen.mode == "summary")
        # A bad filter that fits is one line too, and the view goes on.
        await pilot.press("g", "slash")
        await paste(pilot, field, "port=" + "9" * 900)
        await until(pilot, lambda: plain(message).startswith("✗ bad port '999999"),
                    seen=lambda: plain(message))
        assert "\n" not in plain(message)
        assert names(table) == everything
