"""The `open` list: deleting a session after asking, and aborted journals listed with what is
known about them (Pilot, no root)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tracing.session.stored import open_session
from tracing.sources import StoredSource
from tui.app import SikteApp
from tui.live import LiveScreen
from tui.sessions import ConfirmDelete, SessionsScreen
from tui.table import KeyedTable

from .conftest import FIXTURE, until

ROOT = Path(__file__).resolve().parents[2]
SIZES = [(80, 24), (160, 48)]

KILLED = """
import os, sys
from pathlib import Path
from tracing.session.journal import Journal
journal = Journal(Path(sys.argv[1]), {"targets": ["make -j2"]})
journal.sync()
os._exit(9)  # killed before its first tick: no close, no final metadata
"""


def rows(app: SikteApp) -> dict[str, dict[str, str]]:
    return {Path(r.key[0]).name: r.cells for r in app.screen.query_one(KeyedTable).rows}


def files(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


async def select(pilot, app: SikteApp, name: str) -> None:
    table = app.screen.query_one(KeyedTable)
    for _ in range(len(table.rows)):
        if Path((table.cursor_key or ("",))[0]).name == name:
            return
        await pilot.press("down")
    assert Path((table.cursor_key or ("",))[0]).name == name


def dialog_text(app: SikteApp) -> str:
    return " ".join(str(label.render()) for label in app.screen.query(".question"))


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "160x48"])
async def test_d_deletes_the_selected_session_after_asking(tmp_path, snapshots, make_journal,
                                                           size):
    older = make_journal(tmp_path / "20231114-221320-old.sikte.db", snapshots[:2])
    newer = make_journal(tmp_path / "20231114-221321-new.sikte.db", snapshots)
    (tmp_path / "notes.txt").write_text("mine")
    app = SikteApp(browse_sessions=True, sessions_directory=tmp_path)
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: isinstance(app.screen, SessionsScreen))
        # Side files, as a journal that could not be tidied leaves them (made after the
        # list was read: reading it as its owner lets SQLite tidy them).
        Path(f"{older}-wal").write_bytes(b"\0" * 100)
        Path(f"{older}-shm").write_bytes(b"\0" * 100)
        await select(pilot, app, older.name)

        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDelete))
        assert older.name in dialog_text(app)
        assert "journal file and its -wal and -shm files" in dialog_text(app)
        await pilot.press("escape")  # cancel keeps everything
        await until(pilot, lambda: isinstance(app.screen, SessionsScreen))
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDelete))
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, SessionsScreen))
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDelete))
        await pilot.press("enter")  # the focused button is "keep": Enter never deletes
        await until(pilot, lambda: isinstance(app.screen, SessionsScreen))
        assert files(tmp_path) == {older.name, f"{older.name}-wal", f"{older.name}-shm",
                                   newer.name, "notes.txt"}

        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDelete))
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, SessionsScreen)
                    and set(rows(app)) == {newer.name})
        assert files(tmp_path) == {newer.name, "notes.txt"}
        assert [str(n.message) for n in app._notifications][-1].startswith(
            f"deleted {older.name} (")


async def test_a_parquet_session_is_deleted_whole(tmp_path, snapshots, make_journal):
    from tracing.session.export import export_parquet

    journal = make_journal(tmp_path / "j.sikte.db", snapshots)
    export = export_parquet(open_session(journal), tmp_path / "export")
    journal.unlink()
    app = SikteApp(browse_sessions=True, sessions_directory=tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, SessionsScreen)
                    and set(rows(app)) == {"export"})
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmDelete))
        assert "the Parquet session directory" in dialog_text(app)
        await pilot.press("y")
        await until(pilot, lambda: not rows(app))
    assert not export.exists() and files(tmp_path) == set()


async def test_an_aborted_journal_is_listed_with_its_start_and_targets(tmp_path):
    path = tmp_path / "killed.sikte.db"
    before = time.time()
    run = subprocess.run([sys.executable, "-c", KILLED, str(path)], cwd=ROOT, timeout=60)
    assert run.returncode == 9
    app = SikteApp(browse_sessions=True, sessions_directory=tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, SessionsScreen) and bool(rows(app)))
        cells = rows(app)[path.name]
        # The tests pin TZ=UTC: the start is when the journal was made, not 1970.
        started = {time.strftime("%Y-%m-%d %H:%M", time.gmtime(t))
                   for t in (before, time.time())}
        assert cells["started"] in started
        assert (cells["state"], cells["duration"], cells["targets"]) == (
            "aborted", "?", "make -j2")
        await pilot.press("enter")  # opening it says what it holds
        await until(pilot, lambda: isinstance(app.screen, LiveScreen))
        await until(pilot, lambda: any("cut short" in str(n.message)
                                       for n in app._notifications))
        message = next(str(n.message) for n in app._notifications)
        assert message == (f"{path.name}: the trace was cut short (killed); it holds no "
                           "snapshot: it was killed before the first tick, only its targets "
                           "are known")


async def test_opening_an_aborted_journal_by_path_says_it_was_cut_short(tmp_path):
    path = tmp_path / "killed.journal"  # --db-path may name it anything
    run = subprocess.run([sys.executable, "-c", KILLED, str(path)], cwd=ROOT, timeout=60)
    assert run.returncode == 9
    app = SikteApp(source=StoredSource(open_session(path)))  # as `sikte-tui open PATH`
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, LiveScreen)
                    and any("cut short" in str(n.message) for n in app._notifications))
        assert [str(n.message) for n in app._notifications] == [
            f"{path.name}: the trace was cut short (killed); it holds no snapshot: it was "
            "killed before the first tick, only its targets are known"]


@pytest.fixture(scope="module")
def snapshots():
    from tracing.session.replay import load_snapshots

    return load_snapshots(FIXTURE)
