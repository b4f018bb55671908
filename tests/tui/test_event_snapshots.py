"""Snapshot tests (pytest-textual-snapshot) of the event log, the Files view (per path and by
directory) and one event whole, at the smallest supported terminal (80x24) and a large one
(160x48).

Deterministic: the recorded fixture with synthetic decoded events and file totals
(events_fixture.py), the clock and the timezone pinned (conftest.py). After a deliberate
change of a screen, look at the new SVGs and accept them with
`.venv/bin/python -m pytest tests/tui/test_event_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

import pytest
from textual.pilot import Pilot

from tracing.model.stats import Snapshot
from tracing.sources import ReplaySource
from tui.app import SikteApp
from tui.event_log import EventLogScreen, EventScreen
from tui.files import FilesScreen
from tui.table import KeyedTable

from .conftest import NOW, SIZES, until
from .events_fixture import with_events


def _app(snapshots: list[Snapshot]) -> SikteApp:
    return SikteApp(source=ReplaySource(with_events(snapshots)), clock=lambda: NOW)


async def _loaded(pilot: Pilot) -> None:
    await until(pilot, lambda: pilot.app.screen.query_one(KeyedTable).row_count > 0)
    await until(pilot, lambda: pilot.app.session.latest is not None
                and pilot.app.session.latest.seq == 4)
    await pilot.pause(0.3)  # a render tick of the live view: nothing left to change


async def _open_log(pilot: Pilot, *keys: str) -> None:
    await _loaded(pilot)
    await pilot.press("E", *keys)
    await until(pilot, lambda: isinstance(pilot.app.screen, (EventLogScreen, EventScreen)))
    await pilot.pause(0.2)


async def _open_files(pilot: Pilot, *keys: str) -> None:
    await _loaded(pilot)
    await pilot.press("F", *keys)
    await until(pilot, lambda: isinstance(pilot.app.screen, FilesScreen))
    await pilot.pause(0.2)


@pytest.mark.parametrize("size", SIZES)
def test_event_log(snap_compare, snapshots: list[Snapshot], size: tuple[int, int]):
    async def run_before(pilot: Pilot) -> None:
        await _open_log(pilot)

    assert snap_compare(_app(snapshots), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_one_event_whole(snap_compare, snapshots: list[Snapshot], size: tuple[int, int]):
    async def run_before(pilot: Pilot) -> None:
        await _open_log(pilot, "up", "up", "up", "up", "enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, EventScreen))
        await pilot.pause(0.2)

    assert snap_compare(_app(snapshots), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_files(snap_compare, snapshots: list[Snapshot], size: tuple[int, int]):
    async def run_before(pilot: Pilot) -> None:
        await _open_files(pilot)

    assert snap_compare(_app(snapshots), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_files_by_directory(snap_compare, snapshots: list[Snapshot], size: tuple[int, int]):
    async def run_before(pilot: Pilot) -> None:
        await _open_files(pilot, "g")

    assert snap_compare(_app(snapshots), terminal_size=size, run_before=run_before)
