"""The event log (E): the kept events in strace's form, newest at the bottom, filtered with
the event filter language (tracing.query.event_filter).

It follows new events while the cursor is on the newest one; once the person selects an
older row, that row stays where it is while events arrive (End follows again). `p` or Space
pauses it (the title says how many arrived meanwhile). `s` changes which events the kernel
sends (failed, slow, 1 in N, all, none) on a live trace; a saved or replayed session keeps
what was kept. Enter shows one event whole. What the rows hold is tui/event_rows.py's.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tracing.model.selection import EventSelection
from tracing.model.stats import Snapshot
from tracing.query.event_filter import EVENT_HELP, EventFilter, parse_event_filter
from tracing.sources import SnapshotSource
from tui.actions import bindings_for
from tui.connections import ConnectionTable
from tui.dialogs import HelpScreen, keys_table
from tui.event_rows import (
    EventStore,
    LogEvent,
    describe_event,
    log_columns,
    rows_of,
    wall_clock,
    who,
)
from tui.filter_bar import FilterBar
from tui.footer import KeyFooter
from tui.screens import DrillDown, FilterKey, ThrottledRedraw
from tui.session import SessionView
from tui.text import data, line

SCROLLBAR = 2
# What `s` steps through, in this order (EventSelection.parse reads them).
SELECTION_PRESETS = ("failed", "failed,slow:10ms", "sample:100", "all", "none")


class EventLogHelp(HelpScreen):
    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(Text("Event log: keys", style="bold"))
            yield Static(keys_table("events"))
            yield Static(Text("\nFilter language (/)", style="bold"))
            yield Static(Text(EVENT_HELP))


class EventScreen(ModalScreen[None]):
    """One event whole: every field, the path untruncated."""

    BINDINGS = [("escape,enter,q", "close", "close")]

    def __init__(self, lines: Sequence[tuple[str, str]]) -> None:
        super().__init__()
        self.lines = lines

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", justify="right")
        table.add_column(overflow="fold")
        for label, value in self.lines:
            table.add_row(label, data(value))  # paths and arguments: outside text
        with Vertical(id="dialog"):
            yield Static(Text("event (Esc closes)", style="bold"))
            yield Static(table, id="event-fields")

    def action_close(self) -> None:
        self.dismiss()


class EventLogScreen(FilterKey, ThrottledRedraw, DrillDown):
    ACTION_SCREEN = "events"
    BINDINGS = bindings_for("events")
    DEFAULT_CSS = """
    EventLogScreen #events-title { height: auto; padding: 0 1; background: $panel; }
    EventLogScreen ConnectionTable { height: 1fr; }
    EventLogScreen #events-empty {
        height: 1fr; content-align: center middle; text-align: center; color: $text-muted;
    }
    EventLogScreen #event-selected {
        height: auto; max-height: 3; padding: 0 1; background: $panel;
    }
    """

    def __init__(self, session: SessionView, source: SnapshotSource | None = None,
                 filter_text: str = "") -> None:
        super().__init__()
        self.session = session
        self.source = source
        self.store = EventStore()
        self.filter: EventFilter | None = None
        self._initial_filter = filter_text
        self.paused = False
        self.arrived_while_paused = 0
        self._shown: list[LogEvent] = []
        self._fixed_note = False  # s was pressed on a session that cannot change
        self._asked: EventSelection | None = None  # asked of a live trace, not yet in effect
        self._resets = session.resets

    def compose(self) -> ComposeResult:
        yield Static(id="events-title")
        yield ConnectionTable(id="event-log")
        yield Static(id="events-empty")
        yield Static(id="event-selected")
        yield FilterBar(parse_event_filter,
                        placeholder="/ filter: path~conf  errno=ENOENT  fd=3  ret=-1  "
                        "addr~443  (Esc clears)", input_id="events-filter",
                        message_id="events-filter-message", keep=self._keep_filter,
                        redraw=self._redraw, leave=self._focus_table, clear=self._clear_filter)
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#events-empty").display = False
        self._table().focus()
        if self._initial_filter:
            self.query_one(FilterBar).set_text(self._initial_filter)
        self.redraw_from_session()

    def on_screen_resume(self) -> None:
        self.redraw_from_session()

    def on_resize(self) -> None:
        self._redraw()

    def _table(self) -> ConnectionTable:
        return self.query_one("#event-log", ConnectionTable)

    # -- drawing ----------------------------------------------------------------------------

    def redraw_from_session(self) -> None:
        if self.session.resets != self._resets:  # R, or another stretch of a saved session
            self._resets = self.session.resets
            self.store.clear()
        arrived = self.store.update(self.session.event_batches)
        if self.paused:
            self.arrived_while_paused += arrived
        if not self.paused and (arrived or not self.store.events):
            self._redraw()
        else:
            self._draw_title()  # the selection in force, the drops

    def _redraw(self) -> None:
        flt = self.filter
        events = self.store.events
        self._shown = list(events) if flt is None or flt.is_empty else [
            e for e in events if flt.matches(e)]
        table = self._table()
        following = table.cursor >= table.row_count - 1
        with self.app.batch_update():
            columns = log_columns(self._available())
            if columns != table.columns:
                table.set_columns(columns)
                following = True
            table.update_rows(rows_of(self._shown, self.session.latest), anchor=not following)
            if following:
                table.move_cursor(len(self._shown) - 1)
                # Once the table knows its new height: scrolled to the newest row.
                table.call_after_refresh(table.move_cursor, len(self._shown) - 1)
            self._draw_title()
            self._draw_empty()
            self._draw_selected()

    def _available(self) -> int:
        # The table is as wide as the screen. Rows as wide as the room beside the vertical
        # scrollbar still got a horizontal one, which hid the newest row: keep as much free.
        return max(self.app.size.width - 2 * SCROLLBAR, 40)

    @property
    def following(self) -> bool:
        table = self._table()
        return table.cursor >= table.row_count - 1

    def _draw_title(self) -> None:
        latest = self.session.latest
        parts: list[str | Text] = [f"{len(self._shown):,} shown"]
        if self.filter is not None and not self.filter.is_empty:
            parts.append(f"filter: {self.filter.text}")
        parts.append(f"{len(self.store.events):,} kept of {self.store.arrived:,}")
        parts.append(f"events: {selection_text(latest)}{self._selection_note(latest)}")
        parts.append(drops_text(latest))
        if self.paused:
            parts.append(Text(f"paused, {self.arrived_while_paused:,} new: p resumes",
                              style="bold"))
        elif not self.following:
            parts.append("held on the selected event: End follows")
        else:
            parts.append("following")
        joined: list[str | Text] = []
        for i, part in enumerate(parts):
            joined += [" · ", part] if i else [part]
        self.query_one("#events-title", Static).update(line(("Event log", "bold"), ": ",
                                                            *joined))

    def _draw_empty(self) -> None:
        empty = self.query_one("#events-empty", Static)
        any_shown = bool(self._shown)
        self._table().display = any_shown
        empty.display = not any_shown
        if any_shown:
            return
        if self.store.events:
            text = "No event matches the filter.  Esc clears it."
        else:
            text = (f"No events yet.  The kernel sends {selection_text(self.session.latest)} "
                    f"events; s changes which.")
        empty.update(data(text))

    def _selected(self) -> LogEvent | None:
        key = self._table().cursor_key
        if key is None:
            return None
        seq = key[0]
        return next((e for e in reversed(self._shown) if e.seq == seq), None)

    def _draw_selected(self) -> None:
        event = self._selected()
        text = "" if event is None else (
            f"{wall_clock(event.ts_ns, self.session.latest)} pid {event.pid} {who(event)}: "
            f"{strace_text(event)}")
        selected = self.query_one("#event-selected", Static)
        selected.update(data(text))  # the comm, the path: outside text
        selected.display = bool(text)

    @on(ConnectionTable.CursorMoved)
    def _cursor_moved(self) -> None:
        self._draw_selected()
        self._draw_title()

    # -- the filter -------------------------------------------------------------------------

    def action_filter(self) -> None:
        self.query_one(FilterBar).open()

    def _keep_filter(self, flt: EventFilter) -> None:
        self.filter = flt

    def _focus_table(self) -> None:
        self.set_focus(self._table())  # now, not later: the next key is the table's

    def _clear_filter(self) -> None:
        bar = self.query_one(FilterBar)
        bar.set_text("")
        bar.show_message("")
        self._table().focus()

    # -- actions ----------------------------------------------------------------------------

    def action_back(self) -> None:
        if self.filter is not None and not self.filter.is_empty:
            self._clear_filter()
        else:
            self.app.pop_screen()

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        self.arrived_while_paused = 0
        if self.paused:
            self._draw_title()
        else:
            self._redraw()

    def action_show_event(self) -> None:
        event = self._selected()
        if event is not None:
            self.app.push_screen(EventScreen(describe_event(event, self.session.latest)))

    def action_cycle_selection(self) -> None:
        """The next preset of which events the kernel sends, on a live trace."""
        source = self.source
        set_selection = getattr(source, "set_selection", None)
        if source is None or not source.capabilities.live or set_selection is None:
            self._fixed_note = True
            self.notify("a saved or replayed session keeps the events it kept; the selection "
                        "changes on a live trace", severity="warning")
            self._draw_title()
            return
        latest = self.session.latest
        current = self._asked or (latest.selection if latest is not None else None)
        chosen = EventSelection.parse(next_preset(current))
        set_selection(chosen)
        self._asked = chosen
        self._draw_title()

    def _selection_note(self, latest: Snapshot | None) -> str:
        if self._fixed_note:
            return " (fixed: recorded so)"
        if self._asked is None or (latest is not None and latest.selection == self._asked):
            self._asked = None
            return ""
        return f" → {self._asked.describe()} from the next tick"

    def action_help(self) -> None:
        self.app.push_screen(EventLogHelp())


def strace_text(event: LogEvent) -> str:
    """The selected-row line's call and strace -T's time (`<->` when not timed)."""
    from tracing.decode.render import duration_text  # loads the decoder: see DecodeContext
    return f"{event.call} {duration_text(event.duration_ns)}"


def selection_text(snapshot: Snapshot | None) -> str:
    """Which events the kernel sends, for the title ("failed, slower than 10 ms")."""
    if snapshot is None:
        return "…"  # nothing arrived yet
    selection = snapshot.selection
    return selection.describe() if selection is not None else "as recorded"


def next_preset(current: EventSelection | None) -> str:
    """The preset after the current selection in SELECTION_PRESETS (the first when the
    current one is none of them)."""
    chosen = [EventSelection.parse(p) for p in SELECTION_PRESETS]
    same = [i for i, sel in enumerate(chosen) if current is not None and (
        sel.bits, sel.slow_ns, sel.sample_n) == (current.bits, current.slow_ns,
                                                 current.sample_n)]
    index = same[0] + 1 if same else 0
    return SELECTION_PRESETS[index % len(SELECTION_PRESETS)]


def drops_text(snapshot: Snapshot | None) -> str:
    if snapshot is None:
        return "dropped 0"
    drops = snapshot.drops
    # fd_events: descriptor bookkeeping lost (the Files view's totals miss those calls);
    # sessions recorded before it was counted have none.
    lost_fd: int = getattr(drops, "fd_events", 0)
    if not drops.events and not lost_fd:
        return "dropped 0"
    return f"dropped {drops.events:,} events, {lost_fd:,} descriptor events"
