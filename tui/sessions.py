"""The saved sessions (`sikte-tui open` with no argument): newest first; Enter opens one,
`d` deletes one after asking (through tracing/session/retention.py: only a sikte-tui session of the
user, no link followed, never one another sikte-tui has open)."""

from __future__ import annotations

import time
from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Static

from tracing.boundary.userfiles import invoking_user, open_dir
from tracing.errors import UserError
from tracing.model.units import format_bytes
from tracing.session.catalogue import SessionSummary, list_sessions
from tracing.session.retention import delete_session
from tui.actions import bindings_for
from tui.columns import Column, Row
from tui.footer import KeyFooter
from tui.navigation import navigator
from tui.table import KeyedTable
from tui.text import data, error_line, line
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


def _started(s: SessionSummary) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(s.start_wall_time))


def _length(s: SessionSummary) -> str:
    # A trace killed before its first tick has no length to show.
    return format_elapsed(s.duration_s) if s.has_data else "?"


def session_rows(sessions: list[SessionSummary]) -> list[Row]:
    rows = []
    for s in sessions:
        targets = ", ".join(s.targets)
        values = {"started": s.start_wall_time, "duration": s.duration_s, "state": _state(s),
                  "size": s.size_bytes, "targets": targets, "name": s.path.name}
        cells = {"started": _started(s), "duration": _length(s), "state": _state(s),
                 "size": format_bytes(s.size_bytes),
                 # An unreadable session says why where its targets would be.
                 "targets": f"✗ {s.problem}" if s.problem else targets or "?",
                 "name": s.path.name}
        rows.append(Row((str(s.path),), values, cells))
    return rows


class SessionsScreen(Screen[None]):
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
        yield KeyFooter()

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
        size = format_bytes(sum(s.size_bytes for s in self.sessions))
        title = line(("sikte-tui", "bold"), f" ▸ saved sessions in {self.directory} · "
                     f"{len(self.sessions)}, {size} (Enter opens, d deletes, newest first)")
        self.query_one("#picker-title", Static).update(title)
        if not self.sessions:
            self._notice(f"no saved sessions in {self.directory}: record one with "
                         "'sudo sikte-tui record -- COMMAND', or give a path: "
                         "sikte-tui open SESSION")

    def _notice(self, text: str) -> None:
        notice = self.query_one("#notice", Static)
        notice.update(error_line(text))  # may quote a file's name or an error: data
        notice.add_class("error")

    def _selected(self) -> SessionSummary | None:
        key = self.query_one(KeyedTable).cursor_key
        if key is None:
            return None
        # None when the list changed under the cursor
        return next((s for s in self.sessions if (str(s.path),) == key), None)

    def action_open_session(self) -> None:
        summary = self._selected()
        if summary is None:
            return
        if summary.problem:
            self._notice(f"{summary.path.name}: {summary.problem}")
            return
        navigator(self.app).open_stored(summary.path)

    def action_delete_session(self) -> None:
        summary = self._selected()
        if summary is None:
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._delete(summary)

        self.app.push_screen(ConfirmDelete(summary), confirmed)

    def _delete(self, summary: SessionSummary) -> None:
        try:
            with open_dir(summary.path.parent, invoking_user()) as directory:
                gone = delete_session(directory, summary.path.name)
        except UserError as err:
            self._notice(str(err))
            return
        except OSError as err:
            self._notice(f"cannot delete {summary.path.name} ({err.strerror or err}); "
                         "nothing was deleted")
            return
        self.action_refresh()
        self.app.notify(f"deleted {summary.path.name} ({format_bytes(gone.size)})",
                        markup=False)  # the name is data

    def action_help(self) -> None:
        navigator(self.app).action_show_help()

    def action_quit(self) -> None:
        navigator(self.app).request_quit()


def _what_goes(s: SessionSummary) -> str:
    if s.path.name.endswith(".sikte.db"):
        return "the journal file and its -wal and -shm files"
    return "the Parquet session directory"


class ConfirmDelete(ModalScreen[bool]):
    """Asks before deleting a saved session, naming it; True to delete."""

    BINDINGS = [("y", "choose(True)", "delete"), ("n", "choose(False)", "keep"),
                ("escape", "choose(False)", "keep")]
    DEFAULT_CSS = """
    ConfirmDelete { align: center middle; }
    ConfirmDelete .question { width: 100%; }
    """

    def __init__(self, summary: SessionSummary) -> None:
        super().__init__()
        self.summary = summary

    def compose(self) -> ComposeResult:
        s = self.summary
        with Vertical(id="dialog"):
            # The file's name and targets are data: Text, never markup.
            yield Static(line("Delete ", (s.path.name, "bold"), "?"), classes="question")
            yield Static(line(f"started {_started(s)} · {_state(s)} · "
                              f"{format_bytes(s.size_bytes)} · ",
                              data(", ".join(s.targets) or "?", limit=200)),
                         classes="question")
            yield Static(f"This deletes {_what_goes(s)}; it cannot be undone.",
                         classes="question", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Delete it (y)", id="delete", variant="error")
                yield Button("Keep it (n, Esc)", id="keep")

    def on_mount(self) -> None:
        self.query_one("#keep", Button).focus()  # Enter keeps: deleting takes a y

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "delete")

    def action_choose(self, delete: bool) -> None:
        self.dismiss(delete)
