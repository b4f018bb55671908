"""The calls-in-flight view (I): each traced thread's current syscall and for how long
(`read  12.3s`), longest first; Enter shows the live view's rows of that thread.

It shows the newest snapshot's InFlightRead (tracing/model/inflight.py): while this view is
open the engine reads the threads' in-flight slots once a second (otherwise only at stop), so
the durations are as of that read (the title says when); in a saved session, the calls still
in flight when it stopped, as of the end of the stretch shown. A call that never returns is
counted nowhere else: here it is visible. With --timing off there are no slots: the engine
reads /proc (once a second while the view is open, every 5 s otherwise) and each call is
timed from the first read that saw it, so the title says the times are lower bounds, and
each is marked `>` (in flight) and `≤` (entered at).
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.widgets import Static

from tracing.decode.argspec import abi_table
from tracing.model.inflight import (
    POLLED_NOTE,
    InFlight,
    InFlightRead,
    call_name,
    elapsed_text,
    thread_comm,
)
from tracing.model.stats import Snapshot, TraceState
from tracing.model.units import format_duration, format_elapsed
from tracing.sources import SnapshotSource
from tui.actions import bindings_for
from tui.columns import Column, Row
from tui.connections import ConnectionTable
from tui.filter_bar import FilterBar
from tui.footer import KeyFooter
from tui.screens import DrillDown, SortKeys
from tui.session import SessionView
from tui.table import KeyedTable
from tui.text import line

COLUMNS = (
    Column("pid", "pid"),
    Column("tid", "tid"),
    Column("comm", "comm", False, 15),
    Column("syscall", "syscall", False, 22),
    Column("elapsed_ns", "in flight", True, 10),
    Column("start_s", "entered at", True, 10, priority=1),
)
DEFAULT_SORT = "elapsed_ns"
MAX_ROWS = 5_000  # a read holds at most the engine's MAX_THREADS (4,096) calls


def inflight_rows(snapshot: Snapshot | None) -> list[Row]:
    """One row per call, keyed by (pid, tid); unsorted."""
    read = snapshot.inflight if snapshot is not None else None
    if snapshot is None or read is None:
        return []
    return [_row(snapshot, read, call) for call in read.calls[:MAX_ROWS]]


def _row(snapshot: Snapshot, read: InFlightRead, call: InFlight) -> Row:
    name = call_name(snapshot.arch, call)
    if call.abi:  # the label says which ABI, as the live view's rows do
        name = f"{name} ({_abi_label(snapshot.arch, call.abi)})"
    comm = thread_comm(snapshot.processes, call.pid, call.tid)
    elapsed = call.elapsed_ns(read.ts_ns)
    start_s = (call.start_ns - snapshot.start_ts_ns) / 1e9
    values = {"pid": call.pid, "tid": call.tid, "comm": comm, "syscall": name,
              "elapsed_ns": elapsed, "start_s": start_s}
    cells = {"pid": str(call.pid), "tid": str(call.tid), "comm": comm, "syscall": name,
             "elapsed_ns": elapsed_text(call, read.ts_ns),
             # entered before the trace's start (an attached process found blocked)
             "start_s": "before" if call.before_trace or start_s < 0
             # first seen then by a /proc read (--timing off): entered then or earlier
             else ("≤" if call.seen else "") + format_elapsed(start_s)}
    return Row((call.pid, call.tid), values, cells)


def _abi_label(arch: str, abi: int) -> str:
    return abi_table(arch, abi)


def sorted_rows(rows: list[Row], column: str, reverse: bool) -> list[Row]:
    return sorted(rows, key=lambda r: (r.values[column], r.key), reverse=reverse)


def describe(snapshot: Snapshot | None, reading: bool = False) -> str:
    """The title's words: how many calls, and as of when. `reading`: a live trace reads them
    from now on (nothing read yet means soon, not never)."""
    read = snapshot.inflight if snapshot is not None else None
    if snapshot is None or read is None:
        return ("reading the traced threads…" if reading
                else "not read (a session from before sikte-tui read them, or none yet)")
    n = len(read.calls)
    words = [f"{n:,} call{'' if n == 1 else 's'}"]
    age = max(snapshot.ts_ns - read.ts_ns, 0)
    words.append("as of now" if age < 1_000_000 else f"as of {format_duration(age)} ago")
    if read.unread:
        words.append(f"{read.unread:,} threads not read")
    if read.polled:
        words.append(POLLED_NOTE)
    return " · ".join(words)


class InFlightScreen(SortKeys, DrillDown):
    ACTION_SCREEN = "inflight"
    BINDINGS = bindings_for("inflight")
    DEFAULT_CSS = """
    InFlightScreen #inflight-title { height: auto; padding: 0 1; background: $panel; }
    InFlightScreen ConnectionTable { height: 1fr; }
    InFlightScreen #inflight-empty {
        height: 1fr; content-align: center middle; text-align: center; color: $text-muted;
    }
    """

    def __init__(self, session: SessionView, source: SnapshotSource | None = None) -> None:
        super().__init__()
        self.session = session
        # A live trace reads the calls in flight only while this view is open (and at stop).
        self._source = source
        self._live = source is not None and source.capabilities.live
        self.sort_column = DEFAULT_SORT
        self.sort_reverse = True
        self._drawn: int | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="inflight-title")
        yield ConnectionTable(id="inflight")
        yield Static(id="inflight-empty")
        yield KeyFooter()

    def on_mount(self) -> None:
        table = self._table()
        table.set_columns(COLUMNS)
        table.set_sort(self.sort_column, self.sort_reverse)
        table.focus()
        if self._source is not None:
            self._source.watch_inflight(True)
        self._redraw()

    def on_unmount(self) -> None:
        if self._source is not None:
            self._source.watch_inflight(False)

    def on_screen_resume(self) -> None:
        self._redraw()

    def session_updated(self) -> None:
        latest = self.session.latest
        if latest is None or latest.seq != self._drawn:
            self._redraw()

    def _table(self) -> ConnectionTable:
        return self.query_one("#inflight", ConnectionTable)

    def _redraw(self) -> None:
        latest = self.session.latest
        self._drawn = latest.seq if latest is not None else None
        rows = sorted_rows(inflight_rows(latest), self.sort_column, self.sort_reverse)
        arrow = "▼" if self.sort_reverse else "▲"
        label = next(c.label for c in COLUMNS if c.key == self.sort_column)
        # A live trace that has not read them yet will (not one that ended or failed first).
        reading = self._live and (latest is None or latest.state in (TraceState.STARTING,
                                                                     TraceState.TRACING))
        with self.app.batch_update():
            self._table().update_rows(rows)
            self.query_one("#inflight-title", Static).update(line(
                ("Calls in flight", "bold"), ": ", describe(latest, reading),
                f" · sort {label} {arrow}"))
            empty = self.query_one("#inflight-empty", Static)
            self._table().display = bool(rows)
            empty.display = not rows
            empty.update("No traced thread is inside a syscall." if latest is not None
                         and latest.inflight is not None
                         else "Calls in flight: reading…" if reading
                         else "Calls in flight: not known.")

    # -- sorting ----------------------------------------------------------------------------

    def _set_sort(self, column: str, reverse: bool) -> None:
        self.sort_column, self.sort_reverse = column, reverse
        self._table().set_sort(column, reverse)
        self._redraw()

    def _step_sort(self, step: int) -> None:
        keys = [c.key for c in COLUMNS]
        column = keys[(keys.index(self.sort_column) + step) % len(keys)]
        self._set_sort(column, next(c.numeric for c in COLUMNS if c.key == column))

    @on(KeyedTable.HeaderClicked)
    def _header_clicked(self, event: KeyedTable.HeaderClicked) -> None:
        if event.column == self.sort_column:
            self.action_sort_invert()
        else:
            numeric = next(c.numeric for c in COLUMNS if c.key == event.column)
            self._set_sort(event.column, numeric)

    # -- actions ----------------------------------------------------------------------------

    def action_thread_calls(self) -> None:
        """Back to the live view, filtered to the selected thread's rows."""
        key = self._table().cursor_key
        stack = self.app.screen_stack
        if key is None or len(stack) < 2:
            return
        below = stack[-2]
        self.app.pop_screen()
        for bar in below.query(FilterBar):  # the live view's: applied now, not once typing pauses
            bar.set_text(f"pid={key[0]} tid={key[1]}")
