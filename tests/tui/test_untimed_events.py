"""Issue 18: events whose call was not timed (EVF_UNTIMED: --timing off, or a call --timing
sampled left out) show "-" for their duration, never 0, in the event log, its selected-row
line, one event whole and a syscall's details; a duration filter matches none of them. The
same on a replay source, on a saved journal (`sikte-tui open`) and on its Parquet export.

The events are tests/tui/events_fixture.py's with app's (every event but 5, curl's connect,
and 7, cat's openat) marked untimed, as a sampled trace leaves them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from tracing.model.captures import EVF_SELECTED, EVF_UNTIMED
from tracing.model.stats import Snapshot
from tracing.model.timing import Timing
from tracing.session.export import export_parquet
from tracing.session.stored import open_session
from tracing.sources import ReplaySource, StoredSource
from tui.app import SikteApp
from tui.detail import DetailScreen
from tui.event_log import EventLogScreen, EventScreen
from tui.live import LiveScreen
from tui.table import KeyedTable

from .conftest import NOW, until
from .events_fixture import APP, CAT
from .test_event_log import WIDE, open_log, plain, press_event_log, type_filter


async def open_stored_log(pilot, rows: int = 8) -> EventLogScreen:
    """The event log of a saved session (its one window snapshot, whatever its seq)."""
    await until(pilot, lambda: isinstance(pilot.app.screen, LiveScreen)
                and pilot.app.screen.query_one(KeyedTable).row_count > 0)
    return await press_event_log(pilot, rows)

UNTIMED_TEXT = "(not timed: --timing off, or a call --timing sampled left out)"


def untimed_app_events(snapshots: list[Snapshot]) -> list[Snapshot]:
    """The fixture's events with app's marked untimed and their duration 0, as the kernel
    writes them."""
    from .events_fixture import with_events

    out = []
    for s in with_events(snapshots):
        events = s.events.copy()
        app = events["pid"] == APP
        events["flags"][app] |= EVF_UNTIMED
        events["duration_ns"][app] = 0
        events.setflags(write=False)
        out.append(dataclasses.replace(s, events=events, timing=Timing.SAMPLED))
    return out


@pytest.fixture
def untimed(snapshots: list[Snapshot]) -> list[Snapshot]:
    return untimed_app_events(snapshots)


def app_for(kind: str, items: list[Snapshot], tmp_path: Path, make_journal) -> SikteApp:
    if kind == "replay":
        return SikteApp(source=ReplaySource(items), clock=lambda: NOW)
    journal = make_journal(tmp_path / "20231114-221320-app.sikte.db", items)
    if kind == "journal":
        return SikteApp(source=StoredSource(open_session(journal)), clock=lambda: NOW)
    out = export_parquet(open_session(journal), tmp_path / "export")
    return SikteApp(source=StoredSource(open_session(out)), clock=lambda: NOW)


@pytest.mark.parametrize("kind", ["replay", "journal", "parquet"])
async def test_the_log_shows_a_dash_for_untimed_events(untimed, tmp_path, make_journal, kind):
    async with app_for(kind, untimed, tmp_path, make_journal).run_test(size=WIDE) as pilot:
        screen = await (open_log(pilot) if kind == "replay" else open_stored_log(pilot))
        table = screen._table()
        assert [r.cells["duration"] for r in table.rows] == [
            "-", "-", "-", "-", "-", "30µs", "-", "12µs"]
        # The newest (cat's, timed) is selected: its line keeps strace's -T time.
        assert plain(screen, "#event-selected").endswith(
            'openat(AT_FDCWD, "/etc/passwd", O_RDONLY) = 3 <0.000012>')
        table.move_cursor(6)  # app's second openat of /etc/app.conf: untimed
        await until(pilot, lambda: plain(screen, "#event-selected").endswith("<->"),
                    seen=lambda: plain(screen, "#event-selected"))
        assert plain(screen, "#event-selected").endswith(
            "= -1 ENOENT (No such file or directory) <->")


async def test_one_untimed_event_whole_says_it_was_not_timed(untimed):
    app = SikteApp(source=ReplaySource(untimed), clock=lambda: NOW)
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_log(pilot)
        screen._table().move_cursor(3)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, EventScreen))
        dialog = pilot.app.screen
        assert isinstance(dialog, EventScreen)
        lines = dict(dialog.lines)
        assert lines["duration"] == f"- {UNTIMED_TEXT}"
        assert lines["strace"] == (
            f'[pid  {APP}] read(3</etc/passwd>, "root:x:0:0:root:/root:/bin/bash\\n"..., '
            f"4096) = 120 <->")


@pytest.mark.parametrize(("text", "expected"), [
    ("duration>0", [5, 7]),
    ("duration<1ms", [5, 7]),
    ("duration=0", []),  # an untimed call's record holds 0: that is no time
    ("!duration>20us", [0, 1, 2, 3, 4, 6, 7]),
])
async def test_a_duration_filter_matches_no_untimed_event(untimed, text, expected):
    app = SikteApp(source=ReplaySource(untimed), clock=lambda: NOW)
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_log(pilot)
        await type_filter(pilot, screen, text)
        await until(pilot, lambda: [r.key for r in screen._table().rows]
                    == [(i,) for i in expected],
                    seen=lambda: [r.key for r in screen._table().rows])


async def test_details_show_a_dash_for_untimed_events(untimed):
    app = SikteApp(source=ReplaySource(untimed), clock=lambda: NOW)
    async with app.run_test(size=WIDE) as pilot:
        from .test_event_log import live_loaded

        live = await live_loaded(pilot, 4)
        table = live.query_one(KeyedTable)
        await until(pilot, lambda: ("openat", 0) in [r.key for r in table.rows])
        table.move_cursor([r.key for r in table.rows].index(("openat", 0)))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, DetailScreen))
        events = pilot.app.screen.query_one("#events", KeyedTable)
        await until(pilot, lambda: events.row_count == 5)
        # Newest first: cat's (timed), then app's four (untimed).
        assert [(r.cells["pid"], r.cells["duration"]) for r in events.rows] == [
            (str(CAT), "12µs")] + [(str(APP), "-")] * 4


def test_the_fixture_marks_exactly_apps_events(untimed):
    events = np.concatenate([s.events for s in untimed])
    assert events["flags"].tolist() == [EVF_SELECTED | EVF_UNTIMED] * 5 + [EVF_SELECTED] + [
        EVF_SELECTED | EVF_UNTIMED, EVF_SELECTED]
