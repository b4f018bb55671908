"""A saved session's metadata names the architecture whose syscall tables name its calls.
One this sikte-tui has no tables for (a damaged or hand-made session: "sparc", null, text
with terminal escapes) is refused by the readers in one line, exit 2, for `open`, `export`
and `diff` alike, in a journal or a Parquet directory; it used to pass the checks and fail
later inside the interface ("the interface ended unexpectedly") or the export ("internal
error"). An alias (aarch64, AMD64) reads as its canonical name."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from cli.main import main
from tests.unit.test_diff import RUN_A, RUN_B, write_session
from tracing.errors import UserError
from tracing.session.catalogue import list_sessions
from tracing.session.diff import diff_sessions
from tracing.session.export import export_parquet
from tracing.session.stored import open_session

UNKNOWN = ["sparc", None, "x86_64\x1b[2J", "", 7]


def set_arch(journal: Path, value: object) -> Path:
    db = sqlite3.connect(journal)
    db.execute("UPDATE meta SET value = ? WHERE key = 'arch'", (json.dumps(value),))
    db.commit()
    db.close()
    return journal


def set_parquet_arch(directory: Path, value: object) -> Path:
    doc = json.loads((directory / "session.json").read_text())
    doc["arch"] = value
    (directory / "session.json").write_text(json.dumps(doc))
    return directory


def one_line(err: UserError, path: Path) -> str:
    message = str(err)
    assert err.exit_code == 2 and "\n" not in message and str(path) in message
    assert "\x1b" not in message
    return message


@pytest.mark.parametrize("value", UNKNOWN)
def test_a_journal_naming_an_unknown_architecture_is_refused(tmp_path: Path,
                                                             value: object) -> None:
    path = set_arch(write_session(tmp_path / "s.sikte.db", RUN_A), value)
    with pytest.raises(UserError) as caught:
        open_session(path)
    assert "arch" in one_line(caught.value, path)


@pytest.mark.parametrize("value", UNKNOWN)
def test_a_parquet_session_naming_an_unknown_architecture_is_refused(tmp_path: Path,
                                                                     value: object) -> None:
    session = open_session(write_session(tmp_path / "s.sikte.db", RUN_A))
    directory = set_parquet_arch(export_parquet(session, tmp_path / "pq"), value)
    with pytest.raises(UserError) as caught:
        open_session(directory)
    assert "arch" in one_line(caught.value, directory)


@pytest.mark.parametrize("command", [["open"], ["export", "--output", "OUT"], ["diff", "B"]])
def test_the_commands_say_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              command: list[str]) -> None:
    """`open` reached the interface with such a session and crashed there; `export` was an
    internal error."""
    path = set_arch(write_session(tmp_path / "s.sikte.db", RUN_A), "sparc")
    other = write_session(tmp_path / "b.sikte.db", RUN_B)
    argv = [command[0], str(path)] + [
        str(tmp_path / "out") if a == "OUT" else str(other) if a == "B" else a
        for a in command[1:]]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "internal error" not in err, err
    assert "its metadata's arch is 'sparc'" in err


def test_the_sessions_list_marks_it_unreadable(tmp_path: Path) -> None:
    set_arch(write_session(tmp_path / "s.sikte.db", RUN_A), "sparc")
    [entry] = list_sessions(tmp_path)
    assert entry.state == "unreadable" and "arch" in entry.problem


def test_an_alias_reads_as_its_canonical_name(tmp_path: Path) -> None:
    """Two sessions of one machine, one naming it by an alias, are the same machine to a
    diff (matched by ABI, no note)."""
    a = write_session(tmp_path / "a.sikte.db", RUN_A)
    b = set_arch(write_session(tmp_path / "b.sikte.db", RUN_B), "AMD64")
    assert open_session(b).meta["arch"] == "x86_64"
    diff = diff_sessions(open_session(a), open_session(b), None, None)
    assert diff.by_name is False and diff.notes == ()
