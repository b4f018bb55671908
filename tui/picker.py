"""The process picker: a live process list to choose what to trace, with fuzzy filtering,
sorting, multi-select, and a dialog to launch a command instead.

It must stay responsive on a busy server (thousands of processes, command lines of several
KB), so nothing per process runs on the UI thread more than once:

- the list is read and each process prepared (sanitized, one line, cut to COMMAND_MATCH
  characters, folded for matching) on a worker thread, and a prepared process is reused
  while its (pid, start time) and command line stay the same;
- the fuzzy matching (tracing.query.fuzzy: bounded, no recursion) runs on another worker thread,
  one at a time, the latest query winning: a result is applied only if its query is still
  the one typed and its process list still the one shown. Typing a longer query only
  re-checks the processes that matched the shorter one; a refresh only matches the
  processes that are new;
- what is kept is bounded by the processes listed now (no per-query or per-key caches).

The prepared processes and the matching are tui/picker_rows.py's (no Textual); this module is
the screen and its table.
"""

from __future__ import annotations

import dataclasses
import gc
import threading
import time
from collections.abc import Callable, Mapping

from rich.segment import Segment
from rich.style import Style
from textual import events, on, work
from textual.app import ComposeResult
from textual.message import Message
from textual.screen import Screen
from textual.strip import Strip
from textual.widgets import Input, Static
from textual.worker import get_current_worker

from tracing.boundary.display_text import sanitize
from tracing.errors import UserError
from tracing.model.timing import Timing, timing_of
from tracing.query import fuzzy
from tracing.system.proclist import ProcessEntry
from tracing.system.targets import check_pid
from tui.actions import bindings_for
from tui.columns import Column, Row, RowKey
from tui.dialogs import RunCommand
from tui.footer import KeyFooter
from tui.messages import ProcessesListed
from tui.navigation import navigator
from tui.picker_rows import Catalog, Hit, Listed, Matches, filtered_rows, match_all, sorted_rows
from tui.screens import FilterKey
from tui.table import KeyedTable, column_width, span
from tui.text import error_line, line
from tui.widgets import DataInput

REFRESH_S = 2.0
QUERY_MAX = 256  # characters the filter takes
COMMAND_MIN = 40  # the command column's width before the optional columns get room

# Narrow terminals drop columns from the highest priority down (KeyedTable): PID, the
# selection mark and the command always stay, then user, CPU%, RSS, threads, start time.
COLUMNS = (
    Column("selected", "✓", False, 1),
    Column("pid", "PID"),
    Column("user", "user", False, 10, priority=1),
    Column("cpu", "CPU%", True, 6, priority=2),
    Column("rss", "RSS", True, 7, priority=3),
    Column("threads", "thr", True, 5, priority=4),
    Column("started", "started", False, 7, priority=5),
    Column("command", "command", False, COMMAND_MIN),
)
SORTABLE = [c.key for c in COLUMNS if c.key != "selected"]
# Which field of a Candidate each highlighted column shows (see Candidate.fields).
MARKED_COLUMNS = {"command": 0, "user": 1, "pid": 2}

Lister = Callable[[], list[ProcessEntry]]


class Matched(Message):
    """A worker's matches for a query (applied only if the query is still current)."""

    def __init__(self, matches: Matches) -> None:
        super().__init__()
        self.matches = matches


# -- the table: the command column takes the room left, matched letters marked --------------


class ProcessTable(KeyedTable):
    """KeyedTable whose command column widens to the room the other columns leave, and
    whose cells show the letters a query matched in the `table--match` style."""

    COMPONENT_CLASSES = KeyedTable.COMPONENT_CLASSES | {"table--match"}
    DEFAULT_CSS = """
    ProcessTable > .table--match { text-style: bold underline; color: $warning; }
    """

    def _relayout(self) -> None:
        super()._relayout()
        fit = self.fit
        spare = self._available() - span(fit.columns, fit.gap) - fit.gap
        if spare > 0:
            self.fit = dataclasses.replace(fit, columns=tuple(
                dataclasses.replace(c, width=column_width(c) + spare) if c.key == "command"
                else c for c in fit.columns))
            self._resize()

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.matches: Mapping[RowKey, Hit] = {}  # by row key, for the marks

    def _row_strip(self, index: int) -> Strip:
        row = self.rows[index]
        hit = self.matches.get(row.key)
        if hit is None or not hit[2]:
            return super()._row_strip(index)
        style = self.rich_style
        if index == self.cursor:
            style = style + self.get_component_rich_style("table--cursor")
        elif index % 2:
            style = style + self.get_component_rich_style("table--stripe")
        # The match style's colour and emphasis over the row's (cursor, stripe) background.
        match_style = self.get_component_rich_style("table--match")
        marked = style + Style(color=match_style.color, bold=match_style.bold,
                               underline=match_style.underline)
        cells, gap = row.cells, " " * self.fit.gap
        segments: list[Segment] = []
        for column in self.shown_columns:
            width = column_width(column)
            text = sanitize(cells[column.key], width + 1)[:width]
            shift = width - len(text) if column.numeric else 0
            text = text.rjust(width) if column.numeric else text.ljust(width)
            field = MARKED_COLUMNS.get(column.key)
            positions = fuzzy.positions_in(hit[2], field) if field is not None else ()
            segments += _marked(text, {p + shift for p in positions}, style, marked)
            segments.append(Segment(gap, style))
        return Strip(segments)


def _marked(text: str, positions: set[int], style: Style, marked: Style) -> list[Segment]:
    """`text` as segments, the characters at `positions` in the `marked` style."""
    if not positions:
        return [Segment(text, style)]
    segments, start = [], 0
    for i in sorted(p for p in positions if 0 <= p < len(text)):
        if i > start:
            segments.append(Segment(text[start:i], style))
        segments.append(Segment(text[i], marked))
        start = i + 1
    if start < len(text):
        segments.append(Segment(text[start:], style))
    return segments


# -- the screen -----------------------------------------------------------------------------

_frozen = threading.Event()


def _freeze_long_lived() -> None:
    """Once per process, when the first list is shown: move the objects alive then (the
    app's, the list's) out of the collector's reach. Its full collections walk every
    tracked object; with thousands of processes listed each took 70-90 ms on the UI thread,
    every few keys (gc.freeze; the objects are still freed when no longer referenced, only
    a reference cycle among them would outlive its use)."""
    if not _frozen.is_set():
        _frozen.set()
        gc.freeze()



class PickerScreen(FilterKey, Screen[None]):
    ACTION_SCREEN = "picker"
    BINDINGS = bindings_for("picker")

    def __init__(self, lister: Lister, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.lister = lister
        self.clock = clock
        self.listed: list[Listed] = []
        self.matches: Matches | None = None  # the last applied (for the query or a prefix)
        self.query_text = ""  # the query the rows should show
        self._matching = ""  # the query a worker is matching now ("" for none)
        self.selected: set[int] = set()  # changed in place: the rows' cells read it
        self.catalog = Catalog(self.selected, clock)
        self.sort_column = "cpu"
        self.sort_reverse = True
        self._ordered: tuple[list[Listed], str, bool, list[Row]] | None = None

    def compose(self) -> ComposeResult:
        yield Static("[b]sikte-tui[/b] ▸ pick processes to trace (Space selects, Enter traces, "
                     "n launches a command)", id="picker-title")
        yield DataInput(placeholder="/ to filter: name, command line, user or PID (fuzzy)",
                        id="picker-filter", compact=True, max_length=QUERY_MAX)
        yield ProcessTable(id="processes")
        yield Static("", id="notice")
        yield KeyFooter()

    def on_mount(self) -> None:
        table = self.query_one(KeyedTable)
        table.set_sort(self.sort_column, self.sort_reverse)
        table.set_columns(COLUMNS)
        table.focus()
        self.refresh_list()
        self.set_interval(REFRESH_S, self.refresh_list)

    @work(thread=True, exclusive=True, group="proclist")
    def refresh_list(self) -> None:
        self.post_message(ProcessesListed(self.catalog.prepare(self.lister())))

    def on_processes_listed(self, message: ProcessesListed) -> None:
        self.listed = message.processes
        _freeze_long_lived()
        self.selected &= {item.entry.pid for item in self.listed}
        if not self.query_text:
            self._render_rows()
        elif self._matching != self.query_text:
            self._start_matching(self.query_text)  # only new processes are matched
        # else: the worker's result is matched again on this list when it arrives.

    # -- filter -----------------------------------------------------------------------------

    def action_filter(self) -> None:
        self.set_focus(self.query_one("#picker-filter", Input))  # at once: see LiveScreen

    @on(Input.Changed, "#picker-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        notice = self.query_one("#notice", Static)
        if len(event.value) >= QUERY_MAX:
            notice.update(line(f"the filter takes at most {QUERY_MAX} characters"))
        elif not notice.has_class("error"):
            notice.update("")
        query = event.value.strip()
        if query == self.query_text:
            return
        self.query_text = query
        if query:
            self._start_matching(query)
        else:
            self._render_rows()

    def _start_matching(self, query: str, basis: Matches | None = None) -> None:
        self._matching = query
        self._match(query, self.listed, basis or self.matches)

    # A description of its own: Textual would otherwise repr the arguments (every process).
    @work(thread=True, exclusive=True, group="picker-match", description="picker: match")
    def _match(self, query: str, listed: list[Listed], basis: Matches | None) -> None:
        worker = get_current_worker()
        matches = match_all(query, listed, basis, lambda: worker.is_cancelled)
        if matches is not None:
            self.post_message(Matched(matches))

    def on_matched(self, message: Matched) -> None:
        matches = message.matches
        # Latest query wins: a slower, older result never replaces a newer one.
        if matches.query != self.query_text:
            return
        self._matching = ""
        self.matches = matches
        self._render_rows()
        if matches.listed is not self.listed:  # the list was refreshed meanwhile
            self._start_matching(matches.query, matches)

    def _ordered_rows(self) -> list[Row]:
        """The rows in the sort order, sorted again only when the list or the order changes."""
        cached = self._ordered
        if cached is None or cached[0] is not self.listed \
                or cached[1:3] != (self.sort_column, self.sort_reverse):
            rows = sorted_rows(self.listed, self.sort_column, self.sort_reverse)
            cached = self._ordered = (self.listed, self.sort_column, self.sort_reverse, rows)
        return cached[3]

    def _render_rows(self) -> None:
        table = self.query_one(ProcessTable)
        matches = self.matches
        # While a new query is matched, the last result stays on screen.
        if self.query_text and matches is not None:
            rows = filtered_rows(self._ordered_rows(), matches.hits)
            table.matches = matches.hits
        else:
            rows, table.matches = self._ordered_rows(), {}
        with self.app.batch_update():
            table.update_rows(rows)
            title = f"{len(rows)} of {len(self.listed)} processes"
            if self.selected:
                title += f" · selected: {', '.join(map(str, sorted(self.selected)))}"
            self.query_one("#picker-title", Static).update(
                f"[b]sikte-tui[/b] ▸ pick processes to trace · {title}")

    @on(Input.Submitted, "#picker-filter")
    def _filter_done(self, _event: Input.Submitted) -> None:
        self.query_one(KeyedTable).focus()

    def on_key(self, event: events.Key) -> None:
        bar = self.query_one("#picker-filter", Input)
        if event.key == "escape" and bar.has_focus:
            event.stop()
            bar.value = ""
            self.query_one(KeyedTable).focus()

    # -- selection and sorting --------------------------------------------------------------

    def _cursor_pid(self) -> int | None:
        key = self.query_one(KeyedTable).cursor_key
        return None if key is None else int(key[0])

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
        for pid in pids:
            try:
                check_pid(pid)
            except UserError as err:
                notice = self.query_one("#notice", Static)
                notice.update(error_line(err))
                notice.add_class("error")
                self.selected.discard(pid)
                self.refresh_list()
                return
        navigator(self.app).start_trace(pids=tuple(pids))

    def action_run_command(self) -> None:
        def launched(result: tuple[tuple[str, ...], bool, Timing] | None) -> None:
            if result is not None:
                argv, follow, timing = result
                navigator(self.app).start_trace(command=argv, follow=follow, timing=timing)

        # Preselected: the command line's --timing (the app's trace defaults).
        defaults = getattr(self.app, "trace_defaults", None)
        self.app.push_screen(RunCommand(timing_of(getattr(defaults, "timing", None))),
                             launched)

    def action_help(self) -> None:
        navigator(self.app).action_show_help()

    def action_quit(self) -> None:
        navigator(self.app).request_quit()
