"""Root reading a journal another user owns (`open`, `export`, `diff`): the journal's -wal
and -shm files are theirs too. A -wal that is a symbolic link (to a file of root's) or a
FIFO is refused in one line before SQLite opens it, and the private copy made when SQLite
cannot keep its -shm file there (a -shm that is a link) copies no more than there is room
for; before, the copy's refusal of the link escaped as an internal error."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from cli.main import main
from tests.unit.test_diff import RUN_A, RUN_B, write_session
from tracing.errors import UserError
from tracing.session import journal_reader
from tracing.session.stored import open_session

NOBODY = 65534
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (files of uid 65534)")


def theirs(tmp_path: Path, wal: bool = False) -> Path:
    """A journal of uid 65534 in a sticky world-writable directory, with a write-ahead log
    holding part of it when `wal`."""
    directory = tmp_path / "shared"
    directory.mkdir()
    directory.chmod(0o1777)
    path = write_session(directory / "theirs.sikte.db", RUN_A)
    if wal:
        db = sqlite3.connect(path)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA wal_autocheckpoint=0")
        db.execute("INSERT OR REPLACE INTO meta VALUES ('note', '\"in the log\"')")
        db.commit()
        # Copied while open: a log a killed trace would leave (closing would checkpoint it).
        shutil.copyfile(f"{path}-wal", tmp_path / "kept-wal")
        db.close()
        shutil.copyfile(tmp_path / "kept-wal", f"{path}-wal")
        assert Path(f"{path}-wal").stat().st_size > 0
    for name in os.listdir(directory):
        os.chown(directory / name, NOBODY, NOBODY)
    return path


def victim(tmp_path: Path) -> Path:
    path = tmp_path / "roots-file"
    path.write_bytes(b"root's own data\n")
    return path


def refused_in_one_line(path: Path, words: str) -> None:
    with pytest.raises(UserError) as caught:
        open_session(path)
    message = str(caught.value)
    assert caught.value.exit_code == 2 and "\n" not in message, message
    assert f"{path}-wal" in message and words in message, message


def test_a_wal_that_is_a_link_is_refused(tmp_path: Path) -> None:
    path = theirs(tmp_path)
    target = victim(tmp_path)
    os.symlink(target, f"{path}-wal")
    refused_in_one_line(path, "is a symbolic link")
    assert target.read_bytes() == b"root's own data\n"


def test_a_wal_and_shm_that_are_links_on_the_command_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """What a user saw: `diff` said "internal error (Refused: is a symbolic link...)"."""
    path = theirs(tmp_path)
    target, shm_target = victim(tmp_path), tmp_path / "roots-other"
    shm_target.write_bytes(b"x")
    os.symlink(target, f"{path}-wal")
    os.symlink(shm_target, f"{path}-shm")
    other = write_session(tmp_path / "b.sikte.db", RUN_B)
    assert main(["diff", str(path), str(other), "--json"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "internal error" not in err, err
    assert "-wal is a symbolic link" in err
    assert target.read_bytes() == b"root's own data\n" and shm_target.read_bytes() == b"x"


def test_a_wal_that_is_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    path = theirs(tmp_path)
    os.mkfifo(f"{path}-wal")
    refused_in_one_line(path, "FIFO")


def test_a_real_wal_with_a_linked_shm_is_read_from_a_copy(tmp_path: Path) -> None:
    """SQLite will not follow the -shm link, so both files are read from a private copy:
    the log's newest data is there."""
    path = theirs(tmp_path, wal=True)
    shm_target = tmp_path / "roots-other"
    shm_target.write_bytes(b"x")
    os.symlink(shm_target, f"{path}-shm")
    assert open_session(path).meta["note"] == "in the log"
    assert shm_target.read_bytes() == b"x"


def test_the_copy_is_bounded_by_the_room_for_it(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A sparse -wal can claim terabytes; the copy is refused when there is not room."""
    path = theirs(tmp_path, wal=True)
    os.symlink(tmp_path / "nowhere", f"{path}-shm")
    with open(f"{path}-wal", "r+b") as wal:
        wal.truncate(1 << 40)  # sparse: takes no room on the disk
    monkeypatch.setattr(journal_reader.shutil, "disk_usage",
                        lambda _: shutil._ntuple_diskusage(1 << 41, 1 << 39, 1 << 39))
    refused_in_one_line(path, "more than the")
