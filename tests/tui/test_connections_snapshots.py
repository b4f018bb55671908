"""Snapshot tests (pytest-textual-snapshot) of the Connections view: each connection, and the
summary per remote endpoint, at the smallest supported terminal (80x24) and a large one
(160x48).

Deterministic: the recorded fixture with synthetic connections (connections_fixture.py),
the clock and the timezone pinned (conftest.py). After a deliberate change of the screen,
look at the new SVGs and accept them with
`.venv/bin/python -m pytest tests/tui/test_connections_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

import pytest
from textual.pilot import Pilot

from tracing.model.stats import Snapshot
from tracing.sources import ReplaySource
from tui.app import SikteApp
from tui.connections import ConnectionsScreen
from tui.table import KeyedTable

from .conftest import NOW, SIZES, until
from .connections_fixture import with_connections


def _app(snapshots: list[Snapshot]) -> SikteApp:
    return SikteApp(source=ReplaySource(with_connections(snapshots)), clock=lambda: NOW)


async def _open(pilot: Pilot, *keys: str) -> None:
    await until(pilot, lambda: pilot.app.screen.query_one(KeyedTable).row_count > 0)
    await until(pilot, lambda: len(pilot.app.session.connections) == 8)
    await pilot.pause(0.3)  # a render tick of the live view: nothing left to change
    pilot.app.screen.query_one(KeyedTable).move_cursor(0)  # not a connect/accept row
    await pilot.press("c", *keys)
    await until(pilot, lambda: isinstance(pilot.app.screen, ConnectionsScreen))
    await pilot.pause(0.2)


@pytest.mark.parametrize("size", SIZES)
def test_connections(snap_compare, snapshots: list[Snapshot], size: tuple[int, int]):
    async def run_before(pilot: Pilot) -> None:
        await _open(pilot)

    assert snap_compare(_app(snapshots), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_connections_by_remote(snap_compare, snapshots: list[Snapshot], size: tuple[int, int]):
    async def run_before(pilot: Pilot) -> None:
        await _open(pilot, "g")

    assert snap_compare(_app(snapshots), terminal_size=size, run_before=run_before)
