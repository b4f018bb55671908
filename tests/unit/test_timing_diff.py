"""Issue 18: `sikte-tui diff` says when A and B were timed differently (exact against sampled
or off), or both not exactly, in JSON, in the text table and (tracing/session/diff.py's
notes) in the TUI; two exact runs, or older sessions without a mode, get no such note."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from cli.main import main

from .test_diff import RUN_A, RUN_B, diff_of, write_session


def timed(path: Path, timing: str | None) -> Path:
    """The session as one traced with --timing `timing` (None: from before the mode was
    kept) would have it in its metadata."""
    with sqlite3.connect(path) as db:
        if timing is None:
            db.execute("DELETE FROM meta WHERE key = 'timing'")
        else:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('timing', ?)", (json.dumps(timing),))
    db.close()
    return path


def runs(tmp_path: Path, a: str | None, b: str | None) -> tuple[Path, Path]:
    return (timed(write_session(tmp_path / "a.sikte.db", RUN_A), a),
            timed(write_session(tmp_path / "b.sikte.db", RUN_B), b))


def timing_notes(doc: dict[str, object]) -> list[str]:
    return [n for n in doc["notes"] if "timed" in n]  # type: ignore[attr-defined]


@pytest.mark.parametrize("a, b, note", [
    ("exact", "sampled", "timed differently: A exact, B sampled; the times of a sampled "
     "side are estimates, compare them loosely (counts and errors are exact on both)"),
    ("off", "exact", "timed differently: A off, B exact; a side traced with timing off "
     "has no times: compare counts and errors"),
    ("sampled", "off", "timed differently: A sampled, B off; the times of a sampled side "
     "are estimates, compare them loosely (counts and errors are exact on both); a side "
     "traced with timing off has no times: compare counts and errors"),
    ("sampled", "sampled", "both sides timed sampled: their times are estimates (counts and "
     "errors are exact)"),
    ("off", "off", "both sides timed off: no times to compare, counts and errors only"),
])
def test_a_note_when_the_sides_were_not_both_timed_exactly(tmp_path: Path, a: str, b: str,
                                                           note: str) -> None:
    doc = diff_of(*runs(tmp_path, a, b))
    assert timing_notes(doc) == [note]
    assert doc["a"]["timing"] == a and doc["b"]["timing"] == b  # type: ignore[index]


@pytest.mark.parametrize("a, b", [("exact", "exact"), (None, "exact"), (None, None)])
def test_no_note_when_both_were_timed_exactly(tmp_path: Path, a: str | None,
                                              b: str | None) -> None:
    doc = diff_of(*runs(tmp_path, a, b))
    assert timing_notes(doc) == []
    assert doc["a"]["timing"] == "exact"  # type: ignore[index]


def test_the_text_table_shows_the_note(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    a, b = runs(tmp_path, "exact", "off")
    assert main(["diff", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert ("note: timed differently: A exact, B off; a side traced with timing off has no "
            "times: compare counts and errors") in out.splitlines()
