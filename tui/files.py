"""The Files view (F): per path, the processes that used it, opens and failed opens by errno,
reads and bytes read, writes and bytes written, and the time spent in I/O; `g` sums them per
directory; Enter opens the event log on that path's (or directory's) events.

It reads the newest snapshot's per-file totals (cumulative) and redraws when a new snapshot
arrives: tui/file_index.py keeps the summaries and their order across snapshots, so a redraw
costs the entries that changed, and the table holds at most MAX_ROWS rows (the first ones in
the current sort; the title says how many there are). What the rows hold is
tui/file_rows.py's; this module is the screen.
"""

from __future__ import annotations

import re

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.widgets import Static

from tracing.boundary.display_text import sanitize
from tracing.query.event_filter import path_term
from tracing.sources import SnapshotSource
from tui.actions import bindings_for
from tui.connections import ConnectionTable
from tui.event_log import EventLogScreen
from tui.file_index import FileIndex, Ranking
from tui.file_rows import (
    FILE_COLUMNS,
    PathSummary,
    describe_summary,
    file_rows,
    fitted_columns,
    largest_first,
)
from tui.footer import KeyFooter
from tui.screens import DrillDown, SortKeys, ThrottledRedraw
from tui.session import SessionView
from tui.table import KeyedTable
from tui.text import data, line

SCROLLBAR = 2
DEFAULT_SORT = "io_ns"
# Rows in the table: the first ones in the current sort. Past a few thousand nobody scrolls,
# and every row made costs each redraw (200,000 paths: seconds, keys waiting).
MAX_ROWS = 2_000


class FilesScreen(ThrottledRedraw, SortKeys, DrillDown):
    ACTION_SCREEN = "files"
    BINDINGS = bindings_for("files")
    DEFAULT_CSS = """
    FilesScreen #files-title { height: auto; padding: 0 1; background: $panel; }
    FilesScreen ConnectionTable { height: 1fr; }
    FilesScreen #files-empty {
        height: 1fr; content-align: center middle; text-align: center; color: $text-muted;
    }
    FilesScreen #file-selected { height: auto; max-height: 3; padding: 0 1; background: $panel; }
    """

    def __init__(self, session: SessionView, source: SnapshotSource | None = None) -> None:
        super().__init__()
        self.session = session
        self.source = source
        self.grouped = False
        self.sort_column = DEFAULT_SORT
        self.sort_reverse = True
        self._summaries: list[PathSummary] = []
        # The screen's own, freed with it: with 200,000 paths it holds ~100 MB, too much to
        # keep for a view not shown (reopening reads them whole again, ~1.5 s).
        self._index = FileIndex()
        self._drawn: tuple[int, int] | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="files-title")
        yield ConnectionTable(id="files")
        yield Static(id="files-empty")
        yield Static(id="file-selected")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#files-empty").display = False
        self._table().focus()
        self.redraw_from_session()

    def on_screen_resume(self) -> None:
        self.redraw_from_session()

    def on_resize(self) -> None:
        self._redraw()

    def _table(self) -> ConnectionTable:
        return self.query_one("#files", ConnectionTable)

    # -- drawing ----------------------------------------------------------------------------

    def _state(self) -> tuple[int, int]:
        latest = self.session.latest
        return (latest.seq, latest.epoch) if latest is not None else (-1, -1)

    def redraw_from_session(self) -> None:
        if self._state() != self._drawn:
            self._redraw()

    def _redraw(self) -> None:
        self._drawn = self._state()
        ranking = self._ranked()
        self._summaries = ranking.top(MAX_ROWS)
        table = self._table()
        # As the event log's: the screen's width, minus the scrollbar and as much again.
        available = max(self.app.size.width - 2 * SCROLLBAR, 40)
        columns = fitted_columns(available, self.sort_column)
        with self.app.batch_update():
            if columns != table.columns:
                key = table.cursor_key
                table.set_columns(columns)
                table.set_sort(self.sort_column, self.sort_reverse)
                rows = file_rows(self._summaries, columns)
                table.update_rows(rows)
                index = next((i for i, r in enumerate(rows) if r.key == key), None)
                if index is not None:
                    table.move_cursor(index)
            else:
                table.update_rows(file_rows(self._summaries, columns))
            self._draw_title(len(self._index.paths), len(ranking))
            self._draw_empty()
            self._draw_selected()

    def _ranked(self) -> Ranking:
        """The summaries brought up to the newest snapshot, in the current order."""
        latest = self.session.latest
        self._index.update(latest.files if latest is not None else {},
                           latest.paths if latest is not None else None)
        return self._index.ranked(self.grouped, self.sort_column, self.sort_reverse)

    def _draw_title(self, paths: int, rows: int) -> None:
        arrow = "▼" if self.sort_reverse else "▲"
        label = next(c.label for c in FILE_COLUMNS if c.key == self.sort_column)
        shown = len(self._summaries)
        cut = f"showing {shown:,} of {rows:,}" if rows > shown else ""
        parts = [f"{cut} paths; g to group by directory" if cut and not self.grouped
                 else f"{paths:,} paths"]
        table = self.session.latest.paths if self.session.latest is not None else None
        if table is not None and table.overflow:  # the path table's bound: none are lost
            parts.append(f"{table.overflow:,} more names counted as (other)")
        if self.grouped:
            parts.append(f"by directory ({cut or f'{rows:,}'})")
        parts.append(f"sort {label} {arrow}")
        self.query_one("#files-title", Static).update(
            line(("Files", "bold"), ": ", " · ".join(parts)))

    def _draw_empty(self) -> None:
        empty = self.query_one("#files-empty", Static)
        any_shown = bool(self._summaries)
        self._table().display = any_shown
        empty.display = not any_shown
        if not any_shown:
            empty.update(Text("No files yet: the per-file accounting counts the opens, reads "
                              "and writes of the traced processes (not with --events none)."))

    def _selected(self) -> PathSummary | None:
        key = self._table().cursor_key
        if key is None or not isinstance(key[0], str):
            return None
        return self._index.level(self.grouped).summary(key[0])

    def _draw_selected(self) -> None:
        summary = self._selected()
        text = describe_summary(summary, self.grouped) if summary is not None else ""
        selected = self.query_one("#file-selected", Static)
        selected.update(data(text))  # a path: outside text
        selected.display = bool(text)

    @on(ConnectionTable.CursorMoved)
    def _cursor_moved(self) -> None:
        self._draw_selected()

    # -- sorting ----------------------------------------------------------------------------

    def _set_sort(self, column: str, reverse: bool) -> None:
        self.sort_column, self.sort_reverse = column, reverse
        self._table().set_sort(column, reverse)
        self._redraw()

    def _step_sort(self, step: int) -> None:
        shown = {c.key for c in self._table().columns}
        keys = [c.key for c in FILE_COLUMNS]
        index = keys.index(self.sort_column)
        for _ in keys:
            index = (index + step) % len(keys)
            if keys[index] in shown:
                break
        self._set_sort(keys[index], largest_first(keys[index]))

    @on(KeyedTable.HeaderClicked)
    def _header_clicked(self, event: KeyedTable.HeaderClicked) -> None:
        if event.column == self.sort_column:
            self.action_sort_invert()
        else:
            self._set_sort(event.column, largest_first(event.column))

    # -- actions ----------------------------------------------------------------------------

    def action_toggle_directories(self) -> None:
        self.grouped = not self.grouped
        self._redraw()

    def action_file_events(self) -> None:
        summary = self._selected()
        if summary is None:
            return
        shown = sanitize(summary.path)  # as the filter bar and the event log hold it
        if self.grouped and summary.path.endswith("/"):
            term = f"path~^{re.escape(shown)}[^/]*$"
            term = path_term_quoted(term)
        else:
            term = path_term(shown)
        self.app.push_screen(EventLogScreen(self.session, self.source, filter_text=term))


def path_term_quoted(term: str) -> str:
    """A term quoted whole when it holds a space or a quote (the filter splits at spaces)."""
    if not any(c.isspace() or c in "\"'" for c in term):
        return term
    field, _, value = term.partition("~")
    quote = "'" if '"' in value else '"'
    return f"{field}~{quote}{value}{quote}"
