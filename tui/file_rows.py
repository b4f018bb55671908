"""What the Files view shows, apart from the screen: the per-file totals of a snapshot summed
per path (over the processes that used it) or per directory, their cells, their orders, and
the columns fitted to the terminal.

Pure (no Textual): tui/files.py draws these. Paths are the traced processes' bytes, decoded
by the path table (undecodable bytes as \\xHH) and sanitized before they are measured.
The view keeps its summaries across snapshots (tui/file_index.py); `path_summaries`,
`by_directory` and `sorted_summaries` compute them whole, the reference its tests compare to.
"""

from __future__ import annotations

import posixpath
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from syscall_tables import errno_name
from tracing.boundary.display_text import sanitize
from tracing.model.files import FileKey, FileStats
from tracing.model.paths import PathTable
from tracing.model.units import format_bytes, format_count, format_duration
from tui.columns import Column, Row
from tui.connection_rows import shorten

CELL_LIMIT = 4096  # a path is at most PATH_MAX: the cut is the column's


@dataclass(frozen=True)
class PathSummary:
    """One path's (or one directory's) totals over every process that used it."""

    path: str
    pids: frozenset[int]
    opens: int
    open_errors: tuple[tuple[int, int], ...]  # (errno, failed opens), most first
    calls: int
    reads: int
    bytes_read: int
    writes: int
    bytes_written: int
    io_ns: int

    @property
    def procs(self) -> int:
        return len(self.pids)

    @property
    def failed(self) -> int:
        return sum(n for _, n in self.open_errors)


def _summary(path: str, items: Sequence[tuple[int, FileStats]]) -> PathSummary:
    errors: Counter[int] = Counter()
    for _, stats in items:
        for errno, count in stats.open_errors:
            errors[errno] += count
    return PathSummary(
        path, frozenset(pid for pid, _ in items), sum(s.opens for _, s in items),
        tuple(sorted(errors.items(), key=lambda e: (-e[1], e[0]))),
        sum(s.calls for _, s in items), sum(s.reads for _, s in items),
        sum(s.bytes_read for _, s in items), sum(s.writes for _, s in items),
        sum(s.bytes_written for _, s in items), sum(s.io_ns for _, s in items))


def path_summaries(files: Mapping[FileKey, FileStats], paths: PathTable | None
                   ) -> list[PathSummary]:
    """One summary per path, in no particular order."""
    by_path: dict[str, list[tuple[int, FileStats]]] = {}
    for key, stats in files.items():
        name = paths.text(key.path_id) if paths is not None else ""
        by_path.setdefault(name or "(unknown)", []).append((key.pid, stats))
    return [_summary(path, items) for path, items in by_path.items()]


def directory_of(path: str) -> str:
    """A path's directory with a trailing slash ("/etc/"); names that are no path (sockets,
    pipes: "socket:[123]") stay themselves."""
    if not path.startswith("/"):
        return path
    parent = posixpath.dirname(path.rstrip("/")) or "/"
    return parent if parent.endswith("/") else parent + "/"


def by_directory(summaries: Iterable[PathSummary]) -> list[PathSummary]:
    """The summaries summed per directory (its processes: every one that used a file there)."""
    groups: dict[str, list[PathSummary]] = {}
    for s in summaries:
        groups.setdefault(directory_of(s.path), []).append(s)
    return [_merged(d, members) for d, members in groups.items()]


def _merged(path: str, members: Sequence[PathSummary]) -> PathSummary:
    errors: Counter[int] = Counter()
    for m in members:
        for errno, count in m.open_errors:
            errors[errno] += count
    return PathSummary(
        path, frozenset().union(*(m.pids for m in members)), sum(m.opens for m in members),
        tuple(sorted(errors.items(), key=lambda e: (-e[1], e[0]))),
        sum(m.calls for m in members), sum(m.reads for m in members),
        sum(m.bytes_read for m in members), sum(m.writes for m in members),
        sum(m.bytes_written for m in members), sum(m.io_ns for m in members))


def errors_text(open_errors: Iterable[tuple[int, int]]) -> str:
    """"ENOENT 3, EACCES 1", or "-" when every open succeeded."""
    return ", ".join(f"{errno_name(e)} {n:,}" for e, n in open_errors) or "-"


# -- columns, cells, order ---------------------------------------------------------------------

PATH_MIN = 24
FILE_COLUMNS = (
    Column("path", "path", False, PATH_MIN),
    Column("procs", "procs", True, 5, priority=6),
    Column("opens", "opens", True, 7),
    Column("failed", "failed opens", False, 18),
    Column("reads", "reads", True, 7, priority=3),
    Column("bytes_read", "read", True, 8, priority=1),
    Column("writes", "writes", True, 7, priority=4),
    Column("bytes_written", "written", True, 8, priority=2),
    Column("io_ns", "I/O time", True, 8, priority=5),
)
_TEXT_COLUMNS = frozenset({"path", "failed"})
GAP = 2


def fitted_columns(available: int, sort: str) -> tuple[Column, ...]:
    """The columns that fit `available` cells, the path taking what the others leave: those
    of priority 0 and the sort column always, then by priority while they fit."""
    kept = {c.key for c in FILE_COLUMNS if c.priority == 0 or c.key == sort}

    def width(keys: set[str]) -> int:
        chosen = [c for c in FILE_COLUMNS if c.key in keys]
        return sum(max(c.width, len(c.label) + 2) for c in chosen) + GAP * len(chosen)

    for extra in sorted((c for c in FILE_COLUMNS if c.key not in kept),
                        key=lambda c: c.priority):
        if width(kept | {extra.key}) > available:
            break
        kept.add(extra.key)
    room = max(available - width(kept) + PATH_MIN, PATH_MIN)
    return tuple(Column("path", "path", False, room) if c.key == "path" else c
                 for c in FILE_COLUMNS if c.key in kept)


def largest_first(column: str) -> bool:
    return column not in _TEXT_COLUMNS or column == "failed"


_SORT_VALUES = {
    "path": lambda s: s.path, "procs": lambda s: s.procs, "opens": lambda s: s.opens,
    "failed": lambda s: s.failed, "reads": lambda s: s.reads,
    "bytes_read": lambda s: s.bytes_read, "writes": lambda s: s.writes,
    "bytes_written": lambda s: s.bytes_written, "io_ns": lambda s: s.io_ns,
}  # fmt: skip


def sorted_summaries(summaries: Iterable[PathSummary], sort: str, reverse: bool
                     ) -> list[PathSummary]:
    """Ties in path order, whichever the direction, so rows do not swap on redraws."""
    ordered = sorted(summaries, key=lambda s: s.path)
    value = _SORT_VALUES[sort]
    ordered.sort(key=value, reverse=reverse)
    return ordered


def file_cells(s: PathSummary, path_width: int) -> dict[str, str]:
    return {
        "path": shorten(sanitize(s.path, CELL_LIMIT), path_width, keep_end=True),
        "procs": f"{s.procs:,}", "opens": format_count(s.opens),
        "failed": errors_text(s.open_errors), "reads": format_count(s.reads),
        "bytes_read": format_bytes(s.bytes_read), "writes": format_count(s.writes),
        "bytes_written": format_bytes(s.bytes_written), "io_ns": format_duration(s.io_ns),
    }


def file_rows(summaries: Sequence[PathSummary], columns: Sequence[Column]) -> list[Row]:
    path_width = next(c.width for c in columns if c.key == "path")
    return [file_row(s, path_width) for s in summaries]


def file_row(s: PathSummary, path_width: int) -> Row:
    """A row whose cells are made only when it is drawn."""
    return Row((s.path,), {"path": s.path}, lambda: file_cells(s, path_width))


def describe_summary(s: PathSummary, grouped: bool) -> str:
    """The selected row in full, for the line under the table: nothing cut."""
    what = "directory" if grouped else "path"
    procs = f"{s.procs:,} process" + ("" if s.procs == 1 else "es")
    return (f"{what} {sanitize(s.path)} · {procs} · {s.opens:,} opens, failed: "
            f"{errors_text(s.open_errors)} · {s.calls:,} calls · {s.reads:,} reads "
            f"{s.bytes_read:,} B · {s.writes:,} writes {s.bytes_written:,} B · I/O "
            f"{format_duration(s.io_ns)}")
