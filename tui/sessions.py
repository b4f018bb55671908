"""The saved sessions (`sikte-tui open` with no argument): newest first; Enter opens one."""

from __future__ import annotations

import time
from pathlib import Path

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Static

from tracing.session_list import SessionSummary, list_sessions
from tracing.units import format_bytes
from tui.actions import bindings_for
from tui.rows import Column, Row
from tui.table import KeyedTable
from tui.text import error_line, line
from tui.widgets import format_elapsed

COLUMNS = (
    Column("started", "started", False, 16),
    Column("duration", "length", True, 8),
    Column("state", "state", False, 18),
    Column("size", "size", True, 7),
    Column("targets", "targets", False, 40),
    Column("name", "file", False, 60),
)


def _state(s: SessionSummary) -> str:
    if s.problem:
        return "unreadable"
    if s.exit_code is not None:
        return f"exited ({s.exit_code})"
    return s.state


def session_rows(sessions: list[SessionSummary]) -> list[Row]:
    rows = []
    for s in sessions:
        values = {"started": s.start_wall_time, "duration": s.duration_s, "state": _state(s),
                  "size": s.size_bytes, "targets": ", ".join(s.targets), "name": s.path.name}
        cells = {"started": time.strftime("%Y-%m-%d %H:%M", time.localtime(s.start_wall_time)),
                 "duration": format_elapsed(s.duration_s), "state": _state(s),
                 "size": format_bytes(s.size_bytes),
                 # An unreadable session says why where its targets would be.
                 "targets": f"✗ {s.problem}" if s.problem else values["targets"] or "?",
                 "name": s.path.name}
        rows.append(Row(str(s.path), values, cells))
    return rows


class SessionsScreen(Screen):
    ACTION_SCREEN = "sessions"
    BINDINGS = bindings_for("sessions")

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory
        self.sessions: list[SessionSummary] = []

    def compose(self) -> ComposeResult:
        yield Static("", id="picker-title")
        yield KeyedTable(id="sessions")
        yield Static("", id="notice")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(KeyedTable)
        table.set_columns(COLUMNS)
        table.set_sort("started", True)
        table.focus()
        self.action_refresh()

    def action_refresh(self) -> None:
        self.sessions = list_sessions(self.directory)
        self.query_one(KeyedTable).update_rows(session_rows(self.sessions))
        # The directory's name is data (never markup): built as Text.
        title = line(("sikte-tui", "bold"), f" ▸ saved sessions in {self.directory} · "
                     f"{len(self.sessions)} (Enter opens, newest first)")
        self.query_one("#picker-title", Static).update(title)
        if not self.sessions:
            self._notice(f"no saved sessions in {self.directory}: record one with "
                         "'sudo sikte-tui record -- COMMAND', or give a path: "
                         "sikte-tui open SESSION")

    def _notice(self, text: str) -> None:
        notice = self.query_one("#notice", Static)
        notice.update(error_line(text))  # may quote a file's name or an error: data
        notice.add_class("error")

    def action_open_session(self) -> None:
        key = self.query_one(KeyedTable).cursor_key
        if key is None:
            return
        summary = next((s for s in self.sessions if str(s.path) == key), None)
        if summary is None:  # the list changed under the cursor
            return
        if summary.problem:
            self._notice(f"{summary.path.name}: {summary.problem}")
            return
        self.app.open_stored(summary.path)

    def action_help(self) -> None:
        self.app.action_show_help()

    def action_quit(self) -> None:
        self.app.request_quit()
