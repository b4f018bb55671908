"""80 columns and stable views (issue 13): columns drop by priority, the first column stays
when scrolling sideways, the footer keeps the keys that matter, and a syscall's recent
events keep their cursor while new ones arrive."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.widgets import Static
from textual.widgets._footer import FooterKey

from tui.app import SikteApp
from tui.columns import GROUPINGS, Column, Row, columns
from tui.detail import DetailScreen
from tui.footer import KeyFooter
from tui.live import LiveScreen
from tui.messages import SnapshotReady
from tui.table import KeyedTable, fit_columns, span

from .conftest import until

NARROW, WIDE = (80, 24), (160, 48)
MUST_FIT = ["name", "count", "errors", "total_ns", "p99_ns", "max_ns"]
THREAD = next(g for g in GROUPINGS if g.key == "thread")


def keys(cols) -> list[str]:
    return [c.key for c in cols]


# -- fit_columns, pure ---------------------------------------------------------------------------


def test_the_must_fit_columns_are_all_that_fit_beside_an_80_column_scrollbar():
    assert keys(fit_columns(columns(GROUPINGS[0]), 78, "total_ns").columns) == MUST_FIT


def test_process_by_syscall_fits_80_columns_without_the_comm():
    grouping = next(g for g in GROUPINGS if g.key == "pid_syscall")
    layout = fit_columns(columns(grouping), 78, "total_ns")
    assert keys(layout.columns) == ["pid", *MUST_FIT]
    assert span(layout.columns, layout.gap) <= 78  # nothing cut at the right edge
    assert "comm" in keys(fit_columns(columns(grouping), 158, "total_ns").columns)


def test_columns_come_back_by_priority_as_room_grows():
    cols = columns(GROUPINGS[0])
    assert keys(fit_columns(cols, 88, "total_ns").columns) == [
        "name", "count", "rate", "errors", "total_ns", "p99_ns", "max_ns"]
    assert keys(fit_columns(cols, 97, "total_ns").columns) == [
        "name", "count", "rate", "errors", "total_ns", "avg_ns", "p99_ns", "max_ns"]
    assert keys(fit_columns(cols, 158, "total_ns").columns) == keys(cols)


def test_the_sort_column_never_drops():
    assert keys(fit_columns(columns(GROUPINGS[0]), 78, "p50_ns").columns) == [
        "name", "count", "errors", "total_ns", "p50_ns", "p99_ns", "max_ns"]


def test_an_empty_optional_column_hides_unless_it_is_the_sort_column():
    cols = columns(THREAD)
    empty = frozenset({"container"})
    assert "container" not in keys(fit_columns(cols, 158, "total_ns", empty).columns)
    assert "container" in keys(fit_columns(cols, 158, "total_ns").columns)
    assert "container" in keys(fit_columns(cols, 158, "container", empty).columns)


def test_a_narrow_gap_only_when_it_makes_the_must_fit_columns_fit():
    cols = columns(THREAD)
    layout = fit_columns(cols, 78, "total_ns", frozenset({"container"}))
    assert keys(layout.columns) == ["pid", "tid", "comm", *MUST_FIT[1:]]
    assert layout.gap == 1
    assert fit_columns(columns(GROUPINGS[0]), 78, "total_ns").gap == 2
    wide = (Column("a", "a", False, 60), Column("b", "b", False, 60))
    assert fit_columns(wide, 78).gap == 2  # gap 1 would not help: it scrolls


# -- the live view at 80 and 160 columns ---------------------------------------------------------


async def _rows_shown(pilot: Pilot) -> None:
    await until(pilot, lambda: pilot.app.screen.query_one(KeyedTable).row_count > 0)


def line_text(table: KeyedTable, y: int) -> str:
    return table.render_line(y).text


@pytest.mark.parametrize(("size", "shown"), [
    (NARROW, MUST_FIT),
    (WIDE, keys(columns(GROUPINGS[0]))),
])
async def test_live_columns_at_80_and_160(replay_app: SikteApp, size, shown):
    async with replay_app.run_test(size=size) as pilot:
        await _rows_shown(pilot)
        table = replay_app.screen.query_one(KeyedTable)
        assert keys(table.shown_columns) == shown
        # wait4 sorts first by total time: 14 calls, 7 errors, 1.48s, p99 570ms, max 603ms
        assert line_text(table, 1).split()[:1] == ["wait4"]
        first = line_text(table, 1).split()
        assert [first[i] for i in (0, 1)] == ["wait4", "14"]
        assert {"7", "1.48s", "570ms", "603ms"} <= set(first)
        assert len(line_text(table, 1).rstrip()) <= size[0]


async def test_the_thread_view_hides_the_empty_container_column_and_keeps_the_sort(
        replay_app: SikteApp):
    async with replay_app.run_test(size=NARROW) as pilot:
        await _rows_shown(pilot)
        screen = replay_app.screen
        assert isinstance(screen, LiveScreen)
        screen._set_grouping(THREAD)
        await pilot.pause()
        table = screen.query_one(KeyedTable)
        assert keys(table.shown_columns) == ["pid", "tid", "comm", *MUST_FIT[1:]]
        screen._set_sort("avg_ns")
        await pilot.pause()
        assert "avg_ns" in keys(table.shown_columns)
        assert table.header_x("avg_ns") is not None
        assert table.sort_column == "avg_ns"


# -- the first column stays when scrolling sideways ---------------------------------------------


class OneTable(App):
    def compose(self) -> ComposeResult:
        yield KeyedTable()


async def test_the_first_column_stays_when_scrolled_sideways():
    app = OneTable()
    cols = (Column("name", "name", False, 10), Column("a", "a", False, 40),
            Column("b", "b", False, 40))
    async with app.run_test(size=(40, 6)) as pilot:
        table = app.query_one(KeyedTable)
        table.set_columns(cols)
        table.update_rows([Row("r", {}, {"name": "first", "a": "A" * 40, "b": "B" * 40})])
        await pilot.pause()
        assert line_text(table, 1).startswith("first       AAAA")
        table.scroll_to(x=45, animate=False, immediate=True)
        await pilot.pause()
        assert line_text(table, 1).startswith("first       BBBB")
        assert line_text(table, 0).startswith("name  ")
        # a click on the frozen label is on it, scrolled or not
        assert table._column_at(3) == "name"


# -- the footer ----------------------------------------------------------------------------------


def footer_actions(app: SikteApp) -> list[str]:
    footer = app.screen.query_one(KeyFooter)
    return [k.action for k in footer.query(FooterKey)]


async def test_the_footer_at_80_columns_keeps_what_matters(replay_app: SikteApp):
    async with replay_app.run_test(size=NARROW) as pilot:
        await _rows_shown(pilot)
        essential = ["filter", "errors_only", "cycle_grouping", "drill", "samples",
                     "connections", "help", "quit"]
        await until(pilot, lambda: footer_actions(replay_app) == essential)
        keys_width = sum(k.size.width for k in replay_app.screen.query(FooterKey))
        assert keys_width <= 80


async def test_the_footer_at_160_columns_shows_every_key(replay_app: SikteApp):
    async with replay_app.run_test(size=WIDE) as pilot:
        await _rows_shown(pilot)
        every = ["filter", "errors_only", "cycle_grouping", "drill", "toggle_tree",
                 "toggle_output", "toggle_pause", "reset", "export", "samples", "connections",
                 "event_log", "files", "in_flight", "help", "quit", "command_palette"]
        await until(pilot, lambda: footer_actions(replay_app) == every)


# -- a syscall's recent events: stable while more arrive -----------------------------------------


async def _open_openat(pilot: Pilot) -> DetailScreen:
    await _rows_shown(pilot)
    table = pilot.app.screen.query_one(KeyedTable)
    table.move_cursor([r.key for r in table.rows].index(("openat", 0)))
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(pilot.app.screen, DetailScreen))
    screen = pilot.app.screen
    await until(pilot, lambda: screen.query_one("#events", KeyedTable).row_count == 26)
    return screen


def events_title(screen: DetailScreen) -> str:
    return str(screen.query_one("#events-title", Static).content)


async def test_the_events_cursor_stays_on_its_event_when_more_arrive(make_replay_app, snapshots):
    app = make_replay_app(snapshots[:2])  # 26 openat events; the third snapshot has 5 more
    async with app.run_test(size=WIDE) as pilot:
        screen = await _open_openat(pilot)
        events = screen.query_one("#events", KeyedTable)
        await pilot.press("down", "down", "down")
        chosen = events.cursor_key
        line = events.cursor - int(events.scroll_offset.y)
        assert events.cursor == 3 and chosen is not None
        app.screen_stack[-2].post_message(SnapshotReady(snapshots[2]))
        await until(pilot, lambda: events.row_count == 31)
        assert events.cursor_key == chosen
        assert events.cursor == 8  # five newer events above it
        assert "held on the selected event" in events_title(screen)
        assert events.cursor - int(events.scroll_offset.y) == line  # the same screen line


async def test_on_the_newest_event_the_list_follows(make_replay_app, snapshots):
    app = make_replay_app(snapshots[:2])
    async with app.run_test(size=WIDE) as pilot:
        screen = await _open_openat(pilot)
        events = screen.query_one("#events", KeyedTable)
        assert events.cursor == 0
        app.screen_stack[-2].post_message(SnapshotReady(snapshots[2]))
        await until(pilot, lambda: events.row_count == 31)
        assert events.cursor == 0
        assert events.cursor_key == events.rows[0].key
        assert events.rows[0].values["ts"] == max(r.values["ts"] for r in events.rows)


async def test_p_pauses_the_events_list(make_replay_app, snapshots):
    app = make_replay_app(snapshots[:2])
    async with app.run_test(size=WIDE) as pilot:
        screen = await _open_openat(pilot)
        events = screen.query_one("#events", KeyedTable)
        await pilot.press("p")
        assert "paused: p resumes" in events_title(screen)
        before = str(screen.query_one("#detail-title", Static).content)
        app.screen_stack[-2].post_message(SnapshotReady(snapshots[2]))
        # the title's counts move on (the snapshot arrived); the list does not
        await until(pilot, lambda: str(
            screen.query_one("#detail-title", Static).content) != before)
        assert events.row_count == 26
        await pilot.press("p")
        await until(pilot, lambda: events.row_count == 31)
        assert "paused" not in events_title(screen)
