"""The Connections drill-down: the traced processes' TCP connections, one per row or summed
per remote endpoint, filtered with the connection filter language (tracing.query.filters).

It reads the connections the session keeps (SessionView.connections, the newest state of
each) and redraws when the session gets a new snapshot: open connections' durations grow
with the newest snapshot's clock. Columns are sized to what they hold and, when the
terminal is too narrow for all of them, the least needed go first; the line under the table
describes the selected row in full.
"""

from __future__ import annotations

import ipaddress
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from rich.table import Table
from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Input, Static

from tracing.boundary.display_text import sanitize
from tracing.model.connections import INBOUND, OUTBOUND, Connection, RemoteSummary, summarize
from tracing.model.stats import Snapshot
from tracing.model.units import format_duration
from tracing.query.filters import (
    CONNECTION_HELP,
    FAILURES_ONLY,
    ConnectionFilter,
    FilterError,
    parse_connection_filter,
)
from tui.actions import PALETTE_HELP, PALETTE_KEY, actions_for, bindings_for, key_display
from tui.dialogs import HelpScreen
from tui.filter_input import FILTER_DEBOUNCE_S, FilterInput
from tui.footer import KeyFooter
from tui.rows import Column, Row
from tui.screens import DrillDown, SortKeys, ThrottledRedraw
from tui.session import SessionView
from tui.table import GAP, KeyedTable
from tui.text import data, error_line, line

LIST, SUMMARY = "list", "summary"  # one row per connection, or per remote endpoint
_SYSCALL_DIRECTIONS = {"connect": OUTBOUND, "accept": INBOUND, "accept4": INBOUND}
_ARROWS = {OUTBOUND: "→", INBOUND: "←"}
SCROLLBAR = 2  # the table's vertical scrollbar, kept free so columns never slide under it


# -- what is shown: the scope ------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionScope:
    """Which connections the screen shows: all, one process's, one direction's, or both."""

    pid: int | None = None
    direction: str | None = None  # OUTBOUND, INBOUND or None for both
    syscall: str = ""  # the syscall row it was opened from, for the title

    def matches(self, c: Connection) -> bool:
        return ((self.pid is None or c.pid == self.pid)
                and (self.direction is None or c.direction == self.direction))

    @property
    def is_all(self) -> bool:
        return self.pid is None and self.direction is None

    def label(self, comm: str = "") -> str:
        parts = []
        if self.pid is not None:
            parts.append(f"pid {self.pid}" + (f" {comm}" if comm else ""))
        if self.direction is not None:
            way = "outbound" if self.direction == OUTBOUND else "inbound"
            parts.append(f"{way} ({self.syscall})" if self.syscall else way)
        return " · ".join(parts) or "all processes"


def scope_of_row(grouping: str, row_key: str | None) -> ConnectionScope:
    """The connections a live-view row stands for: a process's or thread's (its process's),
    outbound ones for a `connect` row, inbound ones for `accept`/`accept4`; all otherwise."""
    if row_key is None:
        return ConnectionScope()
    parts = row_key.split("\x1f")
    if grouping in ("process", "thread"):
        return ConnectionScope(pid=int(parts[0]))
    if grouping == "syscall":
        return _syscall_scope(parts[0], None)
    if grouping == "pid_syscall":
        return _syscall_scope(parts[1], int(parts[0]))
    return ConnectionScope()


def _syscall_scope(name: str, pid: int | None) -> ConnectionScope:
    direction = _SYSCALL_DIRECTIONS.get(name)
    return ConnectionScope(pid, direction, name if direction else "")


# -- cells -------------------------------------------------------------------------------------


def wall_clock(ts_ns: int, snapshot: Snapshot | None) -> str:
    """A monotonic timestamp as local wall-clock time, HH:MM:SS.mmm."""
    if snapshot is None:
        return "?"
    wall = snapshot.start_wall_time + (ts_ns - snapshot.start_ts_ns) / 1e9
    ms = int(wall * 1000) % 1000
    return time.strftime("%H:%M:%S", time.localtime(wall)) + f".{ms:03d}"


def container_label(c: Connection) -> str:
    return c.container_name or c.container_id[:12] or "-"


def result_label(c: Connection, short: bool = False) -> str:
    """"ok", "refused ECONNREFUSED", or "-" while undecided; `short` leaves the errno out
    (a narrow terminal: the line under the table still has it)."""
    if not c.result:
        return "-"
    if short or not c.error:
        return c.result
    return f"{c.result} {c.error}"


def shorten(text: str, width: int, keep_end: bool = False) -> str:
    """Cut to `width` with an ellipsis; `keep_end` cuts the middle (an endpoint's port and
    the end of its address matter most)."""
    if len(text) <= width:
        return text
    if keep_end:
        head = (width - 1) // 2
        return text[:head] + "…" + text[len(text) - (width - 1 - head):]
    return text[: width - 1] + "…"


def address_key(addr: str, port: int, family: int) -> tuple[int, int, str, int]:
    """Addresses sort as numbers (10.0.0.9 before 10.0.0.10), IPv4 before IPv6."""
    try:
        number = int(ipaddress.ip_address(addr))
    except ValueError:
        number = 0
    return family, number, addr, port


# Column.width is the most a column takes; each is as wide as its longest cell up to that.
LIST_COLUMNS = (
    Column("time", "time", False, 12),
    Column("pid", "pid", True, 7),
    Column("comm", "comm", False, 15),
    Column("container", "container", False, 16),
    Column("dir", "dir", False, 3),
    Column("local", "local", False, 23),
    Column("remote", "remote", False, 23),
    Column("state", "state", False, 12),
    Column("duration", "duration", True, 8),
    Column("result", "result", False, 24),
)
SUMMARY_COLUMNS = (
    Column("remote", "endpoint", False, 40),
    Column("dir", "dir", False, 3),
    Column("connections", "connections", True, 9),
    Column("failures", "failures", True, 9),
    Column("open", "open", True, 7),
    Column("avg_ns", "avg duration", True, 8),
)
_ENDPOINTS = frozenset({"local", "remote"})
_NEWEST_FIRST = frozenset({"time"})  # not numbers, yet they sort like them: newest first
# When the terminal is too narrow for every column, these steps make room, in this order,
# until the columns fit: the local address goes, then the container, then the result loses
# its errno, the start time goes, and the direction becomes an arrow. The line under the
# table still says all of it for the selected row.
NARROWING = (("drop", "local"), ("drop", "container"), ("short", "result"), ("drop", "time"),
             ("short", "dir"))
_SHORT_LABELS = {"dir": ""}
CELL_LIMIT = 200  # more than any column's width: the cut with an ellipsis is shorten()'s


def connection_cells(c: Connection, now_ns: int, snapshot: Snapshot | None) -> dict[str, str]:
    """Every column's text, and the narrow variants ("result:short", "dir:short"). The
    process and container names are outside text, and a saved session may hold anything in
    any field: every cell is sanitized before the columns are measured."""
    cells = {
        "time": wall_clock(c.ts_ns, snapshot), "pid": str(c.pid), "comm": c.comm,
        "container": container_label(c), "dir": c.direction,
        "dir:short": _ARROWS.get(c.direction, "-"), "local": c.local, "remote": c.remote,
        "state": c.state, "duration": format_duration(c.duration_ns(now_ns)),
        "result": result_label(c), "result:short": result_label(c, short=True),
    }
    return {key: sanitize(text, CELL_LIMIT) for key, text in cells.items()}


_LIST_SORT: dict[str, Callable[[Connection, int], object]] = {
    "time": lambda c, now: c.ts_ns,
    "pid": lambda c, now: c.pid,
    "comm": lambda c, now: c.comm,
    "container": lambda c, now: container_label(c),
    "dir": lambda c, now: c.direction,
    "local": lambda c, now: address_key(c.saddr, c.sport, c.family),
    "remote": lambda c, now: address_key(c.daddr, c.dport, c.family),
    "state": lambda c, now: c.state,
    "duration": lambda c, now: c.duration_ns(now),
    "result": lambda c, now: (c.result, c.error),
}


def sorted_connections(conns: Iterable[Connection], now_ns: int, sort: str,
                       reverse: bool) -> list[Connection]:
    """Ties keep the newest first, whichever the order, so rows do not swap on redraws."""
    ordered = sorted(conns, key=lambda c: (c.ts_ns, c.conn_id), reverse=True)
    primary = _LIST_SORT[sort]
    ordered.sort(key=lambda c: primary(c, now_ns), reverse=reverse)  # type: ignore[arg-type,return-value]
    return ordered


def summary_cells(s: RemoteSummary) -> dict[str, str]:
    return {"remote": sanitize(s.remote, CELL_LIMIT), "dir": sanitize(s.direction, CELL_LIMIT),
            "connections": f"{s.connections:,}", "failures": f"{s.failures:,}",
            "open": f"{s.open:,}",
            "avg_ns": format_duration(s.avg_duration_ns) if s.avg_duration_ns else "-"}


def summary_key(s: RemoteSummary) -> str:
    return f"{s.remote}\x1f{s.direction}"


def sorted_summaries(summaries: Iterable[RemoteSummary], sort: str,
                     reverse: bool) -> list[RemoteSummary]:
    def value(s: RemoteSummary) -> object:
        if sort == "remote":
            return s.remote
        if sort == "dir":
            return s.direction
        return getattr(s, "avg_duration_ns" if sort == "avg_ns" else sort)

    ordered = sorted(summaries, key=lambda s: (s.remote, s.direction))
    ordered.sort(key=value, reverse=reverse)  # type: ignore[arg-type]
    return ordered


# -- fitting the columns to the terminal -------------------------------------------------------


def table_width(widths: Iterable[int], labels: Iterable[str]) -> int:
    """What KeyedTable draws: each column at least its label and sort marker, then a gap."""
    return sum(max(len(label) + 2, w) + GAP for w, label in zip(widths, labels, strict=True))


def fitted(columns: Sequence[Column], cells: Sequence[dict[str, str]]) -> list[Column]:
    """The columns as wide as their longest cell (at most Column.width)."""
    out = []
    for col in columns:
        longest = max((len(row[col.key]) for row in cells), default=0)
        out.append(Column(col.key, col.label, col.numeric, min(longest, col.width)))
    return out


def narrowed(columns: Sequence[Column], cells: Sequence[dict[str, str]], available: int,
             steps: Sequence[tuple[str, str]] = NARROWING,
             ) -> tuple[list[Column], list[dict[str, str]]]:
    """The columns and cells that fit `available` terminal cells, taking `steps` in order
    until they do (see NARROWING); what still does not fit scrolls sideways."""
    dropped: set[str] = set()
    short: set[str] = set()
    for step in (None, *steps):
        if step is not None:
            (dropped if step[0] == "drop" else short).add(step[1])
        chosen = [Column(c.key, _SHORT_LABELS.get(c.key, c.label), c.numeric, c.width)
                  if c.key in short else c for c in columns if c.key not in dropped]
        shown_cells = [{c.key: row[f"{c.key}:short" if c.key in short else c.key]
                        for c in chosen} for row in cells]
        shown = fitted(chosen, shown_cells)
        if table_width((c.width for c in shown), (c.label for c in shown)) <= available:
            break
    return shown, shown_cells


# -- the line under the table ------------------------------------------------------------------


def describe_connection(c: Connection, now_ns: int, snapshot: Snapshot | None) -> str:
    """Everything about one connection, the columns a narrow terminal hides first."""
    lived = "lived" if c.ended else "open for"
    text = (f"{c.local} {_ARROWS.get(c.direction, '-')} {c.remote} · {c.state} · "
            f"{_outcome(c)} · started {wall_clock(c.ts_ns, snapshot)} · "
            f"{lived} {format_duration(c.duration_ns(now_ns))} · pid {c.pid} {c.comm}")
    if c.container_id or c.container_name:
        runtime = f" ({c.container_runtime})" if c.container_runtime else ""
        text += f" · container {container_label(c)}{runtime}"
    return text


def _outcome(c: Connection) -> str:
    if c.result:
        return result_label(c)
    return "open" if c.state == "ESTABLISHED" else "in progress"


def describe_summary(s: RemoteSummary, members: Sequence[Connection]) -> str:
    failures = Counter(c.result for c in members if c.failed)
    how = ", ".join(f"{n} {result}" for result, n in failures.most_common())
    way = "outbound to" if s.direction == OUTBOUND else "inbound from"
    return (f"{way} {s.remote} · {s.connections:,} connections · {s.failures:,} failed"
            + (f" ({how})" if how else "") + f" · {s.open:,} open · Enter lists them")


def summary_members(s: RemoteSummary, conns: Iterable[Connection]) -> list[Connection]:
    """The connections summarize() counted in `s` (inbound ones by address only)."""
    return [c for c in conns if c.direction == s.direction
            and (c.remote if c.direction == OUTBOUND else c.daddr) == s.remote]


def endpoint_filter(s: RemoteSummary, members: Sequence[Connection]) -> str:
    """The filter that lists one summary row's connections."""
    if not members:
        return f"dir={s.direction}"
    c = members[0]
    if s.direction == OUTBOUND:
        return f"dir=out addr={c.daddr} dport={c.dport}"
    return f"dir=in addr={c.daddr}"


def counts_line(shown: Sequence[Connection], total: int, filtered: bool) -> str:
    """"8 · 4 failed · 2 open", or with a filter "filtered: 3 of 8 · 1 failed · 0 open"."""
    failed = sum(c.failed for c in shown)
    still_open = sum(not c.ended for c in shown)
    count = f"filtered: {len(shown):,} of {total:,}" if filtered else f"{len(shown):,}"
    return f"{count} · {failed:,} failed · {still_open:,} open"


# -- the screens -------------------------------------------------------------------------------


class ConnectionsHelp(HelpScreen):
    """The help screen of the connections view: its keys and its filter language."""

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(Text("Connections: keys", style="bold"))
            yield Static(self._keys())
            yield Static(Text("\nFilter language (/)", style="bold"))
            yield Static(Text(CONNECTION_HELP))

    def _keys(self) -> Table:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", justify="right")
        table.add_column()
        for action in actions_for("connections"):
            table.add_row(key_display(action.keys), action.description)
        table.add_row(key_display(PALETTE_KEY), PALETTE_HELP)
        return table


class ConnectionTable(KeyedTable):
    """A KeyedTable that says when its cursor moves, for the line under it."""

    class CursorMoved(Message):
        pass

    def move_cursor(self, index: int) -> None:
        super().move_cursor(index)
        self.post_message(self.CursorMoved())


class ConnectionsScreen(ThrottledRedraw, SortKeys, DrillDown):
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
    ConnectionsScreen #connections-filter { height: 1; margin: 0 1; }
    ConnectionsScreen #connections-filter-message { display: none; color: $error; padding: 0 1; }
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
        self._shown: dict[str, Connection] = {}  # by row key
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
        yield FilterInput(placeholder="/ filter: curl  port=443  addr=10.0.0.0/8  "
                          "result=failed  (Esc clears)", id="connections-filter", compact=True)
        yield Static(id="connections-filter-message")
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
        self._shown = {str(c.conn_id): c for c in shown}
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
            Row(str(c.conn_id), {}, _shortened(row, columns))
            for c, row in zip(ordered, cells, strict=True)])

    def _draw_summary(self, shown: list[Connection]) -> None:
        self._summaries = sorted_summaries(summarize(shown), self.sort_column,
                                           self.sort_reverse)
        columns, cells = narrowed(SUMMARY_COLUMNS, [summary_cells(s) for s in self._summaries],
                                  self._available(), steps=())
        self._show_rows(self._table(), columns, [
            Row(summary_key(s), {}, _shortened(row, columns))
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
        parts = [counts_line(shown, total, filtered)]
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
        """A new sort column: numbers and times largest first, names A to Z."""
        numeric = next(c.numeric for c in self._columns() if c.key == column)
        return numeric or column in _NEWEST_FIRST

    # -- the filter -------------------------------------------------------------------------

    def action_filter(self) -> None:
        # Now, not later: keys typed right after "/" belong to the filter, not to bindings.
        self.set_focus(self.query_one("#connections-filter", Input))

    def _set_filter_text(self, text: str) -> None:
        field = self.query_one("#connections-filter", Input)
        if field.value == text:
            return
        field.value = text  # Input.Changed parses and applies it
        self._apply_filter_text(text)  # and now: the next key may act on the new rows

    @on(Input.Changed, "#connections-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        # Parsed at each key (bounded: tracing.query.filters), drawn once typing pauses: a redraw
        # visits every connection of the session.
        self._apply_filter_text(event.value, redraw=self._redraw_when_typing_pauses)

    _typing_timer: Timer | None = None

    def _redraw_when_typing_pauses(self) -> None:
        if self._typing_timer is not None:
            self._typing_timer.stop()
        self._typing_timer = self.set_timer(FILTER_DEBOUNCE_S, self._redraw_typed)

    def _redraw_typed(self) -> None:
        self._typing_timer = None
        self._redraw()

    @on(FilterInput.TooLong, "#connections-filter")
    def _filter_too_long(self, event: FilterInput.TooLong) -> None:
        self._show_filter_message(event.line)  # the text is kept, the last filter too

    def _apply_filter_text(self, text: str, redraw: Callable[[], None] | None = None) -> None:
        if self.filter is not None and self.filter.text == text:
            return
        try:
            self.filter = parse_connection_filter(text)
        except FilterError as err:
            # Keep the last valid filter; say what is wrong, inline.
            self._show_filter_message(err.message)
            return
        self._show_filter_message("")
        (redraw or self._redraw)()

    @on(Input.Submitted, "#connections-filter")
    def _filter_submitted(self, _event: Input.Submitted) -> None:
        if self._typing_timer is not None:  # Enter draws now: the next key acts on the rows
            self._typing_timer.stop()
            self._redraw_typed()
        self._table().focus()

    def on_key(self, event: events.Key) -> None:
        if event.key == "escape" and self.query_one("#connections-filter", Input).has_focus:
            event.stop()
            self._clear_filter()

    def _show_filter_message(self, text: str) -> None:
        message = self.query_one("#connections-filter-message", Static)
        message.update(error_line(text) if text else "")
        message.display = bool(text)

    def _clear_filter(self) -> None:
        self._set_filter_text("")
        self._show_filter_message("")
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


def _shortened(cells: dict[str, str], columns: Sequence[Column]) -> dict[str, str]:
    """Cells cut to their column with an ellipsis (endpoints in the middle, keeping the
    port), rather than the table's plain cut."""
    return {c.key: shorten(cells[c.key], max(c.width, len(c.label) + 2), c.key in _ENDPOINTS)
            for c in columns}
