"""The difference of two runs (`sikte-tui diff A B`): one table per DiffTable (by syscall,
by command name, by file, by remote endpoint; Tab goes to the next), each row with A, B and
the change of its metrics, sorted by the largest change in total time. Rows in one run only
are marked and dimmed. `/` filters on the row's name, `<` `>` `i` sort, Enter overlays the
row's two latency histograms (tui/diff_histogram.py).

The rows never change (a diff is computed once), so each redraw sorts and formats them whole;
cells are made only for the rows on screen. What the cells hold and which columns fit is
tui/diff_rows.py's; this module is the screen.
"""

from __future__ import annotations

import os

from rich.segment import Segment
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.message import Message
from textual.screen import Screen
from textual.strip import Strip
from textual.widgets import Static

from tracing.boundary.display_text import sanitize
from tracing.model.diff import Diff, DiffRow, DiffSide, DiffTable
from tracing.model.units import format_elapsed
from tui.actions import bindings_for
from tui.diff_histogram import A_STYLE, B_STYLE, DiffHistogramScreen
from tui.diff_rows import (
    HISTOGRAM_TABLES,
    KEY_LABELS,
    Fitted,
    describe_row,
    fit_diff_columns,
    largest_first,
    primary_metric,
    shown_key,
    sorted_rows,
    split_key,
    table_rows,
)
from tui.diff_rows import label as metric_label
from tui.filter_bar import FilterBar
from tui.footer import KeyFooter
from tui.navigation import navigator
from tui.screens import FilterKey, SortKeys
from tui.table import KeyedTable
from tui.text import data, line

SCROLLBAR = 2  # the table's vertical scrollbar, kept free so columns never slide under it
LABEL_LIMIT = 200  # a side's label and path: the header line is cut to the screen anyway
# Rows in the table: the first ones in the current order. A session's files can be 100,000s;
# nobody scrolls past a few thousand, and each row made costs every redraw.
MAX_ROWS = 2_000


class DiffKeyedTable(KeyedTable):
    """A KeyedTable whose rows in one run only are dimmed, and that says when its cursor
    moves (for the line under it)."""

    COMPONENT_CLASSES = KeyedTable.COMPONENT_CLASSES | {"table--only"}
    DEFAULT_CSS = """
    DiffKeyedTable > .table--only { color: $text-muted; text-style: italic; }
    """

    class CursorMoved(Message):
        pass

    def move_cursor(self, index: int) -> None:
        super().move_cursor(index)
        self.post_message(self.CursorMoved())

    def _row_strip(self, index: int) -> Strip:
        row = self.rows[index]
        if not row.values.get("only"):
            return super()._row_strip(index)
        style = self.rich_style + self.get_component_rich_style("table--only")
        if index == self.cursor:
            style = style + self.get_component_rich_style("table--cursor")
        elif index % 2:
            style = style + self.get_component_rich_style("table--stripe")
        cells = row.cells
        text = self._cells([cells[c.key] for c in self.shown_columns]) + " " * self.fit.gap
        return Strip([Segment(text, style)])


def side_line(name: str, side: DiffSide, style: str) -> Text:
    """"A  label · 12.3s · host · kernel arch": the label and machine come from the files."""
    machine = " ".join(p for p in (side.host, side.kernel, side.arch) if p)
    parts = [format_elapsed(side.duration_s)] + ([machine] if machine else [])
    # The label names the file already (and the stretch): its folder is what it leaves out.
    folder, file = os.path.split(side.path.rstrip("/"))
    where = f"in {folder}" if file and file in side.label and folder else side.path
    return line((f"{name} ", style), (sanitize(side.label, LABEL_LIMIT), style),
                f" · {' · '.join(parts)}", (f"  {sanitize(where, LABEL_LIMIT)}", "dim"))


class DiffScreen(FilterKey, SortKeys, Screen[None]):
    ACTION_SCREEN = "diff"
    BINDINGS = bindings_for("diff")
    DEFAULT_CSS = """
    DiffScreen #diff-header {
        height: auto; padding: 0 1; background: $panel; text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    DiffScreen #diff-notes { height: auto; padding: 0 1; background: $panel; }
    DiffScreen #diff-tabs { height: 1; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    DiffScreen DiffKeyedTable { height: 1fr; }
    DiffScreen #diff-empty {
        height: 1fr; content-align: center middle; text-align: center; color: $text-muted;
    }
    DiffScreen #diff-selected { height: auto; max-height: 3; padding: 0 1; background: $panel; }
    """

    def __init__(self, diff: Diff) -> None:
        super().__init__()
        self.diff = diff
        # The syscalls table first, then the others in the diff's order.
        self.tables = sorted(diff.tables, key=lambda t: t.name != "syscalls")
        self.current = 0
        self.filter_text = ""
        self._sorts = {t.name: (f"{primary_metric(t)}:d", True) for t in self.tables}
        self._shown: list[DiffRow] = []  # the rows in the table: the first MAX_ROWS
        self._matched = 0  # the current table's rows that pass the filter
        self._fits: dict[tuple[str, int], Fitted] = {}  # by table and width
        self._by_name: dict[str, tuple[list[DiffRow], list[str]]] = {}  # see _matching
        self.fitted = Fitted((), (), ())
        self._sides: list[Text] = []  # the header's lines about A and B

    # sort_column and sort_reverse (for SortKeys) are the current table's
    @property
    def sort_column(self) -> str:  # type: ignore[override]
        return self._sorts[self.table.name][0] if self.tables else ""

    @property
    def sort_reverse(self) -> bool:  # type: ignore[override]
        return self._sorts[self.table.name][1] if self.tables else True

    @property
    def table(self) -> DiffTable:
        return self.tables[self.current]

    def compose(self) -> ComposeResult:
        yield Static(id="diff-header")
        yield Static(id="diff-notes")
        yield Static(id="diff-tabs")
        yield DiffKeyedTable(id="diff-table")
        yield Static(id="diff-empty")
        yield Static(id="diff-selected")
        yield FilterBar(lambda text: text, placeholder="/ filter: part of the name "
                        "(Esc clears)", input_id="diff-filter", message_id="diff-filter-message",
                        keep=self._keep_filter, redraw=self._redraw, leave=self._focus_table,
                        clear=self.action_clear_filter)
        yield KeyFooter()

    def on_mount(self) -> None:
        self._draw_header()
        self._focus_table()
        self._redraw()

    def on_resize(self) -> None:
        self._redraw()

    def _table(self) -> DiffKeyedTable:
        return self.query_one("#diff-table", DiffKeyedTable)

    # -- drawing ----------------------------------------------------------------------------

    def _draw_header(self) -> None:
        diff = self.diff
        notes = list(diff.notes)
        if diff.by_name and not notes:
            notes.append("the runs come from different machines: syscalls matched by name")
        # Notes wrap: that the runs were matched by name only must be read whole.
        shown = self.query_one("#diff-notes", Static)
        shown.update(Text("\n").join(
            line(("⚠ ", "bold yellow"), (sanitize(note, LABEL_LIMIT), "yellow"))
            for note in notes))
        shown.display = bool(notes)
        self._sides = [side_line("A", diff.a, A_STYLE), side_line("B", diff.b, B_STYLE)]
        self._draw_title()

    def _draw_title(self) -> None:
        """The first line of the header (what Δ means, the sort and the filter), then the
        runs: each cut at the screen's edge, never wrapped."""
        title = line(("sikte-tui diff", "bold"), "  Δ = B − A (share of A)",
                     f" · sort {self._sort_label()} {'▼' if self.sort_reverse else '▲'}")
        if self.filter_text:
            title.append(" · filter ")
            title.append(sanitize(self.filter_text, 40), style="bold")
        text = Text("\n").join([title, *self._sides])
        text.no_wrap, text.overflow = True, "ellipsis"
        self.query_one("#diff-header", Static).update(text)

    def _redraw(self) -> None:
        if not self.tables:
            self._draw_empty("the two runs have nothing to compare")
            return
        table = self.table
        ordered = sorted_rows(self._matching(), self.sort_column, self.sort_reverse)
        self._matched = len(ordered)
        self._shown = ordered[:MAX_ROWS]
        self.fitted = self._fit()
        widget = self._table()
        with self.app.batch_update():
            key = widget.cursor_key
            widget.set_columns(self.fitted.columns)
            widget.set_sort(self.sort_column, self.sort_reverse)
            rows = table_rows(self._shown, self.fitted.columns)
            widget.update_rows(rows)
            index = next((i for i, r in enumerate(rows) if r.key == key), None)
            if index is not None:
                widget.move_cursor(index)
            self._draw_tabs()
            self._draw_title()
            if not table.rows:
                self._draw_empty(f"no {table.name} in either run")
            elif not self._shown:
                self._draw_empty("no row matches the filter: Esc clears it")
            else:
                self._draw_empty("")
            self._draw_selected()

    def _matching(self) -> list[DiffRow]:
        """The current table's rows whose name holds the filter's text, in any case."""
        table = self.table
        if table.name not in self._by_name:
            # Once per table: the rows by name (each sort then starts from that order, and
            # sorting sorted rows is linear), their names sanitized and folded for the filter.
            rows = sorted(table.rows, key=lambda r: r.key)
            self._by_name[table.name] = (rows, [shown_key(r).casefold() for r in rows])
        rows, folded = self._by_name[table.name]
        if not self.filter_text:
            return rows
        text = self.filter_text.casefold()
        return [r for r, name in zip(rows, folded, strict=True) if text in name]

    def _fit(self) -> Fitted:
        """The columns for this width, sized to the table's rows (not the filter's or the
        sort's): the same table keeps its columns while it is sorted and filtered."""
        available = max(self.app.size.width - SCROLLBAR, 40)
        key = (self.table.name, available)
        if key not in self._fits:
            self._fits[key] = fit_diff_columns(self.table, self.table.rows, available)
        return self._fits[key]

    def _draw_tabs(self) -> None:
        text = Text()
        for index, table in enumerate(self.tables):
            matched = self._matched if index == self.current else len(table.rows)
            count = f"{matched:,}" if matched == len(table.rows) \
                else f"{matched:,} of {len(table.rows):,}"
            text.append(f" {table.title} {count} ",
                        style="bold reverse" if index == self.current else "dim")
            text.append(" ")
        if len(self._shown) < self._matched:
            text.append(f"showing the first {len(self._shown):,}: / filters", style="yellow")
        text.no_wrap, text.overflow = True, "ellipsis"
        self.query_one("#diff-tabs", Static).update(text)

    def _sort_label(self) -> str:
        column = self.sort_column
        if not self.tables:
            return "-"
        if column in ("key", "only"):
            return KEY_LABELS.get(self.table.name, "name") if column == "key" else "only"
        metric, part = split_key(column)
        return f"|Δ {metric_label(metric)}|" if part == "d" \
            else f"{metric_label(metric)} {part.upper()}"

    def _draw_empty(self, why: str) -> None:
        empty = self.query_one("#diff-empty", Static)
        self._table().display = not why
        empty.display = bool(why)
        empty.update(why)

    def _selected(self) -> DiffRow | None:
        index = self._table().cursor
        return self._shown[index] if 0 <= index < len(self._shown) else None

    def _draw_selected(self) -> None:
        row = self._selected()
        text = describe_row(self.table, row) if row is not None else ""
        selected = self.query_one("#diff-selected", Static)
        selected.update(data(text))  # names and paths from the session files
        selected.display = bool(text)

    @on(DiffKeyedTable.CursorMoved)
    def _cursor_moved(self) -> None:
        self._draw_selected()

    # -- tables -----------------------------------------------------------------------------

    def action_next_table(self) -> None:
        self._switch(1)

    def action_prev_table(self) -> None:
        self._switch(-1)

    def _switch(self, step: int) -> None:
        if not self.tables:
            return
        self.current = (self.current + step) % len(self.tables)
        self._table().move_cursor(0)
        self._redraw()

    # -- sorting ----------------------------------------------------------------------------

    def _set_sort(self, column: str, reverse: bool) -> None:
        self._sorts[self.table.name] = (column, reverse)
        self._redraw()

    def _step_sort(self, step: int) -> None:
        keys = [c.key for c in self.fitted.columns]
        if not keys:
            return
        index = keys.index(self.sort_column) if self.sort_column in keys else 0
        column = keys[(index + step) % len(keys)]
        self._set_sort(column, largest_first(column))

    @on(KeyedTable.HeaderClicked)
    def _header_clicked(self, event: KeyedTable.HeaderClicked) -> None:
        if event.column == self.sort_column:
            self.action_sort_invert()
        else:
            self._set_sort(event.column, largest_first(event.column))

    # -- filter -----------------------------------------------------------------------------

    def action_filter(self) -> None:
        self.query_one(FilterBar).open()

    def _keep_filter(self, text: str) -> None:
        self.filter_text = text

    def _focus_table(self) -> None:
        self.set_focus(self._table())  # now, not later: the next key is the table's

    def action_clear_filter(self) -> None:
        bar = self.query_one(FilterBar)
        bar.input.value = ""
        bar.forget()
        self.filter_text = ""
        self._focus_table()
        self._redraw()

    # -- the rest ---------------------------------------------------------------------------

    def action_histograms(self) -> None:
        row = self._selected()
        if row is None:
            return
        if self.table.name not in HISTOGRAM_TABLES:
            self.notify(f"{self.table.title}: no latency histograms (only syscalls and "
                        f"commands have them)", timeout=4)
            return
        self.app.push_screen(DiffHistogramScreen(row, KEY_LABELS[self.table.name]))

    def action_help(self) -> None:
        navigator(self.app).action_show_help()

    def action_quit(self) -> None:
        navigator(self.app).request_quit()
