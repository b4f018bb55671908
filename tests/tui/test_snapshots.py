"""Snapshot tests (pytest-textual-snapshot): the picker, the live view and the openat
drill-down, each at the smallest supported terminal (80x24) and a large one (160x48).

Deterministic: the live view plays the recorded fixture, the picker lists a fixed process
list, and the clock and the timezone are pinned (conftest.py). After a deliberate change of
the UI, look at the new screens and accept them with
`.venv/bin/python -m pytest tests/tui/test_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

import pytest
from textual.pilot import Pilot

from tui.app import SikteApp
from tui.detail import DetailScreen
from tui.table import KeyedTable

from .conftest import SIZES, until


async def _rows_shown(pilot: Pilot) -> None:
    await until(pilot, lambda: pilot.app.screen.query_one(KeyedTable).row_count > 0)
    await pilot.pause(0.3)  # a render tick after the rows: nothing left to change


@pytest.mark.parametrize("size", SIZES)
def test_picker(snap_compare, picker_app: SikteApp, size: tuple[int, int]):
    assert snap_compare(picker_app, terminal_size=size, run_before=_rows_shown)


@pytest.mark.parametrize("size", SIZES)
def test_live_view(snap_compare, replay_app: SikteApp, size: tuple[int, int]):
    assert snap_compare(replay_app, terminal_size=size, run_before=_rows_shown)


@pytest.mark.parametrize("size", SIZES)
def test_openat_details(snap_compare, replay_app: SikteApp, size: tuple[int, int]):
    async def open_openat(pilot: Pilot) -> None:
        await _rows_shown(pilot)
        table = pilot.app.screen.query_one(KeyedTable)
        table.move_cursor([r.key for r in table.rows].index(("openat", 0)) - 1)
        await pilot.press("down", "enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, DetailScreen))
        await pilot.pause(0.1)

    assert snap_compare(replay_app, terminal_size=size, run_before=open_openat)
