"""The lines printed once the terminal is back (cli/interactive_cmd.py) and record's words
for a journal that fell back to memory (cli/record_cmd.py)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from cli.interactive_cmd import exit_lines
from cli.record_cmd import disk_failure_line


def trace(saved: str | None) -> SimpleNamespace:
    return SimpleNamespace(saved_line=lambda: saved)


def app(**values: object) -> SimpleNamespace:
    return SimpleNamespace(**{"crash": None, "stop_errors": [], "traces": [],
                              "left_running": (), **values})


def test_every_trace_says_where_its_session_is_and_what_was_left_running():
    lines = exit_lines(app(traces=[trace("session saved in /s/a.sikte.db"), trace(None),
                                   trace("session saved in /s/b.sikte.db")],
                           left_running=(41, 42, 43)))
    assert lines == ["session saved in /s/a.sikte.db", "session saved in /s/b.sikte.db",
                     "left running: PIDs 41 42 43 (the launched command and its children; "
                     "kill 41 42 43 ends them)"]


def test_a_crash_and_a_stop_failure_come_first():
    lines = exit_lines(app(crash="internal error (X: y); details in /tmp/e.txt; please "
                           "report it", stop_errors=["the tracer did not stop within 10 s"],
                           traces=[trace("session saved in /s/a.sikte.db")]))
    assert lines == ["internal error (X: y); details in /tmp/e.txt; please report it",
                     "the tracer did not stop within 10 s", "session saved in /s/a.sikte.db"]


def test_record_words_a_full_disk_for_record():
    journal = SimpleNamespace(
        status="the journal could not be written (database or disk is full); the session "
               "is kept in memory", path=Path("/s/a.sikte.db"))
    line = disk_failure_line(journal, None)
    assert line == ("the journal could not be written (database or disk is full); the "
                    "session is kept in memory until record ends; /s/a.sikte.db holds it up "
                    "to the failure; use --output DIR to save it as Parquet")
    assert " x " not in disk_failure_line(journal, Path("out"))
    assert disk_failure_line(journal, Path("out")).endswith(
        "; --output saves all of it as Parquet")
