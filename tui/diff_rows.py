"""What the diff screen shows, apart from the screen: the cells of a DiffTable (A, B and the
change of each metric), the columns fitted to the terminal, the order of the rows and the
line that describes the selected row in full.

Pure (no Textual): tui/diff.py draws these. Keys (syscall names, command names, paths,
endpoints) come from session files: they are sanitized before they are measured or shown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from tracing.boundary.display_text import sanitize
from tracing.model.diff import DiffRow, DiffTable
from tracing.model.units import (
    format_bytes,
    format_count,
    format_duration,
    format_exact_count,
    format_rate,
)
from tui.columns import GAP, Column, Row
from tui.connection_rows import shorten

# What a table's rows are ordered by at first: the largest change in total time, or what
# stands in for it in tables without one (tracing/model/diff.py sorts the same way).
PRIMARY_METRICS = ("total_ns", "io_ns", "connections")
# Which metrics keep a place when the terminal is narrow, most wanted first; a metric not
# named here comes after these, in the table's own order.
RANK = ("total_ns", "io_ns", "connections", "count", "opens", "errors", "failed_opens",
        "failed", "p99_ns", "avg_ns", "bytes_read", "bytes_written", "p50_ns", "p95_ns",
        "calls_per_s", "errors_per_s")
LABELS = {
    "count": "calls", "calls_per_s": "calls/s", "errors": "errors", "errors_per_s": "err/s",
    "total_ns": "total", "p50_ns": "p50", "p95_ns": "p95", "p99_ns": "p99", "avg_ns": "avg",
    "opens": "opens", "failed_opens": "failed", "bytes_read": "read",
    "bytes_written": "written", "io_ns": "I/O time", "connections": "conns",
    "failed": "failed",
}  # fmt: skip
KEY_LABELS = {"syscalls": "syscall", "processes": "command", "files": "path",
              "endpoints": "endpoint"}
# The tables whose rows carry latency histograms (Enter overlays them).
HISTOGRAM_TABLES = frozenset({"syscalls", "processes"})
ONLY = Column("only", "only", False, 4, optional=True)
KEY_LIMIT = 4096  # a path is at most PATH_MAX; the column cuts it, the selected line not
KEY_WIDTH = (10, 24)  # the key column's narrowest and, below 120 columns, widest
WIDE_KEY_WIDTH = 40  # its widest from 120 columns on
MEASURED_ROWS = 5_000  # rows measured to size the columns: a table's first, in its order
MISSING = "-"  # a value in a run that does not have the row


# -- values --------------------------------------------------------------------------------


def label(metric: str) -> str:
    return LABELS.get(metric, metric)


def primary_metric(table: DiffTable) -> str:
    return next((m for m in PRIMARY_METRICS if m in table.metrics), table.metrics[0]
                if table.metrics else "")


def format_value(metric: str, value: float) -> str:
    """A metric's value as the tables show it: counts exact (with separators), times and
    bytes in their units, rates per second."""
    if metric.endswith("_ns"):
        return format_duration(value)
    if "per_s" in metric:
        return format_rate(value)
    if metric.startswith("bytes"):
        return format_bytes(value)
    return format_exact_count(int(value))


def format_change(metric: str, a: float, b: float) -> str:
    """B - A, signed, and how much that is of A ("+500 +50%"; "×12" from ten times up; no
    share when A is 0). "0" when nothing changed."""
    change = b - a
    if change == 0:
        return "0"
    sign = "+" if change > 0 else "-"
    size = abs(change)
    if metric.endswith("_ns") or "per_s" in metric or metric.startswith("bytes"):
        amount = format_value(metric, size)
    else:  # exact while it stays short: the differences people check are small numbers
        amount = f"{int(size):,}" if size < 100_000 else format_count(size)
    text = f"{sign}{amount}"
    if a > 0:
        text += f" {share(a, b)}"
    return text


def share(a: float, b: float) -> str:
    """B against A, for A > 0: "+50%", "-100%", or "×12" once B is ten times A or more."""
    if b >= 10 * a:
        return f"×{format_count(b / a)}"
    return f"{(b - a) / a * 100:+.0f}%"


def side_cell(row: DiffRow, side: str, metric: str) -> str:
    values = row.a if side == "a" else row.b
    return MISSING if values is None else format_value(metric, values.get(metric, 0))


def change_cell(row: DiffRow, metric: str) -> str:
    return format_change(metric, row.value("a", metric), row.value("b", metric))


def shown_key(row: DiffRow) -> str:
    return sanitize(row.key, KEY_LIMIT)


def only_cell(row: DiffRow) -> str:
    return {"a": "A", "b": "B"}.get(row.only_in or "", "")


# -- columns -------------------------------------------------------------------------------


def column_key(metric: str, part: str) -> str:
    """A column's key: the metric and which part of it ("a", "b" or "d", the change)."""
    return f"{metric}:{part}"


def split_key(key: str) -> tuple[str, str]:
    metric, _, part = key.rpartition(":")
    return metric, part


@dataclass(frozen=True)
class Fitted:
    columns: tuple[Column, ...]
    full: tuple[str, ...]  # metrics shown with A, B and the change
    changes: tuple[str, ...]  # metrics shown by their change only


def _part_label(metric: str, part: str) -> str:
    name = label(metric)
    return f"Δ {name}" if part == "d" else f"{name} {part.upper()}"


def _width(texts: Iterable[str], floor: int) -> int:
    return max([floor, *(len(t) for t in texts)])


def fit_diff_columns(table: DiffTable, rows: Sequence[DiffRow], available: int) -> Fitted:
    """The columns of `table` for `available` cells, sized to what the first rows hold:
    the key (and "only" when a row is in one run only); then the most wanted metrics with
    A, B and the change, as many as leave room for the change of the three most wanted;
    then the changes of the others while they fit. The selected row's line holds the rest."""
    measured = rows[:MEASURED_ROWS]
    widest = WIDE_KEY_WIDTH if available >= 120 else KEY_WIDTH[1]
    key_label = KEY_LABELS.get(table.name, "name")
    key = Column("key", key_label, False, min(max(
        _width((shown_key(r) for r in measured), KEY_WIDTH[0]), len(key_label)), widest))
    lead = [key]
    if any(r.only_in for r in measured):
        lead.append(ONLY)

    def column(metric: str, part: str) -> Column:
        cells = (change_cell(r, metric) if part == "d" else side_cell(r, part, metric)
                 for r in measured)
        return Column(column_key(metric, part), _part_label(metric, part), True,
                      _width(cells, 1))

    ranked = sorted(table.metrics, key=lambda m: RANK.index(m) if m in RANK else len(RANK))
    groups = {m: (column(m, "a"), column(m, "b"), column(m, "d")) for m in ranked}

    def cells(columns: Iterable[Column]) -> int:
        return sum(max(len(c.label) + 2, c.width) + GAP for c in columns)

    used = cells(lead)
    kept = ranked[:3]
    full: list[str] = []
    for metric in ranked:
        reserve = cells(groups[m][2] for m in kept if m not in full and m != metric)
        if used + cells(groups[metric]) + reserve > available:
            break
        full.append(metric)
        used += cells(groups[metric])
    changes: list[str] = []
    for metric in ranked:
        if metric in full:
            continue
        if used + cells(groups[metric][2:]) > available:
            break
        changes.append(metric)
        used += cells(groups[metric][2:])
    shown: list[Column] = list(lead)
    for metric in table.metrics:  # the table's own order, left to right
        if metric in full:
            shown += groups[metric]
        elif metric in changes:
            shown.append(groups[metric][2])
    return Fitted(tuple(shown), tuple(full), tuple(changes))


# -- rows ----------------------------------------------------------------------------------


def sort_key(column: str) -> Callable[[DiffRow], float]:
    """What a metric's column sorts by: a side by its value (a missing side lowest), a
    change by its size, whichever way it went (the largest changes first)."""
    metric, part = split_key(column)
    if part == "d":
        return lambda row: abs(row.change(metric))
    if part == "a":
        return lambda row: row.a.get(metric, 0) if row.a is not None else -1.0
    return lambda row: row.b.get(metric, 0) if row.b is not None else -1.0


def sorted_rows(rows: Iterable[DiffRow], column: str, reverse: bool) -> list[DiffRow]:
    """Rows in the order of `column`; ties by key, A to Z, either way (a stable sort)."""
    ordered = sorted(rows, key=lambda r: r.key)  # linear when they come sorted by name
    if column == "key":
        return sorted(ordered, key=shown_key, reverse=reverse)
    if column == "only":
        return sorted(ordered, key=only_cell, reverse=reverse)
    return sorted(ordered, key=sort_key(column), reverse=reverse)


def largest_first(column: str) -> bool:
    """A new sort column: numbers and changes largest first, names A to Z."""
    return column not in ("key", "only")


def table_rows(rows: Iterable[DiffRow], columns: Sequence[Column]) -> list[Row]:
    """The rows as the table draws them: a key longer than its column loses its middle (a
    path's file name and an endpoint's port matter most; the selected line has it whole)."""
    width = next((max(c.width, len(c.label) + 2) for c in columns if c.key == "key"), 0)
    out = []
    for r in rows:
        def cells(r: DiffRow = r) -> dict[str, str]:  # made for the rows on screen only
            made = {"key": shorten(shown_key(r), width, keep_end=True) if width
                    else shown_key(r), "only": only_cell(r)}
            for c in columns:
                metric, part = split_key(c.key)
                if part == "d":
                    made[c.key] = change_cell(r, metric)
                elif part in ("a", "b"):
                    made[c.key] = side_cell(r, part, metric)
            return made
        out.append(Row((r.key,), {"only": only_cell(r)}, cells))
    return out


def describe_row(table: DiffTable, row: DiffRow) -> str:
    """Every metric of the selected row, A → B (change): what the columns could not hold."""
    parts = []
    for metric in table.metrics:
        a, b = side_cell(row, "a", metric), side_cell(row, "b", metric)
        change = change_cell(row, metric)
        parts.append(f"{label(metric)} {a} → {b}" + ("" if change == "0" else f" ({change})"))
    where = {"a": " (only in A)", "b": " (only in B)"}.get(row.only_in or "", "")
    return f"{shown_key(row)}{where}: " + " · ".join(parts)
