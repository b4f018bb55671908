"""Saved sessions in the TUI (Pilot, no root): `sikte-tui open` on a journal made from the
recorded replay fixture, the stretch-of-time dialog, the export dialog, the sessions list."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from textual.widgets import Input, Static, Switch

from tracing.model.report import key_name
from tracing.model.stats import Snapshot
from tracing.session.stored import open_session
from tracing.sources import StoredSource
from tui.app import SikteApp
from tui.live import LiveScreen
from tui.session_dialogs import ExportDialog, WindowDialog, format_offset, parse_offset
from tui.sessions import SessionsScreen
from tui.table import KeyedTable

from .conftest import until

SIZE = (160, 48)



@pytest.fixture
def journal_path(tmp_path: Path, snapshots: list[Snapshot], make_journal) -> Path:
    return make_journal(tmp_path / "20231114-221320-sh.sikte.db", snapshots)


def counts(app: SikteApp) -> dict[str, int]:
    return {r.values["name"]: r.values["count"] for r in app.screen.query_one(KeyedTable).rows}


def expected_counts(snapshots: list[Snapshot], first: int = 0) -> dict[str, int]:
    """Calls per syscall name in the snapshots' intervals from `first` on."""
    out: dict[str, int] = {}
    for s in snapshots[first:]:
        for key, delta in s.interval.items():
            if delta.count:
                name = key_name(snapshots[-1], key)
                out[name] = out.get(name, 0) + delta.count
    return out



def opened(path: Path) -> SikteApp:
    return SikteApp(source=StoredSource(open_session(path)))


async def test_open_shows_the_whole_session(journal_path, snapshots):
    app = opened(journal_path)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: bool(counts(app)))
        assert counts(app) == expected_counts(snapshots)
        assert counts(app)["getppid"] == 7901
        status = str(app.screen.query_one("#status", Static).render())
        assert "saved session" in status and journal_path.name in status
        timeline = str(app.screen.query_one("#timeline", Static).render())
        assert "0:00.0–" in timeline and "w: choose" in timeline


async def test_a_stretch_of_time_shows_only_its_calls(journal_path, snapshots):
    app = opened(journal_path)
    session = app.source.session
    # From the first tick on: the first interval's calls leave the table.
    start = format_offset((snapshots[0].ts_ns - session.start_ts_ns) / 1e9 + 0.05)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: bool(counts(app)))
        await pilot.press("w")
        await until(pilot, lambda: isinstance(app.screen, WindowDialog))
        app.screen.query_one("#from", Input).value = start
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, LiveScreen)
                    and counts(app) == expected_counts(snapshots, first=1))
        assert counts(app) != expected_counts(snapshots)
        await pilot.press("R")  # back to the whole session
        await until(pilot, lambda: counts(app) == expected_counts(snapshots))


async def test_a_bad_stretch_says_why_and_keeps_the_dialog(journal_path):
    app = opened(journal_path)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: bool(counts(app)))
        await pilot.press("w")
        await until(pilot, lambda: isinstance(app.screen, WindowDialog))
        for value, message in (("soon", "write times as seconds"), ("9:00", "'from' must be")):
            app.screen.query_one("#from", Input).value = value
            await pilot.press("enter")
            await pilot.pause()
            assert message in str(app.screen.query_one("#window-error", Static).render())
            assert isinstance(app.screen, WindowDialog)
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, LiveScreen))


def test_offsets_read_like_a_person_writes_them():
    assert parse_offset("12.5") == 12.5
    assert parse_offset("1:30") == 90.0
    assert parse_offset("250ms") == 0.25
    assert format_offset(90.25) == "1:30.2"
    with pytest.raises(ValueError):
        parse_offset("")


async def test_x_exports_the_session_with_progress(journal_path, tmp_path):
    app = opened(journal_path)
    target = tmp_path / "export-here"
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: bool(counts(app)))
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ExportDialog))
        assert app.screen.query_one("#export-path", Input).value.endswith(
            "20231114-221320-sh-parquet")
        app.screen.query_one("#export-path", Input).value = str(target)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, LiveScreen), timeout=10)
        assert f"exported to {target}" in [n.message for n in app._notifications]
    frame = pd.read_parquet(target / "syscalls.parquet")
    assert frame.loc[frame["syscall"] == "getppid", "count"].sum() == 7901


async def test_export_to_an_existing_directory_asks_for_replace(journal_path, tmp_path):
    app = opened(journal_path)
    target = tmp_path / "taken"
    target.mkdir()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: bool(counts(app)))
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ExportDialog))
        app.screen.query_one("#export-path", Input).value = str(target)
        await pilot.press("enter")
        await pilot.pause()
        status = str(app.screen.query_one("#export-status", Static).render())
        assert "exists" in status and isinstance(app.screen, ExportDialog)
        app.screen.query_one("#export-force", Switch).value = True
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, LiveScreen), timeout=10)
    assert (target / "events.parquet").exists()


async def test_the_sessions_list_is_newest_first_and_opens(tmp_path, snapshots, make_journal):
    older = make_journal(tmp_path / "older.sikte.db", snapshots[:2])
    newer = make_journal(tmp_path / "newer.sikte.db", snapshots)
    # The list orders by the sessions' own start times, not by file names.
    import sqlite3

    db = sqlite3.connect(older)
    db.execute("UPDATE meta SET value = '1000.0' WHERE key = 'start_wall_time'")
    db.commit()
    db.close()
    (tmp_path / "notes.txt").write_text("not a session")
    app = SikteApp(browse_sessions=True, sessions_directory=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, SessionsScreen))
        table = app.screen.query_one(KeyedTable)
        assert [Path(r.key[0]).name for r in table.rows] == [newer.name, older.name]
        assert "exited (0)" in table.rows[0].cells["state"]
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, LiveScreen) and bool(counts(app)))
        assert counts(app)["getppid"] == 7901
        await pilot.press("escape")  # back to the list
        await until(pilot, lambda: isinstance(app.screen, SessionsScreen))


async def test_an_empty_sessions_list_says_how_to_make_one(tmp_path):
    app = SikteApp(browse_sessions=True, sessions_directory=tmp_path / "none")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, SessionsScreen))
        notice = str(app.screen.query_one("#notice", Static).render())
        assert "no saved sessions" in notice and "sikte-tui record" in notice
