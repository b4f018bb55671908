"""The Connections drill-down: the traced processes' TCP connections, one per row or summed
per remote endpoint, filtered with the connection filter language
(tracing.query.connection_filter).

It reads the connections the session keeps (SessionView.connections, the newest state of
each) and redraws when the session gets a new snapshot: open connections' durations grow
with the newest snapshot's clock. Columns are sized to what they hold and, when the
terminal is too narrow for all of them, the least needed go first; the line under the table
describes the selected row in full. What is shown (scope, cells, orders, fitting, the
descriptions) is tui/connection_rows.py's; this module is the screen.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Static

from tracing.model.connections import Connection, RemoteSummary, summarize
from tracing.query.connection_filter import (
    CONNECTION_HELP,
    FAILURES_ONLY,
    ConnectionFilter,
    parse_connection_filter,
)
from tui.actions import bindings_for
from tui.columns import Column, Row, RowKey
from tui.connection_rows import (
    LIST,
    LIST_COLUMNS,
    SUMMARY,
    SUMMARY_COLUMNS,
    ConnectionScope,
    connection_cells,
    connection_key,
    counts_line,
    describe_connection,
    describe_summary,
    endpoint_filter,
    largest_first,
    narrowed,
    shortened,
    sorted_connections,
    sorted_summaries,
    summary_cells,
    summary_key,
    summary_members,
)
from tui.dialogs import HelpScreen, keys_table
from tui.filter_bar import FilterBar
from tui.footer import KeyFooter
from tui.screens import DrillDown, FilterKey, SortKeys, ThrottledRedraw
from tui.session import SessionView
from tui.table import KeyedTable
from tui.text import data, line

SCROLLBAR = 2  # the table's vertical scrollbar, kept free so columns never slide under it


# -- the screens -------------------------------------------------------------------------------


class ConnectionsHelp(HelpScreen):
    """The help screen of the connections view: its keys and its filter language."""

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(Text("Connections: keys", style="bold"))
            yield Static(keys_table("connections"))
            yield Static(Text("\nFilter language (/)", style="bold"))
            yield Static(Text(CONNECTION_HELP))


class ConnectionTable(KeyedTable):
    """A KeyedTable that says when its cursor moves, for the line under it."""

    class CursorMoved(Message):
        pass

    def move_cursor(self, index: int) -> None:
        super().move_cursor(index)
        self.post_message(self.CursorMoved())


class ConnectionsScreen(FilterKey, ThrottledRedraw, SortKeys, DrillDown):
    """TCP connections, newest first, or per remote endpoint (g); / filters them."""

    ACTION_SCREEN = "connections"
    BINDINGS = bindings_for("connections")
    DEFAULT_CSS = """
    ConnectionsScreen #connections-title { height: auto; padding: 0 1; background: $panel; }
    ConnectionsScreen ConnectionTable { height: 1fr; }
    ConnectionsScreen #connections-empty {
        height: 1fr; content-align: center middle; text-align: center; color: $text-muted;
    }
    ConnectionsScreen #connection-selected {
        height: auto; max-height: 2; padding: 0 1; background: $panel;
    }
    """

    def __init__(self, session: SessionView, scope: ConnectionScope | None = None) -> None:
        super().__init__()
        self.session = session
        self.scope = scope or ConnectionScope()
        self.mode = LIST
        self.filter: ConnectionFilter | None = None
        self._sorts = {LIST: ("time", True), SUMMARY: ("connections", True)}
        self._returns: list[tuple[str, str]] = []  # (mode, filter) that Escape goes back to
        self._drawn: tuple[int, int, int] | None = None
        self._shown: dict[RowKey, Connection] = {}  # by row key
        self._summaries: list[RemoteSummary] = []

    # sort_column and sort_reverse (for SortKeys) are the current mode's
    @property
    def sort_column(self) -> str:  # type: ignore[override]
        return self._sorts[self.mode][0]

    @property
    def sort_reverse(self) -> bool:  # type: ignore[override]
        return self._sorts[self.mode][1]

    def compose(self) -> ComposeResult:
        yield Static(id="connections-title")
        yield ConnectionTable(id="connections")
        yield ConnectionTable(id="remotes")
        yield Static(id="connections-empty")
        yield Static(id="connection-selected")
        yield FilterBar(parse_connection_filter,
                        placeholder="/ filter: curl  port=443  addr=10.0.0.0/8  "
                        "result=failed  (Esc clears)", input_id="connections-filter",
                        message_id="connections-filter-message", keep=self._keep_filter,
                        redraw=self._redraw, leave=self._focus_table, clear=self._clear_filter)
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#remotes").display = False
        self.query_one("#connections-empty").display = False
        self._table().focus()
        self.redraw_from_session()

    def on_screen_resume(self) -> None:
        self.redraw_from_session()

    def on_resize(self) -> None:
        self._redraw()

    # -- drawing ----------------------------------------------------------------------------

    def _table(self) -> ConnectionTable:
        return self.query_one("#remotes" if self.mode == SUMMARY else "#connections",
                              ConnectionTable)

    @property
    def now_ns(self) -> int:
        latest = self.session.latest
        return latest.ts_ns if latest is not None else 0

    def _session_state(self) -> tuple[int, int, int]:
        latest = self.session.latest
        return (self.session.connections.version, latest.seq if latest else -1,
                latest.epoch if latest else -1)

    def redraw_from_session(self) -> None:
        """Redraw when the connections or the clock (open ones' durations) moved on."""
        if self._session_state() != self._drawn:
            self._redraw()

    def _redraw(self) -> None:
        self._drawn = self._session_state()
        in_scope = [c for c in self.session.connections if self.scope.matches(c)]
        flt, now = self.filter, self.now_ns
        shown = in_scope if flt is None or flt.is_empty else [
            c for c in in_scope if flt.matches(c, now)]
        self._shown = {connection_key(c): c for c in shown}
        with self.app.batch_update():
            if self.mode == SUMMARY:
                self._draw_summary(shown)
            else:
                self._draw_list(shown)
            self._draw_title(shown, len(in_scope))
            self._draw_empty(bool(shown), bool(in_scope))
            self._draw_selected()

    def _available(self) -> int:
        return max((self._table().size.width or self.app.size.width) - SCROLLBAR, 20)

    def _show_rows(self, table: KeyedTable, columns: Sequence[Column],
                   rows: list[Row]) -> None:
        """New columns (widths follow the cells) keep the cursor on its row, although
        set_columns forgets the rows."""
        key = None
        if tuple(columns) != table.columns:
            key = table.cursor_key
            table.set_columns(columns)
            table.set_sort(self.sort_column, self.sort_reverse)
        table.update_rows(rows)
        index = next((i for i, r in enumerate(rows) if r.key == key), None)
        if key is not None and index is not None:
            table.move_cursor(index)

    def _draw_list(self, shown: list[Connection]) -> None:
        now, latest = self.now_ns, self.session.latest
        ordered = sorted_connections(shown, now, self.sort_column, self.sort_reverse)
        columns, cells = narrowed(LIST_COLUMNS, [connection_cells(c, now, latest)
                                                 for c in ordered], self._available())
        self._show_rows(self._table(), columns, [
            Row(connection_key(c), {}, shortened(row, columns))
            for c, row in zip(ordered, cells, strict=True)])

    def _draw_summary(self, shown: list[Connection]) -> None:
        self._summaries = sorted_summaries(summarize(shown), self.sort_column,
                                           self.sort_reverse)
        columns, cells = narrowed(SUMMARY_COLUMNS, [summary_cells(s) for s in self._summaries],
                                  self._available(), steps=())
        self._show_rows(self._table(), columns, [
            Row(summary_key(s), {}, shortened(row, columns))
            for s, row in zip(self._summaries, cells, strict=True)])

    @property
    def tcp(self) -> bool:
        """Whether the trace follows TCP connections (the engine says, in each snapshot)."""
        latest = self.session.latest
        return latest is None or latest.tcp_monitored

    def _draw_title(self, shown: list[Connection], total: int) -> None:
        latest = self.session.latest
        pid = self.scope.pid
        info = latest.processes.get(pid) if latest is not None and pid is not None else None
        filtered = self.filter is not None and not self.filter.is_empty
        arrow = "▼" if self.sort_reverse else "▲"
        parts: list[str | Text] = [counts_line(shown, total, filtered)]
        if self.mode == SUMMARY:
            parts.append(f"by remote endpoint ({len(self._summaries):,})")
        if not self.tcp:
            parts.append(Text("TCP monitoring off", style="bold"))
        parts += [self.scope.label(info.comm if info else ""),  # the comm: outside text
                  f"sort {self.sort_column} {arrow}"]
        self.query_one("#connections-title", Static).update(
            line(("TCP connections", "bold"), ": ", *_joined(parts, " · ")))

    def _draw_empty(self, any_shown: bool, any_in_scope: bool) -> None:
        empty = self.query_one("#connections-empty", Static)
        table = self._table()
        table.display = any_shown
        empty.display = not any_shown
        if any_shown:
            return
        if not self.tcp:
            text = ("TCP monitoring is off for this trace (--disable-tcp-mon, or a kernel "
                    "without the sock:inet_sock_set_state tracepoint): no connections are "
                    "recorded.")
        elif any_in_scope:
            text = "No connection matches the filter.  Esc clears it."
        elif self.scope.is_all:
            text = "No TCP connections yet."
        else:
            text = (f"No TCP connections yet for {self.scope.label()}.  "
                    f"a shows every connection.")
        empty.update(data(text))

    def _draw_selected(self) -> None:
        selected = self.query_one("#connection-selected", Static)
        key = self._table().cursor_key
        text = ""
        if key is not None and self.mode == LIST:
            conn = self._shown.get(key)
            if conn is not None:
                text = describe_connection(conn, self.now_ns, self.session.latest)
        elif key is not None:
            summary = next((s for s in self._summaries if summary_key(s) == key), None)
            if summary is not None:
                text = describe_summary(summary,
                                        summary_members(summary, self._shown.values()))
        selected.update(data(text))  # names, containers: outside text
        selected.display = bool(text)

    @on(ConnectionTable.CursorMoved)
    def _cursor_moved(self) -> None:
        self._draw_selected()

    # -- sorting ----------------------------------------------------------------------------

    def _columns(self) -> tuple[Column, ...]:
        return SUMMARY_COLUMNS if self.mode == SUMMARY else LIST_COLUMNS

    def _set_sort(self, column: str, reverse: bool) -> None:
        self._sorts[self.mode] = (column, reverse)
        self._table().set_sort(column, reverse)
        self._redraw()

    def _step_sort(self, step: int) -> None:
        """To the next column on screen (a narrow terminal hides some)."""
        shown = {c.key for c in self._table().columns}
        keys = [c.key for c in self._columns()]
        index = keys.index(self.sort_column)
        for _ in keys:
            index = (index + step) % len(keys)
            if keys[index] in shown:
                break
        self._set_sort(keys[index], self._first_reverse(keys[index]))

    @on(KeyedTable.HeaderClicked)
    def _header_clicked(self, event: KeyedTable.HeaderClicked) -> None:
        if event.column == self.sort_column:
            self.action_sort_invert()
        else:
            self._set_sort(event.column, self._first_reverse(event.column))

    def _first_reverse(self, column: str) -> bool:
        return largest_first(self._columns(), column)

    # -- the filter -------------------------------------------------------------------------

    def _filter_bar(self) -> FilterBar[ConnectionFilter]:
        return self.query_one(FilterBar)

    def action_filter(self) -> None:
        self._filter_bar().open()

    def _set_filter_text(self, text: str) -> None:
        self._filter_bar().set_text(text)

    def _keep_filter(self, flt: ConnectionFilter) -> None:
        self.filter = flt

    def _focus_table(self) -> None:
        self.set_focus(self._table())  # now, not later: the next key is the table's

    def _clear_filter(self) -> None:
        bar = self._filter_bar()
        bar.set_text("")
        bar.show_message("")
        self._table().focus()

    # -- actions ----------------------------------------------------------------------------

    def action_back(self) -> None:
        """Escape: back out of an endpoint's list, then clear the filter, then leave."""
        if self._returns:
            mode, text = self._returns.pop()
            self._set_mode(mode)
            self._set_filter_text(text)
        elif self.filter is not None and not self.filter.is_empty:
            self._clear_filter()
        else:
            self.app.pop_screen()

    def action_failures_only(self) -> None:
        text = self.filter.text if self.filter is not None else ""
        terms = text.split()
        terms = ([t for t in terms if t != FAILURES_ONLY] if FAILURES_ONLY in terms
                 else [*terms, FAILURES_ONLY])
        self._set_filter_text(" ".join(terms))

    def action_toggle_summary(self) -> None:
        self._set_mode(LIST if self.mode == SUMMARY else SUMMARY)

    def _set_mode(self, mode: str) -> None:
        if mode == self.mode:
            return
        self._table().display = False
        self.mode = mode
        table = self._table()
        table.display = True
        table.set_sort(self.sort_column, self.sort_reverse)
        table.focus()
        self._redraw()

    def action_show_endpoint(self) -> None:
        """Enter on an endpoint: its connections (Escape comes back)."""
        if self.mode != SUMMARY:
            return
        key = self._table().cursor_key
        summary = next((s for s in self._summaries if summary_key(s) == key), None)
        if summary is None:
            return
        wanted = endpoint_filter(summary, summary_members(summary, self._shown.values()))
        current = self.filter.text if self.filter is not None else ""
        self._returns.append((self.mode, current))
        self._set_mode(LIST)
        self._set_filter_text(f"{current} {wanted}".strip())

    def action_all_connections(self) -> None:
        if not self.scope.is_all:
            self.scope = ConnectionScope()
            self._redraw()

    def action_help(self) -> None:
        self.app.push_screen(ConnectionsHelp())


def _joined(parts: Sequence[str | Text], separator: str) -> list[str | Text]:
    """`parts` with `separator` between them, for tui.text.line."""
    out: list[str | Text] = []
    for i, part in enumerate(parts):
        out += [separator, part] if i else [part]
    return out
