"""The event log (E) on a replay source with decoded events (tests/tui/events_fixture.py):
exact rows in strace's form, the filter's new fields, pausing, following without moving a
selected row, one event whole, the event selection (refused on a replay, asked of a live
source), drops, and a syscall's details with decoded events and the paths behind errnos."""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass, field

import numpy as np
import pytest
from rich.console import Console
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import Input, Static

from tracing.model.captures import KIND_PATH, pack_field
from tracing.model.selection import EventSelection
from tracing.model.stats import Drops, Snapshot
from tracing.sources import Capabilities, ReplaySource
from tui.app import SikteApp
from tui.columns import RowKey
from tui.detail import DetailScreen
from tui.event_log import EventLogScreen, EventScreen, next_preset
from tui.live import LiveScreen
from tui.messages import SnapshotReady
from tui.table import KeyedTable

from .conftest import NOW, until
from .events_fixture import APP, CAT, CURL, with_events

WIDE = (160, 48)
OPEN_APP_CONF = ('openat(AT_FDCWD, "/etc/app.conf", O_RDONLY|O_CLOEXEC) = -1 ENOENT '
                 '(No such file or directory)')
CALLS = [
    OPEN_APP_CONF,
    'openat(AT_FDCWD, "/etc/app.d/local.conf", O_RDONLY) = -1 EACCES (Permission denied)',
    'openat(AT_FDCWD, "/etc/passwd", O_RDONLY|O_CLOEXEC) = 3',
    'read(3</etc/passwd>, "root:x:0:0:root:/root:/bin/bash\\n"..., 4096) = 120',
    "close(3</etc/passwd>) = 0",
    'connect(5, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("127.0.0.1")}, '
    "16) = -1 ECONNREFUSED (Connection refused)",
    OPEN_APP_CONF,
    'openat(AT_FDCWD, "/etc/passwd", O_RDONLY) = 3',
]


@pytest.fixture
def decoded(snapshots: list[Snapshot]) -> list[Snapshot]:
    return with_events(snapshots)


def app_on(items: list[Snapshot]) -> SikteApp:
    return SikteApp(source=ReplaySource(items), clock=lambda: NOW)


async def live_loaded(pilot: Pilot, seq: int) -> LiveScreen:
    await until(pilot, lambda: isinstance(pilot.app.screen, LiveScreen)
                and pilot.app.screen.query_one(KeyedTable).row_count > 0)
    live = pilot.app.screen
    assert isinstance(live, LiveScreen)
    await until(pilot, lambda: live.session.latest is not None
                and live.session.latest.seq == seq)
    return live


async def open_log(pilot: Pilot, seq: int = 4, rows: int = 8) -> EventLogScreen:
    await live_loaded(pilot, seq)
    return await press_event_log(pilot, rows)


async def press_event_log(pilot: Pilot, rows: int) -> EventLogScreen:
    """E from the live screen: the event log, once it shows `rows` rows."""
    await pilot.press("E")
    await until(pilot, lambda: isinstance(pilot.app.screen, EventLogScreen))
    screen = pilot.app.screen
    assert isinstance(screen, EventLogScreen)
    await until(pilot, lambda: screen._table().row_count == rows,
                seen=lambda: screen._table().row_count)
    return screen


def keys(screen: EventLogScreen) -> list[RowKey]:
    return [r.key for r in screen._table().rows]


def calls(screen: EventLogScreen) -> list[str]:
    return [r.cells["call"] for r in screen._table().rows]


def plain(screen: object, selector: str) -> str:
    content = screen.query_one(selector, Static).content  # type: ignore[attr-defined]
    return Text.from_markup(content).plain if isinstance(content, str) else str(content)


async def type_filter(pilot: Pilot, screen: EventLogScreen, text: str) -> None:
    await pilot.press("slash")
    screen.query_one("#events-filter", Input).value = text
    await pilot.press("enter")
    await pilot.pause()


# -- rows --------------------------------------------------------------------------------------


async def test_every_kept_event_in_strace_form_oldest_first(decoded):
    async with app_on(decoded).run_test(size=WIDE) as pilot:
        screen = await open_log(pilot)
        assert keys(screen) == [(i,) for i in range(8)]
        assert calls(screen) == CALLS
        assert [c.key for c in screen._table().columns] == [
            "time", "pid", "comm", "call", "duration"]
        first = dict(screen._table().rows[0].cells)
        # Wall clock: the trace started at 1795316312.359963 (UTC), this 10 ms later.
        assert first == {"time": "02:58:32.369", "pid": str(APP), "comm": "app",
                         "call": OPEN_APP_CONF, "duration": "12µs"}
        assert [r.cells["comm"] for r in screen._table().rows] == [
            "app", "app", "app", "app", "app", "curl", "app", "cat"]
        # Newest at the bottom, and the cursor on it: the log follows.
        assert screen._table().cursor == 7
        title = plain(screen, "#events-title")
        assert title == ("Event log: 8 shown · 8 kept of 8 · events: failed · dropped 0 · "
                         "following")
        assert plain(screen, "#event-selected") == (
            f'02:58:32.390 pid {CAT} cat: openat(AT_FDCWD, "/etc/passwd", O_RDONLY) = 3 '
            f'<0.000012>')


async def test_at_80_columns_the_call_takes_what_pid_and_duration_leave(decoded):
    async with app_on(decoded).run_test(size=(80, 24)) as pilot:
        screen = await open_log(pilot)
        table = screen._table()
        assert [c.key for c in table.shown_columns] == ["pid", "call", "duration"]
        width = sum(max(c.width, len(c.label) + 2) + 2 for c in table.shown_columns)
        assert width <= 80


async def test_a_long_log_shows_its_newest_row(decoded):
    first = decoded[0]
    many = [dataclasses.replace(first, events=np.concatenate([first.events] * 20),
                                event_data=first.event_data * 20), *decoded[1:]]
    async with app_on(many).run_test(size=WIDE) as pilot:
        screen = await open_log(pilot, rows=84)
        table = screen._table()
        await until(pilot, lambda: table.scroll_offset.y == table.max_scroll_y > 0)
        assert table.cursor_key == (83,)
        # The newest row on screen: no horizontal scrollbar under it.
        assert table.scrollbars_enabled == (True, False)
        assert table.cursor - int(table.scroll_offset.y) == table.size.height - 2


# -- the filter --------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("path~app", [0, 1, 6]),
    ("path=/etc/app.conf", [0, 6]),
    ("path~passwd", [2, 3, 4, 7]),  # by the path argument or the descriptor's name
    ("errno=ENOENT", [0, 6]),
    ("fd=3", [2, 3, 4, 7]),
    ("ret=-1", [0, 1, 5, 6]),
    ("ret>0", [2, 3, 7]),
    ("addr~443", [5]),
    ("addr=127.0.0.1:443", [5]),
    ("comm=cat", [7]),
    (f"pid={CURL}", [5]),
    ("name=close", [4]),
    ("!errno=ENOENT ret=-1", [1, 5]),
])
async def test_the_filter_keeps_exactly_the_matching_events(decoded, text, expected):
    async with app_on(decoded).run_test(size=WIDE) as pilot:
        screen = await open_log(pilot)
        await type_filter(pilot, screen, text)
        await until(pilot, lambda: keys(screen) == [(i,) for i in expected],
                    seen=lambda: keys(screen))
        assert f"{len(expected)} shown · filter: {text} · 8 kept of 8" in plain(
            screen, "#events-title")


async def test_a_bad_filter_says_why_and_keeps_the_last(decoded):
    async with app_on(decoded).run_test(size=WIDE) as pilot:
        screen = await open_log(pilot)
        await type_filter(pilot, screen, "errno=ENOENT")
        await until(pilot, lambda: len(keys(screen)) == 2)
        await pilot.press("slash")
        screen.query_one("#events-filter", Input).value = "errno=ENOPE"
        await pilot.pause()
        assert plain(screen, "#events-filter-message") == (
            "✗ unknown errno 'ENOPE' for errno at 0: use an errno name, e.g. errno=ENOENT")
        assert len(keys(screen)) == 2


async def test_escape_clears_the_filter_then_goes_back(decoded):
    async with app_on(decoded).run_test(size=WIDE) as pilot:
        screen = await open_log(pilot)
        await type_filter(pilot, screen, "fd=3")
        await until(pilot, lambda: len(keys(screen)) == 4)
        await pilot.press("escape")
        await until(pilot, lambda: len(keys(screen)) == 8)
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(pilot.app.screen, LiveScreen))


# -- following, pausing ------------------------------------------------------------------------


async def test_on_the_newest_row_the_log_follows_new_events(decoded):
    async with app_on(decoded[:2]).run_test(size=WIDE) as pilot:
        screen = await open_log(pilot, seq=2, rows=4)
        assert screen._table().cursor == 3
        pilot.app.screen_stack[1].post_message(SnapshotReady(decoded[2]))
        await until(pilot, lambda: screen._table().row_count == 6)
        assert screen._table().cursor == 5
        assert screen._table().cursor_key == (5,)
        assert plain(screen, "#events-title").endswith("· following")


async def test_a_selected_row_stays_put_while_events_arrive(decoded):
    async with app_on(decoded[:2]).run_test(size=WIDE) as pilot:
        screen = await open_log(pilot, seq=2, rows=4)
        table = screen._table()
        await pilot.press("up", "up")
        assert table.cursor_key == (1,)
        line = table.cursor - int(table.scroll_offset.y)
        pilot.app.screen_stack[1].post_message(SnapshotReady(decoded[2]))
        await until(pilot, lambda: table.row_count == 6)
        assert table.cursor_key == (1,)
        assert table.cursor - int(table.scroll_offset.y) == line
        assert plain(screen, "#events-title").endswith("· held on the selected event: End "
                                                        "follows")
        await pilot.press("end")
        assert table.cursor_key == (5,)
        assert plain(screen, "#events-title").endswith("· following")


async def test_p_pauses_and_counts_what_arrives(decoded):
    async with app_on(decoded[:2]).run_test(size=WIDE) as pilot:
        screen = await open_log(pilot, seq=2, rows=4)
        await pilot.press("p")
        live = pilot.app.screen_stack[1]
        live.post_message(SnapshotReady(decoded[2]))
        await until(pilot, lambda: "paused, 2 new: p resumes" in plain(screen,
                                                                       "#events-title"))
        live.post_message(SnapshotReady(decoded[3]))
        await until(pilot, lambda: "paused, 4 new: p resumes" in plain(screen,
                                                                       "#events-title"))
        assert screen._table().row_count == 4
        await pilot.press("space")  # space pauses and resumes too
        await until(pilot, lambda: screen._table().row_count == 8)
        assert calls(screen) == CALLS


# -- one event whole ---------------------------------------------------------------------------


async def test_enter_shows_the_event_whole(decoded):
    async with app_on(decoded).run_test(size=WIDE) as pilot:
        screen = await open_log(pilot)
        screen._table().move_cursor(3)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, EventScreen))
        dialog = pilot.app.screen
        assert isinstance(dialog, EventScreen)
        assert dict(dialog.lines) == {
            "time": "02:58:32.372", "process": f"pid {APP} tid {APP} app",
            "syscall": "read (nr 0, x86_64)",
            "arguments": '3</etc/passwd>, "root:x:0:0:root:/root:/bin/bash\\n"..., 4096',
            "result": "120", "duration": "5µs (5,000 ns)", "descriptor": "/etc/passwd",
            "strace": f'[pid  {APP}] read(3</etc/passwd>, "root:x:0:0:root:/root:/bin/bash'
                      f'\\n"..., 4096) = 120 <0.000005>'}
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(pilot.app.screen, EventLogScreen))


# -- the event selection -----------------------------------------------------------------------


async def test_a_replayed_session_cannot_change_its_selection(decoded):
    async with app_on(decoded).run_test(size=WIDE) as pilot:
        screen = await open_log(pilot)
        await pilot.press("s")
        await until(pilot, lambda: "events: failed (fixed: recorded so)" in plain(
            screen, "#events-title"))


@dataclass
class SelectableSource:
    """A stand-in live source: it records the selections asked of it."""

    capabilities: Capabilities = field(default_factory=lambda: Capabilities(live=True))
    asked: list[EventSelection] = field(default_factory=list)

    def set_selection(self, selection: EventSelection) -> None:
        self.asked.append(selection)


async def test_s_asks_a_live_source_for_the_next_selection(decoded):
    async with app_on(decoded).run_test(size=WIDE) as pilot:
        live = await live_loaded(pilot, 4)
        source = SelectableSource()
        screen = EventLogScreen(live.session, source)  # type: ignore[arg-type]
        await pilot.app.push_screen(screen)
        await until(pilot, lambda: screen._table().row_count == 8)
        await pilot.press("s")
        assert source.asked == [EventSelection.parse("failed,slow:10ms")]
        assert "events: failed → failed, slower than 10 ms from the next tick" in plain(
            screen, "#events-title")
        await pilot.press("s")
        assert source.asked[-1] == EventSelection.parse("sample:100")


def test_the_presets_cycle_in_order() -> None:
    assert next_preset(EventSelection.parse("failed")) == "failed,slow:10ms"
    assert next_preset(EventSelection.parse("all")) == "none"
    assert next_preset(EventSelection.none) == "failed"
    assert next_preset(EventSelection.parse("slow:3ms")) == "failed"  # none of them
    assert next_preset(None) == "failed"


# -- a syscall's details -----------------------------------------------------------------------


async def test_details_show_decoded_events_and_the_paths_behind_each_errno(decoded):
    async with app_on(decoded).run_test(size=WIDE) as pilot:
        live = await live_loaded(pilot, 4)
        table = live.query_one(KeyedTable)
        await until(pilot, lambda: ("openat", 0) in [r.key for r in table.rows])
        table.move_cursor([r.key for r in table.rows].index(("openat", 0)))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, DetailScreen))
        screen = pilot.app.screen
        errnos = screen.query_one("#by-errno", KeyedTable)
        await until(pilot, lambda: errnos.row_count == 2)
        assert [dict(r.cells) for r in errnos.rows] == [
            {"errno": "ENOENT", "events": "2", "behind": "/etc/app.conf 2"},
            {"errno": "EACCES", "events": "1", "behind": "/etc/app.d/local.conf 1"}]
        events = screen.query_one("#events", KeyedTable)
        await until(pilot, lambda: events.row_count == 5)
        # Newest first; cat's and app's openat alike.
        assert [r.cells["call"] for r in events.rows] == [
            CALLS[7], CALLS[6], CALLS[2], CALLS[1], CALLS[0]]
        assert [r.cells["pid"] for r in events.rows] == [str(CAT)] + [str(APP)] * 4


# -- drops, hostile names ----------------------------------------------------------------------


async def test_drops_are_shown(decoded):
    lossy = [*decoded[:3], dataclasses.replace(decoded[3], drops=Drops(events=17))]
    async with app_on(lossy).run_test(size=WIDE) as pilot:
        screen = await open_log(pilot)
        assert "· dropped 17 events, 0 descriptor events ·" in plain(screen, "#events-title")


HOSTILE = b"/tmp/[b]x\x1b]0;PWNED\x07\n\xff"


async def test_a_hostile_path_is_shown_escaped_never_as_markup(decoded):
    items = [dataclasses.replace(
        decoded[0], events=decoded[0].events[:1],
        event_data=(pack_field(1, KIND_PATH, HOSTILE),))]
    async with app_on(items).run_test(size=WIDE) as pilot:
        screen = await open_log(pilot, seq=1, rows=1)
        # strace's escapes in the call; the selected line and the table show them as data.
        assert calls(screen) == [
            'openat(AT_FDCWD, "/tmp/[b]x\\33]0;PWNED\\7\\n\\377", O_RDONLY|O_CLOEXEC) = -1 '
            "ENOENT (No such file or directory)"]
        selected = plain(screen, "#event-selected")
        assert "\x1b" not in selected and "[b]x" in selected
        await type_filter(pilot, screen, "path~PWNED")
        await until(pilot, lambda: keys(screen) == [(0,)])
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, EventScreen))
        assert dict(pilot.app.screen.lines)["path"] == "/tmp/[b]x\x1b]0;PWNED\x07\n\\xff"
        console = Console(width=200, file=io.StringIO(), color_system=None)
        console.print(pilot.app.screen.query_one("#event-fields", Static).content)
        rendered = console.file.getvalue()  # type: ignore[attr-defined]
        assert "/tmp/[b]x\\x1b]0;PWNED\\x07\\n\\xff" in rendered
        assert "\x1b" not in rendered and "\x07" not in rendered


async def test_a_reset_empties_the_log(decoded):
    async with app_on(decoded[:2]).run_test(size=WIDE) as pilot:
        screen = await open_log(pilot, seq=2, rows=4)
        screen.session.reset()
        live = pilot.app.screen_stack[1]
        live.post_message(SnapshotReady(decoded[2]))
        await until(pilot, lambda: keys(screen) == [(4,), (5,)], seen=lambda: keys(screen))
        assert "2 shown · 2 kept of 6" in plain(screen, "#events-title")
