"""A saved session shows its threads as the live trace did (Pilot, no root): `sikte-tui open`
on a journal and on its Parquet export of the recorded fixture with named threads (one of
them hostile), the thread view under each thread's own name, the tree's running threads
apart from every thread seen, and the event log naming each event's thread, its `comm=`
filter matching a thread's name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from textual.widgets import Input

from tracing.model.stats import Snapshot
from tracing.session.export import export_parquet
from tracing.session.stored import open_session
from tracing.sources import StoredSource
from tui.app import SikteApp
from tui.event_log import EventLogScreen
from tui.event_rows import LogEvent, describe_event
from tui.table import KeyedTable
from tui.widgets import ProcessTreePanel

from .conftest import NOW, until
from .test_thread_names import PID, SHOWN, named, thread_rows, tree_labels

SIZE = (160, 48)


@pytest.fixture(params=["journal", "parquet"])
def saved(request: pytest.FixtureRequest, tmp_path: Path, snapshots: list[Snapshot],
          make_journal: Callable[[Path, list[Snapshot]], Path]) -> Path:
    path = make_journal(tmp_path / "20231114-221320-python.sikte.db",
                        named(snapshots, alive=True))
    if request.param == "journal":
        return path
    return export_parquet(open_session(path), tmp_path / "pq")


def opened(path: Path) -> SikteApp:
    return SikteApp(source=StoredSource(open_session(path)), clock=lambda: NOW)


def table(app: SikteApp) -> KeyedTable:
    return app.screen.query_one(KeyedTable)


async def test_the_thread_view_and_the_tree_of_a_saved_session(saved: Path) -> None:
    app = opened(saved)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app).row_count > 0)
        assert await thread_rows(pilot, app) == SHOWN
        await pilot.press("t")
        await pilot.pause()
        labels = tree_labels(app.screen.query_one(ProcessTreePanel))
        assert f"{PID} python (2 threads, 4 total)" in labels


async def test_the_event_log_names_each_events_thread(saved: Path) -> None:
    app = opened(saved)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: table(app).row_count > 0)
        await pilot.press("E")
        await until(pilot, lambda: isinstance(app.screen, EventLogScreen))
        screen = app.screen
        assert isinstance(screen, EventLogScreen)
        await until(pilot, lambda: screen._table().row_count == 576)
        by_seq: dict[object, LogEvent] = {e.seq: e for e in screen._shown}
        named_rows = {(by_seq[r.key[0]].tid, r.cells["comm"]) for r in screen._table().rows
                      if by_seq[r.key[0]].pid == PID}
        assert named_rows == set(SHOWN.items())
        worker = next(e for e in screen._shown if e.tid == 19955)
        assert dict(describe_event(worker, None))["process"] == (
            f"pid {PID} tid 19955 worker (python)")

        await pilot.press("slash")
        screen.query_one("#events-filter", Input).value = "comm=worker"
        await pilot.press("enter")
        await until(pilot, lambda: screen._table().row_count == 16)
        assert {e.tid for e in screen._shown} == {19955}
        screen.query_one("#events-filter", Input).value = "comm=python"
        await pilot.press("enter")
        # The process's name keeps its every thread, the named ones too.
        await until(pilot, lambda: screen._table().row_count == 127 + 3 * 16)
