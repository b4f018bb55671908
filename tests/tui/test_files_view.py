"""The Files view (F) on a replay source with per-file totals (tests/tui/events_fixture.py):
exact rows per path, failed opens by errno, sorting, grouping by directory, live updates,
the 80-column fit and Enter into the event log on the path."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

import pytest
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import Static

from tracing.model.files import FileKey, FileStats
from tracing.model.paths import PathTable
from tracing.model.stats import Snapshot
from tracing.sources import ReplaySource
from tui.app import SikteApp
from tui.columns import RowKey
from tui.event_log import EventLogScreen
from tui.file_rows import directory_of
from tui.files import FilesScreen
from tui.live import LiveScreen
from tui.messages import SnapshotReady
from tui.table import KeyedTable

from .conftest import NOW, until
from .events_fixture import with_events

WIDE = (160, 48)


@pytest.fixture
def decoded(snapshots: list[Snapshot]) -> list[Snapshot]:
    return with_events(snapshots)


def app_on(items: list[Snapshot]) -> SikteApp:
    return SikteApp(source=ReplaySource(items), clock=lambda: NOW)


async def open_files(pilot: Pilot, seq: int = 4) -> FilesScreen:
    await until(pilot, lambda: isinstance(pilot.app.screen, LiveScreen)
                and pilot.app.screen.query_one(KeyedTable).row_count > 0)
    live = pilot.app.screen
    await until(pilot, lambda: live.session.latest is not None
                and live.session.latest.seq == seq)
    await pilot.press("F")
    await until(pilot, lambda: isinstance(pilot.app.screen, FilesScreen))
    screen = pilot.app.screen
    assert isinstance(screen, FilesScreen)
    await until(pilot, lambda: screen._table().row_count > 0)
    return screen


def keys(screen: FilesScreen) -> list[RowKey]:
    return [r.key for r in screen._table().rows]


def cells(screen: FilesScreen) -> dict[RowKey, dict[str, str]]:
    return {r.key: dict(r.cells) for r in screen._table().rows}


def plain(screen: FilesScreen, selector: str) -> str:
    content = screen.query_one(selector, Static).content
    return Text.from_markup(content).plain if isinstance(content, str) else str(content)


async def test_one_row_per_path_with_exact_totals(decoded):
    async with app_on(decoded).run_test(size=WIDE) as pilot:
        screen = await open_files(pilot)
        # Sorted by time in I/O, ties by path.
        assert keys(screen) == [("/var/log/app.log",), ("/etc/passwd",), ("/etc/app.conf",),
                                ("/etc/app.d/local.conf",)]
        assert [c.key for c in screen._table().columns] == [
            "path", "procs", "opens", "failed", "reads", "bytes_read", "writes",
            "bytes_written", "io_ns"]
        rows = cells(screen)
        assert rows[("/etc/passwd",)] == {
            "path": "/etc/passwd", "procs": "2", "opens": "2", "failed": "-", "reads": "4",
            "bytes_read": "5.0K", "writes": "0", "bytes_written": "0B", "io_ns": "28µs"}
        assert rows[("/var/log/app.log",)]["writes"] == "10"
        assert rows[("/var/log/app.log",)]["bytes_written"] == "977K"
        assert rows[("/var/log/app.log",)]["io_ns"] == "2ms"
        assert rows[("/etc/app.conf",)]["failed"] == "ENOENT 2"
        assert rows[("/etc/app.conf",)]["opens"] == "0"
        # Most first, then by errno number: EACCES (13) and ENOENT (2) once each.
        assert rows[("/etc/app.d/local.conf",)]["failed"] == "ENOENT 1, EACCES 1"
        assert plain(screen, "#files-title") == "Files: 4 paths · sort I/O time ▼"


async def test_the_totals_follow_new_snapshots(decoded):
    async with app_on(decoded[:2]).run_test(size=WIDE) as pilot:
        screen = await open_files(pilot, seq=2)
        assert cells(screen)[("/etc/app.conf",)]["failed"] == "ENOENT 1"
        assert len(keys(screen)) == 3
        live = pilot.app.screen_stack[1]
        assert isinstance(live, LiveScreen)
        live.post_message(SnapshotReady(decoded[2]))
        await until(pilot, lambda: len(keys(screen)) == 4)
        assert cells(screen)[("/etc/app.conf",)]["failed"] == "ENOENT 2"


async def test_g_groups_by_directory_with_sums(decoded):
    async with app_on(decoded).run_test(size=WIDE) as pilot:
        screen = await open_files(pilot)
        await pilot.press("g")
        await until(pilot, lambda: screen.grouped)
        assert keys(screen) == [("/var/log/",), ("/etc/",), ("/etc/app.d/",)]
        rows = cells(screen)
        assert rows[("/etc/",)] == {
            "path": "/etc/", "procs": "2", "opens": "2", "failed": "ENOENT 2", "reads": "4",
            "bytes_read": "5.0K", "writes": "0", "bytes_written": "0B", "io_ns": "28µs"}
        assert rows[("/etc/app.d/",)]["failed"] == "ENOENT 1, EACCES 1"
        assert "by directory (3)" in plain(screen, "#files-title")
        await pilot.press("g")
        await until(pilot, lambda: len(keys(screen)) == 4)


async def test_sorting_steps_and_inverts(decoded):
    async with app_on(decoded).run_test(size=WIDE) as pilot:
        screen = await open_files(pilot)
        await pilot.press("<")  # before I/O time: bytes written
        await until(pilot, lambda: screen.sort_column == "bytes_written")
        assert keys(screen)[0] == ("/var/log/app.log",)
        screen._set_sort("failed", True)
        await pilot.pause()
        assert keys(screen)[:2] == [("/etc/app.conf",), ("/etc/app.d/local.conf",)]
        screen._set_sort("path", False)
        await pilot.press("i")
        await until(pilot, lambda: screen.sort_reverse)
        assert keys(screen) == [("/var/log/app.log",), ("/etc/passwd",),
                                ("/etc/app.d/local.conf",), ("/etc/app.conf",)]


async def test_at_80_columns_the_path_and_opens_stay(decoded):
    async with app_on(decoded).run_test(size=(80, 24)) as pilot:
        screen = await open_files(pilot)
        shown = [c.key for c in screen._table().shown_columns]
        assert shown == ["path", "opens", "failed", "io_ns"]  # the sort column stays
        width = sum(max(c.width, len(c.label) + 2) + 2 for c in screen._table().shown_columns)
        assert width <= 80


async def test_enter_opens_the_event_log_on_that_path(decoded):
    async with app_on(decoded).run_test(size=WIDE) as pilot:
        screen = await open_files(pilot)
        screen._table().move_cursor(keys(screen).index(("/etc/app.conf",)))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, EventLogScreen))
        log = pilot.app.screen
        assert isinstance(log, EventLogScreen)
        assert log.filter is not None and log.filter.text == "path=/etc/app.conf"
        await until(pilot, lambda: log._table().row_count == 2)
        await pilot.press("escape")  # clears the filter
        await pilot.press("escape")  # back to the files
        await until(pilot, lambda: isinstance(pilot.app.screen, FilesScreen))


async def test_enter_on_a_directory_lists_the_events_of_its_files(decoded):
    async with app_on(decoded).run_test(size=WIDE) as pilot:
        screen = await open_files(pilot)
        await pilot.press("g")
        await until(pilot, lambda: screen.grouped)
        screen._table().move_cursor(keys(screen).index(("/etc/",)))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, EventLogScreen))
        log = pilot.app.screen
        assert isinstance(log, EventLogScreen)
        assert log.filter is not None and log.filter.text == r"path~^/etc/[^/]*$"


@pytest.mark.parametrize(("path", "directory"), [
    ("/etc/passwd", "/etc/"), ("/passwd", "/"), ("/a/b/", "/a/"),
    ("socket:[1234]", "socket:[1234]"), ("pipe:[9]", "pipe:[9]"),
])
def test_directory_of(path: str, directory: str) -> None:
    assert directory_of(path) == directory


async def test_a_hostile_path_is_data(decoded):
    paths = PathTable()
    hostile = paths.add(b"/tmp/[b]\x1b[31mred\n\xff")
    items = [dataclasses.replace(
        s, paths=paths, files=MappingProxyType({FileKey(4242, hostile): FileStats(opens=1)}))
        for s in decoded]
    async with app_on(items).run_test(size=WIDE) as pilot:
        screen = await open_files(pilot)
        assert keys(screen) == [("/tmp/[b]\x1b[31mred\n\\xff",)]
        assert cells(screen)[keys(screen)[0]]["path"] == "/tmp/[b]\\x1b[31mred\\n\\xff"
        selected = plain(screen, "#file-selected")
        assert selected.startswith("path /tmp/[b]\\x1b[31mred\\n\\xff · 1 process · 1 opens")
