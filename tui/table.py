"""A virtual table: it holds a list of rows and draws only the visible lines
(ScrollView.render_line), so a refresh costs the same with 30 rows or 50,000.

The header stays on the first line; clicking a column label posts HeaderClicked. The cursor
follows its row by key when the rows change order.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.segment import Segment
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tracing.display_text import sanitize
from tui.rows import Column, Row

GAP = 2  # spaces between columns


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
        self.columns: tuple[Column, ...] = ()
        self.rows: list[Row] = []
        self.widths: list[int] = []
        self.cursor = 0
        self.sort_column = ""
        self.sort_reverse = True
        self._index: dict[str, int] = {}

    # -- data -------------------------------------------------------------------------------

    def set_columns(self, columns: Sequence[Column]) -> None:
        if tuple(columns) == self.columns:
            return
        self.columns = tuple(columns)
        self.widths = [max(len(c.label) + 2, c.width) for c in columns]
        self.rows, self._index, self.cursor = [], {}, 0
        self._resize()

    def set_sort(self, column: str, reverse: bool) -> None:
        self.sort_column, self.sort_reverse = column, reverse
        self.refresh()

    def update_rows(self, rows: Sequence[Row]) -> None:
        """Show exactly `rows`, in this order; the cursor stays on its row if it remains."""
        current = self.cursor_key
        self.rows = list(rows)
        self._index = {r.key: i for i, r in enumerate(self.rows)}
        if current is not None and current in self._index:
            self.cursor = self._index[current]
        self.cursor = min(self.cursor, max(len(self.rows) - 1, 0))
        self._resize()
        self._keep_cursor_visible()

    @property
    def row_count(self) -> int:
        return len(self.rows)

    @property
    def cursor_key(self) -> str | None:
        return self.rows[self.cursor].key if 0 <= self.cursor < len(self.rows) else None

    def _resize(self) -> None:
        width = sum(self.widths) + GAP * len(self.widths)
        self.virtual_size = Size(width, len(self.rows) + 1)
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
        return strip.crop(scroll_x, scroll_x + width).extend_cell_length(width, self.rich_style)

    def _cells(self, texts: Sequence[str]) -> str:
        parts = []
        for text, column, width in zip(texts, self.columns, self.widths, strict=True):
            # Cells hold names and command lines from outside: drawn as segments, a control
            # character in one would reach the terminal. Cut plainly, as before (sanitizing
            # is idempotent, so cells sanitized earlier are unchanged).
            text = sanitize(text, width + 1)[:width]
            parts.append(text.rjust(width) if column.numeric else text.ljust(width))
        return (" " * GAP).join(parts)

    def _header_strip(self) -> Strip:
        header = self.get_component_rich_style("table--header")
        sorted_style = self.get_component_rich_style("table--sorted")
        segments = []
        for column, width in zip(self.columns, self.widths, strict=True):
            marker = (" ▼" if self.sort_reverse else " ▲") if column.key == self.sort_column \
                else "  "
            label = column.label + marker
            text = label.rjust(width) if column.numeric else label.ljust(width)
            style = sorted_style if column.key == self.sort_column else header
            segments += [Segment(text, style), Segment(" " * GAP, header)]
        return Strip(segments)

    def _row_strip(self, index: int) -> Strip:
        row = self.rows[index]
        style = self.rich_style
        if index == self.cursor:
            style = style + self.get_component_rich_style("table--cursor")
        elif index % 2:
            style = style + self.get_component_rich_style("table--stripe")
        text = self._cells([row.cells[c.key] for c in self.columns]) + " " * GAP
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
            column = self._column_at(event.x + int(self.scroll_offset.x))
            if column is not None:
                self.post_message(self.HeaderClicked(column))
            return
        self.move_cursor(event.y - 1 + int(self.scroll_offset.y))

    def _column_at(self, x: int) -> str | None:
        left = 0
        for column, width in zip(self.columns, self.widths, strict=True):
            if left <= x < left + width + GAP:
                return column.key
            left += width + GAP
        return None
