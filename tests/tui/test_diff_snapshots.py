"""Snapshot tests of the diff TUI (pytest-textual-snapshot) at 80x24 and 160x48: the table of
syscalls of two runs of different machines (the note in the header) and the overlaid
latency histograms of one syscall. Deterministic: the Diff is made by hand
(tests/tui/diff_fixture.py). After a deliberate change of the UI, look at the new screens
and accept them with `--snapshot-update`."""

from __future__ import annotations

import pytest
from textual.pilot import Pilot

from tui.diff import DiffScreen
from tui.diff_app import DiffApp
from tui.diff_histogram import DiffHistogramScreen

from .conftest import SIZES, until
from .diff_fixture import make_diff


async def _table_shown(pilot: Pilot) -> None:
    await until(pilot, lambda: isinstance(pilot.app.screen, DiffScreen)
                and pilot.app.screen._table().row_count > 0)
    await pilot.pause(0.1)


@pytest.mark.parametrize("size", SIZES)
def test_diff_table(snap_compare, size: tuple[int, int]):
    assert snap_compare(DiffApp(make_diff(other_machine=True)), terminal_size=size,
                        run_before=_table_shown)


@pytest.mark.parametrize("size", SIZES)
def test_diff_histograms(snap_compare, size: tuple[int, int]):
    async def open_openat(pilot: Pilot) -> None:
        await _table_shown(pilot)
        await pilot.press("down", "enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, DiffHistogramScreen))
        await pilot.pause(0.1)

    assert snap_compare(DiffApp(make_diff()), terminal_size=size, run_before=open_openat)
