"""The process picker: a live process list to choose what to trace, with fuzzy filtering,
sorting, multi-select, and a dialog to launch a command instead."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from textual import on, work
from textual.app import ComposeResult
from textual.fuzzy import Matcher
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from tracing.display_text import join_command, sanitize
from tracing.errors import UserError
from tracing.proclist import ProcessEntry
from tracing.targets import check_pid
from tracing.units import format_bytes
from tui.actions import bindings_for
from tui.dialogs import RunCommand
from tui.messages import ProcessesListed
from tui.rows import Column, Row
from tui.table import KeyedTable
from tui.text import error_line
from tui.widgets import DataInput

REFRESH_S = 2.0

COLUMNS = (
    Column("selected", "✓", False, 1),
    Column("pid", "PID"),
    Column("user", "user", False, 10),
    Column("cpu", "CPU%", True, 6),
    Column("rss", "RSS", True, 7),
    Column("threads", "thr", True, 5),
    Column("started", "started", False, 7),
    Column("command", "command", False, 200),
)
COMMAND_LIMIT = 4096  # characters of a command line kept for the picker (it shows ~200)
SORTABLE = [c.key for c in COLUMNS if c.key != "selected"]

Lister = Callable[[], list[ProcessEntry]]


def format_started(ts: float, now: float) -> str:
    local = time.localtime(ts)
    if now - ts < 86400:
        return time.strftime("%H:%M", local)
    return time.strftime("%b%d", local)


def process_rows(entries: Sequence[ProcessEntry], query: str, selected: set[int],
                 sort: str, reverse: bool, now: float) -> list[Row]:
    """The picker's rows: fuzzy-filtered over name, command line, user and pid; sorted.
    Names, users and command lines are other users' text: shown sanitized, on one line."""
    matcher = Matcher(query) if query else None
    rows = []
    for e in entries:
        name, user = sanitize(e.name), sanitize(e.user)
        command = join_command(e.cmdline, COMMAND_LIMIT) or f"[{name}]"
        # Matched as shown: what the user can type is what they see.
        if matcher is not None and matcher.match(f"{name} {command} {user} {e.pid}") <= 0:
            continue
        values = {"selected": e.pid in selected, "pid": e.pid, "user": e.user,
                  "cpu": e.cpu_pct, "rss": e.rss, "threads": e.threads,
                  "started": e.create_time, "command": command}
        cells = {"selected": "✓" if e.pid in selected else " ", "pid": str(e.pid),
                 "user": user, "cpu": f"{e.cpu_pct:.1f}",
                 "rss": format_bytes(e.rss),
                 "threads": str(e.threads), "started": format_started(e.create_time, now),
                 "command": command}
        rows.append(Row(str(e.pid), values, cells))
    rows.sort(key=lambda r: (r.values[sort], r.values["pid"]), reverse=reverse)
    return rows


class PickerScreen(Screen):
    ACTION_SCREEN = "picker"
    BINDINGS = bindings_for("picker")

    def __init__(self, lister: Lister, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.lister = lister
        self.clock = clock
        self.entries: list[ProcessEntry] = []
        self.selected: set[int] = set()
        self.sort_column = "cpu"
        self.sort_reverse = True

    def compose(self) -> ComposeResult:
        yield Static("[b]sikte-tui[/b] ▸ pick processes to trace (Space selects, Enter traces, "
                     "n launches a command)", id="picker-title")
        yield DataInput(placeholder="/ to filter: name, command line, user or PID (fuzzy)",
                        id="picker-filter", compact=True)
        yield KeyedTable(id="processes")
        yield Static("", id="notice")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(KeyedTable)
        table.set_sort(self.sort_column, self.sort_reverse)
        table.set_columns(COLUMNS)
        table.focus()
        self.refresh_list()
        self.set_interval(REFRESH_S, self.refresh_list)

    @work(thread=True, exclusive=True, group="proclist")
    def refresh_list(self) -> None:
        self.post_message(ProcessesListed(self.lister()))

    def on_processes_listed(self, message: ProcessesListed) -> None:
        self.entries = message.processes
        alive = {e.pid for e in self.entries}
        self.selected &= alive
        self._render_rows()

    def _render_rows(self) -> None:
        query = self.query_one("#picker-filter", Input).value.strip()
        rows = process_rows(self.entries, query, self.selected, self.sort_column,
                            self.sort_reverse, self.clock())
        with self.app.batch_update():
            self.query_one(KeyedTable).update_rows(rows)
            title = f"{len(rows)} of {len(self.entries)} processes"
            if self.selected:
                title += f" · selected: {', '.join(map(str, sorted(self.selected)))}"
            self.query_one("#picker-title", Static).update(
                f"[b]sikte-tui[/b] ▸ pick processes to trace · {title}")

    # -- filter -----------------------------------------------------------------------------

    def action_filter(self) -> None:
        self.set_focus(self.query_one("#picker-filter", Input))  # at once: see LiveScreen

    @on(Input.Changed, "#picker-filter")
    def _filter_changed(self, _event: Input.Changed) -> None:
        self._render_rows()

    @on(Input.Submitted, "#picker-filter")
    def _filter_done(self, _event: Input.Submitted) -> None:
        self.query_one(KeyedTable).focus()

    def on_key(self, event) -> None:
        bar = self.query_one("#picker-filter", Input)
        if event.key == "escape" and bar.has_focus:
            event.stop()
            bar.value = ""
            self.query_one(KeyedTable).focus()

    # -- selection and sorting --------------------------------------------------------------

    def _cursor_pid(self) -> int | None:
        key = self.query_one(KeyedTable).cursor_key
        return None if key is None else int(key)

    def action_toggle_select(self) -> None:
        pid = self._cursor_pid()
        if pid is None:
            return
        self.selected ^= {pid}
        self._render_rows()
        self.query_one(KeyedTable).action_cursor(1)

    def _set_sort(self, column: str, reverse: bool | None = None) -> None:
        numeric = next(c.numeric for c in COLUMNS if c.key == column)
        self.sort_column = column
        self.sort_reverse = numeric if reverse is None else reverse
        self.query_one(KeyedTable).set_sort(column, self.sort_reverse)
        self._render_rows()

    def action_sort_next(self) -> None:
        self._set_sort(SORTABLE[(SORTABLE.index(self.sort_column) + 1) % len(SORTABLE)])

    def action_sort_prev(self) -> None:
        self._set_sort(SORTABLE[(SORTABLE.index(self.sort_column) - 1) % len(SORTABLE)])

    def action_sort_invert(self) -> None:
        self._set_sort(self.sort_column, not self.sort_reverse)

    @on(KeyedTable.HeaderClicked)
    def _header_clicked(self, event: KeyedTable.HeaderClicked) -> None:
        column = event.column
        if column in SORTABLE:
            if column == self.sort_column:
                self.action_sort_invert()
            else:
                self._set_sort(column)

    def action_refresh(self) -> None:
        self.refresh_list()

    # -- starting a trace -------------------------------------------------------------------

    def action_trace(self) -> None:
        pids = sorted(self.selected) or [p for p in [self._cursor_pid()] if p is not None]
        if not pids:
            return
        try:
            for pid in pids:
                check_pid(pid)
        except UserError as err:
            notice = self.query_one("#notice", Static)
            notice.update(error_line(err))
            notice.add_class("error")
            self.selected.discard(pid)
            self.refresh_list()
            return
        self.app.start_trace(pids=tuple(pids))

    def action_run_command(self) -> None:
        def launched(result: tuple[tuple[str, ...], bool] | None) -> None:
            if result is not None:
                argv, follow = result
                self.app.start_trace(command=argv, follow=follow)

        self.app.push_screen(RunCommand(), launched)

    def action_help(self) -> None:
        self.app.action_show_help()

    def action_quit(self) -> None:
        self.app.request_quit()
