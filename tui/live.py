"""The live view: header, syscall table, process tree, command output and the filter bar.

Snapshots arrive as messages from the source's thread; the newest is applied at most four
times a second, so keys stay responsive at any event rate.
"""

from __future__ import annotations

from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Static

from tracing.boundary.display_text import sanitize
from tracing.errors import UserError
from tracing.model.bpf_cost import header_between
from tracing.model.stats import Snapshot, TraceState
from tracing.query.syscall_filter import ERRORS_ONLY, Filter, parse_filter
from tracing.session.window import Window
from tracing.sources import SnapshotSource
from tui.actions import bindings_for
from tui.charts import RateStrip
from tui.columns import GROUPINGS, Grouping, columns
from tui.connection_rows import scope_of_row
from tui.connections import ConnectionsScreen
from tui.event_log import EventLogScreen
from tui.files import FilesScreen
from tui.filter_bar import FilterBar
from tui.footer import KeyFooter
from tui.inflight import InFlightScreen
from tui.messages import CommandOutput, SnapshotReady, SourceFailed, SourceStarted
from tui.navigation import navigator
from tui.rows import DEFAULT_SORT, RowBuilder
from tui.samples import SamplesScreen
from tui.screens import FilterKey, SortKeys
from tui.session import SessionView
from tui.session_dialogs import ExportDialog, TimelineBar, WindowDialog
from tui.sessions import SessionsScreen
from tui.table import KeyedTable
from tui.widgets import OutputPanel, ProcessTreePanel, StatusHeader, alert_line
from tui.window_menu import WindowChoice, WindowMenu

APPLY_INTERVAL_S = 0.25  # at most 4 snapshots rendered per second


class LiveScreen(FilterKey, SortKeys, Screen[None]):
    ACTION_SCREEN = "live"
    BINDINGS = bindings_for("live")

    def __init__(self, source: SnapshotSource, session: SessionView) -> None:
        super().__init__()
        self.source = source
        self.session = session
        self.grouping = GROUPINGS[0]
        self.sort_column = DEFAULT_SORT
        self.sort_reverse = True
        self.filter: Filter | None = None
        self.paused = False
        self.state: TraceState = TraceState.STARTING
        self._pending: Snapshot | None = None
        self._shown: Snapshot | None = None
        self._cpu_mark: tuple[float, float] | None = None  # (wall, tracer cpu) last shown
        # Issue 18: the BPF programs' kernel cost, from snapshot to snapshot like the CPU.
        self.bpf_cost: tuple[str, str] | None = None  # long, short
        self._bpf_mark: Snapshot | None = None
        self.tracer_cpu_pct: float | None = None
        self._rows = RowBuilder()
        self.failure: SourceFailed | None = None

    def compose(self) -> ComposeResult:
        yield StatusHeader(id="status")
        yield RateStrip(id="rates")  # calls/s and errors/s over time (tui/charts.py)
        yield TimelineBar(id="timeline")
        yield Static("", id="notice")
        with Horizontal(id="main"):
            yield KeyedTable(id="syscalls")
            yield ProcessTreePanel("processes", id="tree")
        yield OutputPanel(id="output")
        yield FilterBar(parse_filter, placeholder="/ filter: read  pid=42  errors>0  p99>1ms  "
                        "!name~^mmap  (Esc clears)", input_id="filter", message_id="filter-message",
                        keep=self._keep_filter, redraw=self._rerender, leave=self._focus_table,
                        clear=self.action_clear_filter)
        yield KeyFooter()

    def on_mount(self) -> None:
        table = self.query_one(KeyedTable)
        table.set_sort(self.sort_column, self.sort_reverse)
        table.set_columns(columns(self.grouping))
        table.focus()  # not the hidden tree: Enter and the footer's keys are the table's
        self.query_one("#tree").display = False
        self.query_one("#output").display = False
        self.query_one(OutputPanel).explain_empty(self.source)
        self.query_one(TimelineBar).display = self.source.capabilities.saved is not None
        self.set_interval(APPLY_INTERVAL_S, self._apply_pending)
        self._render_header()
        self._start_source()

    # -- the source -------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="source")
    def _start_source(self) -> None:
        # Loading the eBPF program takes about a second: never on the UI thread.
        try:
            self.source.start(lambda s: self.post_message(SnapshotReady(s)),
                              lambda text: self.post_message(CommandOutput(text)),
                              lambda why: self.post_message(SourceFailed(why, started=True)))
        except UserError as err:
            self.post_message(SourceFailed(str(err)))
            return
        self.post_message(SourceStarted())

    def on_source_started(self, _message: SourceStarted) -> None:
        if self.state == TraceState.STARTING:
            self.state = TraceState.TRACING
            self._render_header()

    def on_source_failed(self, message: SourceFailed) -> None:
        self.state = TraceState.FAILED  # and it stays so: the table keeps what was last seen
        self.failure = message
        self._render_header()

    def on_snapshot_ready(self, message: SnapshotReady) -> None:
        # Every snapshot is counted in (cheap: what changed); only the newest is rendered.
        self.session.add(message.snapshot)
        self._measure_tracer_cpu(message.snapshot)
        for line in message.snapshot.notices:  # a lookup that failed: said once
            self.notify(sanitize(line), markup=False, severity="warning", timeout=10)
        shown = self.session.latest  # the snapshot, or with a live window its stats
        assert shown is not None
        if not self.paused:
            self._rows.feed(shown, self.session.window.cutoff_ns)
        else:
            self._rows.skip(shown)  # its events still count (expected errors)
        self._pending = shown

    def on_command_output(self, message: CommandOutput) -> None:
        self.query_one(OutputPanel).feed(message.text)

    def _apply_pending(self) -> None:
        snapshot, self._pending = self._pending, None
        if snapshot is None:
            return
        if self.failure is None:  # a snapshot sent just before the failure does not hide it
            self.state = snapshot.state
        if self.paused:
            self._render_header()
            return
        self._shown = snapshot
        with self.app.batch_update():
            self._render_header()
            self._render_table()
            self._render_timeline()
            if self.query_one("#tree").display:
                self.query_one(ProcessTreePanel).show(dict(snapshot.processes))
        self.session.notify_screens(self.app)

    def _measure_tracer_cpu(self, snapshot: Snapshot) -> None:
        """From one snapshot to the next as they arrive (not as they are drawn), so the
        figure does not depend on rendering."""
        mark = (snapshot.ts_ns / 1e9, snapshot.tracer_cpu_s)
        if self._cpu_mark is not None and mark[0] > self._cpu_mark[0]:
            used = mark[1] - self._cpu_mark[1]
            self.tracer_cpu_pct = 100 * used / (mark[0] - self._cpu_mark[0])
        self._cpu_mark = mark
        self.bpf_cost = header_between(self._bpf_mark, snapshot)
        self._bpf_mark = snapshot

    # -- rendering --------------------------------------------------------------------------

    @property
    def display_state(self) -> str:
        latest = self.session.latest
        state: str = self.state
        if state == TraceState.EXITED:
            ended = latest.target_exit if latest else None
            state = f"target exited ({ended})" if ended is not None else "targets exited"
        if self.paused:
            return "paused" if state == TraceState.TRACING else f"{state} · paused"
        return state

    def _render_header(self) -> None:
        snapshot = self.session.latest
        calls, rate = self._rows.total_calls, self._rows.total_rate
        arrow = "▼" if self.sort_reverse else "▲"
        sort = self._rows.sorted_by(self.sort_column)  # timing off: time columns sort by calls
        view = f"{self.grouping.label} · sort {sort.removesuffix('_ns')} {arrow}"
        if self.filter is not None and not self.filter.is_empty:
            view += f" · filter: {self.filter.text}"
        alert = alert_line(self.failure, self.source)
        window = self.session.window
        self.query_one(StatusHeader).show(self.source.title, snapshot, self.display_state,
                                          calls, rate, self.tracer_cpu_pct, view,
                                          self.session.samples.total, alert,
                                          window=None if window.span_s is None
                                          else window.label(), bpf=self.bpf_cost)

    def _render_table(self) -> None:
        if self._shown is None:
            return
        self.query_one(KeyedTable).update_rows(
            self._rows.rows(self.grouping, self.sort_column, self.sort_reverse))

    def _render_timeline(self) -> None:
        self.query_one(RateStrip).show(self.session, self.source)
        saved = self.source.capabilities.saved
        if saved is not None:
            self.query_one(TimelineBar).show(saved.session, saved.window)

    def _rerender(self) -> None:
        """After a change of filter: rebuild the rows from the shown snapshot."""
        self._rows.set_filter(self.filter)
        self._render_now()

    def _render_now(self) -> None:
        with self.app.batch_update():
            self._render_header()
            self.query_one(RateStrip).show(self.session, self.source)  # a new window
            self._render_table()

    # -- actions ----------------------------------------------------------------------------

    def action_filter(self) -> None:
        self.query_one(FilterBar).open()

    def action_clear_filter(self) -> None:
        below = self.app.screen_stack[-2:-1]
        if self.filter is None and below and isinstance(below[0], SessionsScreen):
            # Nothing to clear in a session opened from the list: Escape goes back to it.
            self.app.pop_screen()
            return
        bar = self.query_one(FilterBar)
        bar.input.value = ""
        bar.forget()
        self.filter = None
        bar.show_message("")
        self.query_one(KeyedTable).focus()
        self._rerender()

    def _keep_filter(self, flt: Filter) -> None:
        self.filter = flt

    def _focus_table(self) -> None:
        self.set_focus(self.query_one(KeyedTable))  # now, not later: the next key is the table's

    def action_errors_only(self) -> None:
        current = self.filter.text if self.filter else ""
        terms = current.split()
        terms = [t for t in terms if t != ERRORS_ONLY] if ERRORS_ONLY in terms else [
            *terms, ERRORS_ONLY]
        text = " ".join(terms)
        self.query_one(FilterBar).set_text(text)

    def action_cycle_grouping(self) -> None:
        index = GROUPINGS.index(self.grouping)
        self._set_grouping(GROUPINGS[(index + 1) % len(GROUPINGS)])

    def _set_grouping(self, grouping: Grouping) -> None:
        self.grouping = grouping
        if self.sort_column not in {c.key for c in columns(grouping)}:
            self.sort_column, self.sort_reverse = DEFAULT_SORT, True
        table = self.query_one(KeyedTable)
        table.set_sort(self.sort_column, self.sort_reverse)
        table.set_columns(columns(grouping))
        self._render_now()

    def _set_sort(self, column: str, reverse: bool | None = None) -> None:
        numeric = next(c.numeric for c in columns(self.grouping) if c.key == column)
        self.sort_column = column
        # Numbers read best largest first, names alphabetically.
        self.sort_reverse = numeric if reverse is None else reverse
        self.query_one(KeyedTable).set_sort(column, self.sort_reverse)
        self._render_now()

    def _step_sort(self, step: int) -> None:
        keys = [c.key for c in columns(self.grouping)]
        self._set_sort(keys[(keys.index(self.sort_column) + step) % len(keys)])

    @on(KeyedTable.HeaderClicked)
    def _header_clicked(self, event: KeyedTable.HeaderClicked) -> None:
        column = event.column
        if column == self.sort_column:
            self.action_sort_invert()
        else:
            self._set_sort(column)

    def action_toggle_tree(self) -> None:
        tree = self.query_one(ProcessTreePanel)
        tree.display = not tree.display
        if tree.display and self.session.latest is not None:
            tree.show(dict(self.session.latest.processes))

    def action_toggle_output(self) -> None:
        panel = self.query_one(OutputPanel)
        panel.display = not panel.display

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        if not self.paused and self.session.latest is not None:
            # The tables froze; catch up from the newest totals in one rebuild.
            self._rows.feed(self.session.latest, self.session.window.cutoff_ns)
            self._pending = self.session.latest
        self._render_header()

    def action_reset(self) -> None:
        saved = self.source.capabilities.saved is not None
        self.source.reset()
        self.session.reset(keep_counting=not saved)
        self.notify("showing the whole session" if saved else "counts reset to zero")

    def action_choose_window(self) -> None:
        saved = self.source.capabilities.saved
        if saved is None:  # live: the last few seconds or minutes, or since the start
            self.app.push_screen(WindowMenu(self.session.window.span_s), self._span_chosen)
            return
        self.app.push_screen(WindowDialog(saved.session, saved.window), self._window_chosen)

    def _span_chosen(self, choice: WindowChoice | None) -> None:
        """Apply a live window at once: the rows are rebuilt from the newest snapshot."""
        if choice is None or choice.span_s == self.session.window.span_s:
            return
        self.session.set_span(choice.span_s)
        shown = self.session.latest
        if shown is not None:  # paused too: the choice is what the person asked to see
            self._rows.feed(shown, self.session.window.cutoff_ns)
            self._shown = shown
        self._render_now()
        self.session.notify_screens(self.app)

    def _window_chosen(self, window: Window | None) -> None:
        saved = self.source.capabilities.saved
        if window is not None and saved is not None:
            self.session.reset(keep_counting=False)
            saved.set_window(window)

    def action_export(self) -> None:
        self.app.push_screen(ExportDialog(self.source.stored, default_export_path(self.source)),
                             self._exported)

    def _exported(self, path: Path | None) -> None:
        if path is not None:
            self.notify(f"exported to {sanitize(str(path))}", markup=False)

    def action_drill(self) -> None:
        row_key = self.query_one(KeyedTable).cursor_key
        if self._shown is None or row_key is None:
            return
        parts = row_key
        key = self.grouping.key
        if key == "syscall":
            navigator(self.app).open_detail(str(parts[0]), None, int(parts[1]))
        elif key == "pid_syscall":  # (pid, name, abi): the name of one ABI's calls
            navigator(self.app).open_detail(str(parts[1]), int(parts[0]), int(parts[2]))
        elif key == "comm":  # the syscalls of every process of that name
            self._set_grouping(GROUPINGS[0])
            self.query_one(FilterBar).set_text(comm_term(str(parts[0])))
        else:  # a process or thread row: show its syscalls
            self._set_grouping(GROUPINGS[0])
            self.query_one(FilterBar).set_text(
                f"pid={parts[0]}" + (f" tid={parts[1]}" if key == "thread" else ""))

    def action_samples(self) -> None:
        self.app.push_screen(SamplesScreen(self.session))

    def action_connections(self) -> None:
        """The connections of the selected row: a process's (or thread's process), outbound
        ones for a connect row, inbound ones for accept/accept4; all for other rows."""
        scope = scope_of_row(self.grouping.key, self.query_one(KeyedTable).cursor_key)
        self.app.push_screen(ConnectionsScreen(self.session, scope))

    def action_event_log(self) -> None:
        self.app.push_screen(EventLogScreen(self.session, self.source))

    def action_files(self) -> None:
        self.app.push_screen(FilesScreen(self.session, self.source))

    def action_in_flight(self) -> None:
        self.app.push_screen(InFlightScreen(self.session, self.source))

    def action_help(self) -> None:
        navigator(self.app).action_show_help()

    def action_quit(self) -> None:
        navigator(self.app).request_quit()

    def action_new_trace(self) -> None:
        navigator(self.app).request_new_trace()


def comm_term(comm: str) -> str:
    """The filter term that picks one command name, quoted when it holds a space or a
    character the filter language reads (`comm="my prog"`)."""
    if comm and not any(c.isspace() or c in "=!<>~\"'" for c in comm):
        return f"comm={comm}"
    quote = "'" if '"' in comm else '"'
    return f"comm={quote}{comm}{quote}"


def default_export_path(source: SnapshotSource) -> Path:
    """Beside the user, named after the session: ./20261123-101500-ls-parquet"""
    stem = source.session_name()
    if stem is None:  # a replay, or a journal kept in memory only
        stem = "sikte-session"
    return Path.cwd() / f"{stem.removesuffix('.sikte.db')}-parquet"
