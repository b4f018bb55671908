"""A virtual table: it holds a list of rows and draws only the visible lines
(ScrollView.render_line), so a refresh costs the same with 30 rows or 50,000.

The header stays on the first line; clicking a column label posts HeaderClicked. The cursor
follows its row by key when the rows change order.

Narrow terminals: the columns that do not fit go by their declared priority (Column.priority,
highest first; 0 always stays, and so does the sort column), optional columns hide while no
row has a value, and the first column stays in place when the rest scrolls sideways.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.segment import Segment
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tracing.boundary.display_text import sanitize
from tui.columns import GAP, Column, Row, RowKey

NARROW_GAP = 1  # when only that lets the columns that must stay fit
EMPTY_CELLS = frozenset({"", "-"})


def column_width(column: Column) -> int:
    """A column is at least as wide as its label and the sort marker."""
    return max(len(column.label) + 2, column.width)


def span(columns: Sequence[Column], gap: int) -> int:
    """Cells taken by `columns` side by side (no gap after the last)."""
    return sum(column_width(c) for c in columns) + gap * max(len(columns) - 1, 0)


@dataclass(frozen=True)
class Layout:
    columns: tuple[Column, ...]  # the ones drawn, in their declared order
    gap: int


def fit_columns(columns: Sequence[Column], available: int, sort: str = "",
                empty: frozenset[str] = frozenset()) -> Layout:
    """The columns to draw in `available` cells: those of priority 0 and the sort column
    always; then by priority (1 first) while the next one fits, so a column never shows
    without the ones that matter more. Optional columns in `empty` (no row has a value)
    are left out unless they are the sort column. What still does not fit scrolls."""
    candidates = [c for c in columns if c.key == sort or not (c.optional and c.key in empty)]
    kept = {c.key for c in candidates if c.priority == 0 or c.key == sort}
    required = [c for c in candidates if c.key in kept]
    gap = GAP if span(required, GAP) <= available or span(required, NARROW_GAP) > available \
        else NARROW_GAP
    for extra in sorted((c for c in candidates if c.key not in kept), key=lambda c: c.priority):
        trial = [c for c in candidates if c.key in kept or c is extra]
        if span(trial, gap) > available:
            break
        kept.add(extra.key)
    return Layout(tuple(c for c in candidates if c.key in kept), gap)


class KeyedTable(ScrollView, can_focus=True):
    """Rows identified by Row.key, columns by Column.key; sorted by whoever builds the rows."""

    COMPONENT_CLASSES = {"table--header", "table--sorted", "table--cursor", "table--stripe"}
    DEFAULT_CSS = """
    KeyedTable { background: $surface; }
    KeyedTable > .table--header { text-style: bold; background: $panel; }
    KeyedTable > .table--sorted { text-style: bold reverse; background: $panel; }
    KeyedTable > .table--cursor { background: $accent 40%; text-style: bold; }
    KeyedTable:focus > .table--cursor { background: $accent; }
    KeyedTable > .table--stripe { background: $boost; }
    """
    BINDINGS = [
        Binding("up,k", "cursor(-1)", show=False),
        Binding("down,j", "cursor(1)", show=False),
        Binding("pageup", "page(-1)", show=False),
        Binding("pagedown", "page(1)", show=False),
        Binding("home", "jump(0)", show=False),
        Binding("end", "jump(-1)", show=False),
    ]

    class HeaderClicked(Message):
        def __init__(self, column: str) -> None:
            super().__init__()
            self.column = column

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.columns: tuple[Column, ...] = ()  # every column the table was given
        self.widths: list[int] = []  # theirs
        self.fit = Layout((), GAP)  # the ones drawn (fit_columns)
        self.frozen = 1  # leading columns that stay when scrolling sideways
        self.rows: list[Row] = []
        self._empty: frozenset[str] = frozenset()  # optional columns without a value
        self.cursor = 0
        self.sort_column = ""
        self.sort_reverse = True
        self._index: dict[RowKey, int] = {}

    # -- data -------------------------------------------------------------------------------

    def set_columns(self, columns: Sequence[Column]) -> None:
        if tuple(columns) == self.columns:
            return
        self.columns = tuple(columns)
        self.widths = [column_width(c) for c in columns]
        self.rows, self._index, self.cursor = [], {}, 0
        self._empty = frozenset(c.key for c in columns if c.optional)
        self._relayout()

    def set_sort(self, column: str, reverse: bool) -> None:
        self.sort_column, self.sort_reverse = column, reverse
        self._relayout()

    def update_rows(self, rows: Sequence[Row], anchor: bool = False) -> None:
        """Show exactly `rows`, in this order; the cursor stays on its row if it remains.
        `anchor`: and that row stays on its line of the screen (rows added above it scroll
        the view), so a list that grows at the top does not move under the reader."""
        current, before = self.cursor_key, self.cursor
        self.rows = list(rows)
        self._index = {r.key: i for i, r in enumerate(self.rows)}
        if current is not None and current in self._index:
            self.cursor = self._index[current]
            if anchor and self.cursor != before:
                self._resize()
                self.scroll_to(y=self.scroll_offset.y + self.cursor - before, animate=False,
                               immediate=True)
        self.cursor = min(self.cursor, max(len(self.rows) - 1, 0))
        empty = self._empty_columns()
        if empty != self._empty:
            self._empty = empty
            self._relayout()
        else:
            self._resize()
        self._keep_cursor_visible()

    @property
    def row_count(self) -> int:
        return len(self.rows)

    @property
    def cursor_key(self) -> RowKey | None:
        return self.rows[self.cursor].key if 0 <= self.cursor < len(self.rows) else None

    @property
    def shown_columns(self) -> tuple[Column, ...]:
        """The columns drawn, left to right."""
        return self.fit.columns

    def header_x(self, column: str) -> int | None:
        """Where a column's label starts on screen (scrolled sideways or not), or None
        when it is not drawn."""
        left, scroll_x = 0, int(self.scroll_offset.x)
        for index, c in enumerate(self.shown_columns):
            if c.key == column:
                return left if index < self.frozen else left - scroll_x
            left += column_width(c) + self.fit.gap
        return None

    def _empty_columns(self) -> frozenset[str]:
        """Optional columns that no row fills (stops at the first row that does)."""
        return frozenset(
            c.key for c in self.columns if c.optional
            and all(str(r.values.get(c.key, "")) in EMPTY_CELLS for r in self.rows))

    def _available(self) -> int:
        return self.size.width

    def _relayout(self) -> None:
        self.fit = fit_columns(self.columns, self._available(), self.sort_column,
                                  self._empty)
        self._resize()

    def on_resize(self) -> None:
        self._relayout()

    def _frozen_width(self) -> int:
        frozen = self.shown_columns[:self.frozen]
        return span(frozen, self.fit.gap) + self.fit.gap if frozen else 0

    def _resize(self) -> None:
        width = span(self.shown_columns, self.fit.gap) + self.fit.gap
        size = Size(width, len(self.rows) + 1)
        if size != self.virtual_size:
            self.virtual_size = size
            # A table of height auto grows with its rows: that needs a new layout.
            self.refresh(layout=self.styles.height is None or self.styles.height.is_auto)
        else:
            self.refresh()

    # -- drawing ----------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        if y == 0:
            strip = self._header_strip()
        else:
            index = y - 1 + scroll_y
            if index >= len(self.rows):
                return Strip.blank(width, self.rich_style)
            strip = self._row_strip(index)
        # The frozen columns stay at the left; the others scroll beside them.
        frozen = min(self._frozen_width(), width)
        moving = strip.crop(frozen + scroll_x, scroll_x + width)
        if frozen:
            moving = Strip.join([strip.crop(0, frozen), moving])
        return moving.extend_cell_length(width, self.rich_style)

    def _cells(self, texts: Sequence[str]) -> str:
        parts = []
        for text, column in zip(texts, self.shown_columns, strict=True):
            width = column_width(column)
            # Cells hold names and command lines from outside: drawn as segments, a control
            # character in one would reach the terminal. Cut plainly, as before (sanitizing
            # is idempotent, so cells sanitized earlier are unchanged).
            text = sanitize(text, width + 1)[:width]
            parts.append(text.rjust(width) if column.numeric else text.ljust(width))
        return (" " * self.fit.gap).join(parts)

    def _header_strip(self) -> Strip:
        header = self.get_component_rich_style("table--header")
        sorted_style = self.get_component_rich_style("table--sorted")
        segments = []
        gap = " " * self.fit.gap
        for column in self.shown_columns:
            width = column_width(column)
            marker = (" ▼" if self.sort_reverse else " ▲") if column.key == self.sort_column \
                else "  "
            label = column.label + marker
            text = label.rjust(width) if column.numeric else label.ljust(width)
            style = sorted_style if column.key == self.sort_column else header
            segments += [Segment(text, style), Segment(gap, header)]
        return Strip(segments)

    def _row_strip(self, index: int) -> Strip:
        row = self.rows[index]
        style = self.rich_style
        if index == self.cursor:
            style = style + self.get_component_rich_style("table--cursor")
        elif index % 2:
            style = style + self.get_component_rich_style("table--stripe")
        cells = row.cells
        text = self._cells([cells[c.key] for c in self.shown_columns]) + " " * self.fit.gap
        return Strip([Segment(text, style)])

    # -- cursor and scrolling ---------------------------------------------------------------

    def _visible_rows(self) -> int:
        return max(self.size.height - 1, 1)

    def _keep_cursor_visible(self) -> None:
        top = int(self.scroll_offset.y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + self._visible_rows():
            self.scroll_to(y=self.cursor - self._visible_rows() + 1, animate=False)

    def move_cursor(self, index: int) -> None:
        if not self.rows:
            return
        self.cursor = max(0, min(index, len(self.rows) - 1))
        self._keep_cursor_visible()
        self.refresh()

    def action_cursor(self, step: int) -> None:
        self.move_cursor(self.cursor + step)

    def action_page(self, direction: int) -> None:
        self.move_cursor(self.cursor + direction * self._visible_rows())

    def action_jump(self, where: int) -> None:
        self.move_cursor(len(self.rows) - 1 if where < 0 else 0)

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:
            # Frozen columns do not scroll: a click there is on them.
            x = event.x if event.x < self._frozen_width() else event.x + int(self.scroll_offset.x)
            column = self._column_at(x)
            if column is not None:
                self.post_message(self.HeaderClicked(column))
            return
        self.move_cursor(event.y - 1 + int(self.scroll_offset.y))

    def _column_at(self, x: int) -> str | None:
        left = 0
        for column in self.shown_columns:
            width = column_width(column) + self.fit.gap
            if left <= x < left + width:
                return column.key
            left += width
        return None
