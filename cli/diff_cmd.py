"""`sikte-tui diff A [B] [--window-a START..END] [--window-b START..END] [--json] [--text]`:
what changed between two saved sessions (journal or Parquet, in any combination), or between
two stretches of one. --json prints one document (docs/diff.md); --text, or a stdout that is
not a terminal, a plain table; otherwise the diff TUI (tui/diff_app.py). Needs no root."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from tracing.boundary.display_text import sanitize
from tracing.model.diff import Diff, DiffRow, DiffSide, DiffTable
from tracing.model.report import NAME_LIMIT
from tracing.model.units import format_bytes, format_duration, format_rate

Format = Callable[[float], str]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("a", type=Path, metavar="A",
                        help="a journal file (.sikte.db) or a Parquet session directory")
    parser.add_argument("b", type=Path, nargs="?", metavar="B",
                        help="the session to compare it with (omitted: two windows of A)")
    parser.add_argument("--window-a", metavar="START..END",
                        help="compare only this stretch of A: seconds from its start "
                        "(12, 1:30, 250ms); END empty is the end")
    parser.add_argument("--window-b", metavar="START..END",
                        help="the same for B (or a second stretch of A when B is omitted)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print one JSON document")
    output.add_argument("--text", action="store_true",
                        help="print a plain table (the default when stdout is not a terminal)")


def run(args: argparse.Namespace) -> int:
    from tracing.session.diff import diff_json, diff_sessions, open_pair, parse_window

    # Window texts first: a typo is reported before any session is read.
    window_a = parse_window(args.window_a) if args.window_a is not None else None
    window_b = parse_window(args.window_b) if args.window_b is not None else None
    a, b = open_pair(args.a, args.b, window_a, window_b)
    diff = diff_sessions(a, b, window_a, window_b)
    if args.json:
        print(json.dumps(diff_json(diff)), flush=True)
        return 0
    if args.text or not sys.stdout.isatty():
        print(format_diff(diff), flush=True)
        return 0
    from tui.diff_app import run_diff  # Textual only for the interactive case

    return int(run_diff(diff))  # the TUI's exit status


def _count(n: float) -> str:
    return f"{int(n)}"


def _signed(fmt: Format) -> Format:
    def signed(n: float) -> str:
        if n == 0:
            return "0"
        return ("+" if n > 0 else "-") + fmt(abs(n))
    return signed


# Per table: the columns (metric, label, format, with its change) and the key's header.
Column = tuple[str, str, Format, bool]
COLUMNS: dict[str, tuple[str, tuple[Column, ...]]] = {
    "syscalls": ("syscall", (
        ("count", "calls", _count, True), ("calls_per_s", "calls/s", format_rate, False),
        ("errors", "errors", _count, True), ("total_ns", "total", format_duration, True),
        ("p50_ns", "p50", format_duration, False), ("p95_ns", "p95", format_duration, False),
        ("p99_ns", "p99", format_duration, False))),
    "files": ("path", (
        ("opens", "opens", _count, True), ("failed_opens", "failed", _count, True),
        ("bytes_read", "read", format_bytes, False),
        ("bytes_written", "written", format_bytes, False),
        ("io_ns", "I/O time", format_duration, True))),
    "endpoints": ("endpoint", (
        ("connections", "conns", _count, True), ("failed", "failed", _count, True),
        ("avg_ns", "avg", format_duration, False))),
}
COLUMNS["processes"] = ("command", COLUMNS["syscalls"][1])


def _cells(row: DiffRow, columns: tuple[Column, ...]) -> list[str]:
    cells = []
    for metric, _, fmt, with_change in columns:
        for values in (row.a, row.b):
            cells.append("-" if values is None else fmt(values[metric]))
        if with_change:
            cells.append(_signed(fmt)(row.change(metric)))
    cells.append({"a": "only A", "b": "only B"}.get(row.only_in or "", ""))
    return cells


def format_table(table: DiffTable) -> str:
    key_header, columns = COLUMNS[table.name]
    header: list[str] = []
    for _, label, _, with_change in columns:
        header += [f"{label} A", f"{label} B"] + ([f"{label} +/-"] if with_change else [])
    header.append("")  # only in one run
    lines = [header] + [_cells(row, columns) for row in table.rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    keys = [key_header] + [sanitize(row.key, NAME_LIMIT) for row in table.rows]
    # Numbers right-aligned, the key last and left-aligned (it may be long), as record's.
    out = [" ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)) + "  " + key
           for line, key in zip(lines, keys, strict=True)]
    return f"{table.title}\n" + "\n".join(out)


def _side_line(name: str, side: DiffSide) -> str:
    machine = " ".join(sanitize(v, NAME_LIMIT) for v in (side.host, side.kernel, side.arch) if v)
    return (f"{name}: {sanitize(side.label, NAME_LIMIT)} ({side.end_s - side.start_s:.3f} s"
            f"{', ' + machine if machine else ''})")


def format_diff(diff: Diff) -> str:
    """The plain table: both sides, the notes, then each table that has rows."""
    head = [_side_line("A", diff.a), _side_line("B", diff.b)]
    head += [f"note: {sanitize(note)}" for note in diff.notes]
    parts = ["\n".join(head)]
    for table in diff.tables:
        if table.rows or table.name == "syscalls":
            parts.append(format_table(table) if table.rows else f"{table.title}: no calls")
    return "\n\n".join(parts)
