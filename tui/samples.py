"""The Samples drill-down: top functions of the CPU stack samples, a function's callers and
callees, and a flame (icicle) view. They read the samples the session keeps (SessionView) and
redraw when the session gets new ones; the analyses are tracing.model.samples' pure functions."""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Iterable, Sequence

from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Static

from tracing.boundary.display_text import sanitize
from tracing.model.samples import (
    NO_CALLER,
    SELF,
    FlameNode,
    FunctionCount,
    IcicleCell,
    SampleSet,
    StackSample,
    find_node,
    flame_tree,
    icicle,
    neighbours,
    next_scope,
    top_functions,
)
from tracing.model.stats import Snapshot
from tracing.model.units import format_id
from tui.actions import bindings_for
from tui.columns import Column, Row, RowKey
from tui.footer import KeyFooter
from tui.screens import DrillDown, SortKeys, ThrottledRedraw
from tui.session import SessionView
from tui.table import GAP, KeyedTable
from tui.text import line

SCOPE_LABELS = {"all": "all processes", "process": "per process", "thread": "per thread"}
_PID, _TID = Column("pid", "pid"), Column("tid", "tid")
_COMM = Column("comm", "comm", False, 15)
_METRICS = (Column("self", "self", True, 8), Column("self_pct", "self%", True, 6),
            Column("total", "total", True, 8), Column("total_pct", "total%", True, 6),
            Column("module", "module", False, 18))
_SCOPE_COLUMNS = {"all": (), "process": (_PID, _COMM), "thread": (_PID, _TID, _COMM)}
FUNCTION_WIDTHS = (20, 36, 60)  # narrowest, before the screen is measured, widest


# At 80 columns these go first, in this order, so function names stay readable.
_DROPPABLE = ("total_pct", "self_pct", "module", "comm")
READABLE_FUNCTION = 30


def function_columns(scope: str, width: int = 0, sort: str = "") -> tuple[Column, ...]:
    """The columns for a table `width` cells wide: function names (C++ ones run long) get
    what the others leave. Where that is too little, the percentages, then the module and
    the comm make room (never the sort column)."""
    others = [*_SCOPE_COLUMNS[scope], *_METRICS]
    narrowest, unmeasured, widest = FUNCTION_WIDTHS
    if not width:
        function = unmeasured
    else:
        def room() -> int:
            return width - sum(max(len(c.label) + 2, c.width) + GAP for c in others) - GAP - 1
        for key in _DROPPABLE:
            if room() >= READABLE_FUNCTION:
                break
            others = [c for c in others if c.key != key or c.key == sort]
        function = min(max(room(), narrowest), widest)
    scope_columns = [c for c in others if c in _SCOPE_COLUMNS[scope]]
    return (*scope_columns, Column("function", "function", False, function),
            *others[len(scope_columns):])


def pct(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


def function_rows(functions: Sequence[FunctionCount], total: int, sort: str,
                  reverse: bool) -> list[Row]:
    """Table rows of top_functions' counts; % are of every sample shown."""
    # Sorted before they become Rows, whose values are typed only as objects.
    entries = [(f, _function_values(f, total)) for f in functions]
    entries.sort(key=lambda e: e[1]["function"])  # ties stay by name, whichever the order
    entries.sort(key=lambda e: e[1][sort], reverse=reverse)
    return [Row((*f.scope, f.function), values, _function_cells(values))
            for f, values in entries]


def _function_values(f: FunctionCount, total: int) -> dict[str, int | float | str]:
    return {
        "pid": f.scope[0] if f.scope else 0, "tid": f.scope[1] if len(f.scope) > 1 else 0,
        "comm": f.comm, "function": f.function, "self": f.self_count,
        "self_pct": pct(f.self_count, total), "total": f.total_count,
        "total_pct": pct(f.total_count, total), "module": f.module.rsplit("/", 1)[-1]}


def _function_cells(values: dict[str, int | float | str]) -> dict[str, str]:
    return {k: f"{v:.1f}" if k.endswith("_pct") else (
        format_id(v) if k in ("pid", "tid") and isinstance(v, int)
        else f"{v:,}" if isinstance(v, int) else str(v))
        for k, v in values.items()}


def thread_named(samples: Iterable[StackSample], snapshot: Snapshot | None,
                 scope: str) -> Iterable[StackSample]:
    """Per thread, each thread under its own name (io-0, worker), not its process's."""
    if scope != "thread" or snapshot is None:
        return samples
    named = {(s.pid, s.tid): info.thread_name(s.tid) for s in samples
             if (info := snapshot.processes.get(s.pid)) is not None}
    return [dataclasses.replace(s, comm=named[s.pid, s.tid])
            if named.get((s.pid, s.tid), s.comm) != s.comm else s for s in samples]


def scope_of_key(row_key: RowKey) -> tuple[tuple[int, ...], str]:
    """(scope, function) of a function row's key: (pid, tid, function), (pid, function) or
    (function,)."""
    *scope, function = row_key
    return tuple(int(p) for p in scope), str(function)


def samples_line(snapshot: Snapshot | None, total: int) -> str:
    """Sampling rate, sample count and what the kernel could not record."""
    hz = snapshot.sample_hz if snapshot is not None else 0
    if not hz and not total:
        return "CPU samples: sampling is off (start with --sample-hz 99)"
    line = f"CPU samples · {hz} Hz · {total:,} samples"
    drops = snapshot.drops if snapshot is not None else None
    if drops is not None:
        notes = ((drops.stacks_missing, "without user stack"),
                 (drops.stack_collisions, "stack lost"), (drops.samples_lost, "uncounted"))
        line += "".join(f" · {n:,} {what}" for n, what in notes if n)
    return line


class SamplesDrillDown(ThrottledRedraw, DrillDown):
    """A view of the session's samples, redrawn when they change."""

    def __init__(self, session: SessionView) -> None:
        super().__init__()
        self.session = session
        self._version = -1  # of the samples last drawn

    def _changed_samples(self) -> SampleSet | None:
        """The session's samples if they changed since the last redraw (which this starts),
        else None."""
        samples = self.session.samples
        if samples.version == self._version:
            return None
        self._version = samples.version
        return samples


class ScopedSamples(SamplesDrillDown):
    """The samples and flame views: samples counted over all processes, per process or per
    thread (the scope; `g` cycles it)."""

    def __init__(self, session: SessionView, scope: str = "all") -> None:
        super().__init__(session)
        self.scope = scope

    @property
    def scope_label(self) -> str:
        return SCOPE_LABELS[self.scope]

    def action_cycle_scope(self) -> None:
        self.scope = next_scope(self.scope)
        self._scope_changed()
        self._version = -1
        self.redraw_from_session()

    def _scope_changed(self) -> None:
        """What a new scope resets besides the counts (columns, a zoom)."""


class SamplesScreen(SortKeys, ScopedSamples):
    """Top functions by self and total samples, over all processes, per process or thread."""

    ACTION_SCREEN = "samples"
    BINDINGS = bindings_for("samples")

    def __init__(self, session: SessionView, scope: str = "all") -> None:
        super().__init__(session, scope)
        self.sort_column = "self"
        self.sort_reverse = True

    def compose(self) -> ComposeResult:
        yield Static(id="samples-title")
        yield KeyedTable(id="functions")
        yield KeyFooter()

    def on_mount(self) -> None:
        self._set_columns()
        self.redraw_from_session()

    def on_screen_resume(self) -> None:
        self.redraw_from_session()

    def _set_columns(self) -> None:
        table = self.query_one(KeyedTable)
        table.set_columns(
            function_columns(self.scope, self.size.width, self.sort_column))
        table.set_sort(self.sort_column, self.sort_reverse)
        self._version = -1

    def on_resize(self) -> None:
        self._set_columns()
        self.redraw_from_session()

    def redraw_from_session(self) -> None:
        samples = self._changed_samples()
        if samples is None:
            return
        total = samples.total
        named = thread_named(samples, self.session.latest, self.scope)
        rows = function_rows(top_functions(named, self.scope), total, self.sort_column,
                             self.sort_reverse)
        self.query_one(KeyedTable).update_rows(rows)
        arrow = "▼" if self.sort_reverse else "▲"
        self.query_one("#samples-title", Static).update(line(
            (samples_line(self.session.latest, total), "bold"),
            f" · {self.scope_label} · sort {self.sort_column} {arrow}"))

    # -- actions ----------------------------------------------------------------------------

    def _scope_changed(self) -> None:
        self._set_columns()

    def _set_sort(self, column: str, reverse: bool) -> None:
        self.sort_column, self.sort_reverse = column, reverse
        self._set_columns()  # a column left out at 80 columns comes back when sorted on
        self.redraw_from_session()

    def _step_sort(self, step: int) -> None:
        columns = function_columns(self.scope)
        keys = [c.key for c in columns]
        column = columns[(keys.index(self.sort_column) + step) % len(keys)]
        self._set_sort(column.key, column.numeric)

    def action_neighbours(self) -> None:
        key = self.query_one(KeyedTable).cursor_key
        if key is not None:
            scope, function = scope_of_key(key)
            self.app.push_screen(NeighboursScreen(self.session, function, scope))

    def action_flame(self) -> None:
        self.app.push_screen(FlameScreen(self.session, self.scope))


_NAME_COLUMNS = {
    "callers": (Column("name", "caller", False, 40), Column("samples", "samples", True, 9),
                Column("pct", "%", True, 6)),
    "callees": (Column("name", "callee", False, 40), Column("samples", "samples", True, 9),
                Column("pct", "%", True, 6)),
}


def neighbour_rows(pairs: Sequence[tuple[str, int]], total: int) -> list[Row]:
    """(function, samples) pairs as rows; % of the shown function's samples."""
    return [Row((name,), {"name": name, "samples": n, "pct": pct(n, total)},
                {"name": name, "samples": f"{n:,}", "pct": f"{pct(n, total):.1f}"})
            for name, n in pairs]


class NeighboursScreen(SamplesDrillDown):
    """One function's callers and callees, counted once per stack; Enter on one shows it."""

    ACTION_SCREEN = "callers"
    BINDINGS = bindings_for("callers")

    def __init__(self, session: SessionView, function: str, scope: tuple[int, ...]) -> None:
        super().__init__(session)
        self.function = function
        self.scope = scope

    def compose(self) -> ComposeResult:
        yield Static(id="callers-title")
        with Horizontal(id="neighbours"):
            with Vertical():
                yield Static("called by", classes="section")
                yield KeyedTable(id="callers")
            with Vertical():
                yield Static("calls", classes="section")
                yield KeyedTable(id="callees")
        yield KeyFooter()

    def on_mount(self) -> None:
        for name, columns in _NAME_COLUMNS.items():
            table = self.query_one(f"#{name}", KeyedTable)
            table.set_columns(columns)
            table.set_sort("samples", True)
        self.redraw_from_session()

    def redraw_from_session(self) -> None:
        samples = self._changed_samples()
        if samples is None:
            return
        found = neighbours(samples, self.function, self.scope)
        total = samples.total
        where = ("all processes" if not self.scope else f"pid {self.scope[0]}"
                 + (f" tid {self.scope[1]}" if len(self.scope) > 1 else ""))
        self.query_one("#callers-title", Static).update(line(
            (self.function, "bold"),  # a frame's name: from the traced program's symbols
            f" · {where} · self {found.self_count:,} "
            f"({pct(found.self_count, total):.1f}%) · total {found.total_count:,} "
            f"({pct(found.total_count, total):.1f}%) of {total:,} samples"))
        self.query_one("#callers", KeyedTable).update_rows(
            neighbour_rows(found.callers, found.total_count))
        self.query_one("#callees", KeyedTable).update_rows(
            neighbour_rows(found.callees, found.total_count))

    def action_show_function(self) -> None:
        """Move to the caller or callee under the cursor of the focused table."""
        table = self.focused if isinstance(self.focused, KeyedTable) else None
        key = table.cursor_key if table is not None else None
        if key is None or key[0] in (NO_CALLER, SELF):
            return
        self.function = str(key[0])
        self._version = -1
        self.redraw_from_session()


# -- the flame (icicle) view -------------------------------------------------------------------


def frame_color(cell: IcicleCell) -> Color:
    """Stable colours: warm for user frames, blue for the kernel's, grey above the stacks."""
    if len(cell.path) <= 1:  # the root and the process names
        return Color.from_rgb(90, 90, 100)
    h = zlib.crc32(cell.name.encode())
    if cell.kernel:
        return Color.from_rgb(60 + h % 50, 110 + (h >> 8) % 70, 190 + (h >> 16) % 50)
    return Color.from_rgb(200 + h % 55, 70 + (h >> 8) % 150, 40 + (h >> 16) % 40)


class Icicle(ScrollView, can_focus=True):
    """Draws icicle rows (tracing.model.samples.icicle): one line per stack depth, root on top,
    each frame as wide as its share of samples; the selected frame reversed."""

    DEFAULT_CSS = "Icicle { background: $surface; }"

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.rows: list[list[IcicleCell]] = []
        self.selected: tuple[str, ...] = ()

    def show(self, rows: list[list[IcicleCell]], selected: tuple[str, ...]) -> None:
        self.rows, self.selected = rows, selected
        self.virtual_size = Size(self.size.width, len(rows))
        depth = len(selected) - len(rows[0][0].path) if rows else 0
        height = max(self.size.height, 1)
        top = int(self.scroll_offset.y)
        if depth < top or depth >= top + height:  # keep the selection on screen
            self.scroll_to(y=max(0, depth - height // 2), animate=False)
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        depth = y + int(self.scroll_offset.y)
        if depth >= len(self.rows):
            return Strip.blank(width, self.rich_style)
        segments, x = [], 0
        for cell in self.rows[depth]:
            if cell.x > x:
                segments.append(Segment(" " * (cell.x - x), self.rich_style))
            style = Style(bgcolor=frame_color(cell), color="black")
            if cell.path == self.selected:
                style += Style(reverse=True, bold=True)
            # A frame's name comes from the traced program's symbols (or its perf map).
            label = sanitize(cell.name, cell.width + 1)[: cell.width - 1].ljust(cell.width - 1)
            segments.append(Segment(label, style))
            segments.append(Segment(" " if cell.width > 1 else "", self.rich_style))
            x = cell.x + cell.width
        return Strip(segments).extend_cell_length(width, self.rich_style).crop(0, width)


class FlameScreen(ScopedSamples):
    """The samples as an icicle: arrows select a frame, Enter zooms into it, Escape zooms
    back out (and, at the top, goes back)."""

    ACTION_SCREEN = "flame"
    BINDINGS = bindings_for("flame")

    def __init__(self, session: SessionView, scope: str = "all") -> None:
        super().__init__(session, scope)
        self.zoom: tuple[str, ...] = ()
        self.zooms: list[tuple[str, ...]] = []  # where Escape goes back to
        self.selected: tuple[str, ...] = ()
        self.flame = FlameNode("all")
        self.rows: list[list[IcicleCell]] = []

    def compose(self) -> ComposeResult:
        yield Static(id="flame-title")
        yield Icicle(id="icicle")
        yield Static(id="flame-selected")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one(Icicle).focus()
        self.redraw_from_session()

    def on_resize(self) -> None:
        self._layout()

    def redraw_from_session(self) -> None:
        samples = self._changed_samples()
        if samples is None:
            return
        self.flame = flame_tree(thread_named(samples, self.session.latest, self.scope),
                                self.scope)
        # Frames that no longer exist (after a reset): back to the top.
        if find_node(self.flame, self.zoom) is None:
            self.zoom, self.zooms = (), []
        if find_node(self.flame, self.selected) is None:
            self.selected = self.zoom
        self._layout()

    def _layout(self) -> None:
        icicle_widget = self.query_one(Icicle)
        self.rows = icicle(self.flame, self.zoom, icicle_widget.size.width or 80)
        icicle_widget.show(self.rows, self.selected)
        self._describe()

    def _describe(self) -> None:
        total = self.flame.count
        trail = " ▸ ".join(("all", *self.zoom))
        self.query_one("#flame-title", Static).update(line(
            ("flame", "bold"), f" · {samples_line(self.session.latest, total)} · "
            f"{self.scope_label} · zoom: {trail}"))  # the trail: frames' names
        node = find_node(self.flame, self.selected)
        text = line("no samples")
        if node is not None and total:
            text = line((node.name, "bold"),
                        f" · {node.count:,} samples ({pct(node.count, total):.1f}% of all) · "
                        f"self {node.self_count:,}" + (" · kernel" if node.kernel else ""))
        self.query_one("#flame-selected", Static).update(text)

    def _select(self, path: tuple[str, ...] | None) -> None:
        if path is None:
            return
        self.selected = path
        self.query_one(Icicle).show(self.rows, path)
        self._describe()

    # -- the selection ----------------------------------------------------------------------

    def _row_of_selected(self) -> tuple[list[IcicleCell], int]:
        depth = len(self.selected) - len(self.zoom)
        row = self.rows[depth] if 0 <= depth < len(self.rows) else []
        paths = [c.path for c in row]
        return row, paths.index(self.selected) if self.selected in paths else -1

    def action_select_parent(self) -> None:
        if len(self.selected) > len(self.zoom):
            self._select(self.selected[:-1])

    def action_select_child(self) -> None:
        depth = len(self.selected) - len(self.zoom) + 1
        if depth < len(self.rows):
            children = [c.path for c in self.rows[depth] if c.path[:-1] == self.selected]
            self._select(children[0] if children else None)

    def _step(self, step: int) -> None:
        row, index = self._row_of_selected()
        if index >= 0 and 0 <= index + step < len(row):
            self._select(row[index + step].path)

    def action_select_prev(self) -> None:
        self._step(-1)

    def action_select_next(self) -> None:
        self._step(1)

    def action_zoom(self) -> None:
        if self.selected != self.zoom:
            self.zooms.append(self.zoom)
            self.zoom = self.selected
            self._layout()

    def action_zoom_out(self) -> None:
        if not self.zooms:
            self.app.pop_screen()
            return
        self.zoom = self.zooms.pop()
        self._layout()

    def _scope_changed(self) -> None:
        self.zoom, self.zooms, self.selected = (), [], ()
