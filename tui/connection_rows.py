"""What the Connections drill-down shows, apart from the screen: which connections (the
scope a live-view row stands for), their cells and row keys, the orders they sort in, the
columns fitted to the terminal, and the line that describes the selected row.

Pure functions over tracing's connection model (no Textual); tui/connections.py draws them.
"""

from __future__ import annotations

import ipaddress
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from tracing.boundary.display_text import sanitize
from tracing.model.connections import INBOUND, OUTBOUND, Connection, RemoteSummary
from tracing.model.stats import Snapshot
from tracing.model.units import format_duration
from tui.columns import GAP, Column, RowKey

LIST, SUMMARY = "list", "summary"  # one row per connection, or per remote endpoint
_SYSCALL_DIRECTIONS = {"connect": OUTBOUND, "accept": INBOUND, "accept4": INBOUND}
_ARROWS = {OUTBOUND: "→", INBOUND: "←"}


# -- what is shown: the scope ------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionScope:
    """Which connections the screen shows: all, one process's, one direction's, or both."""

    pid: int | None = None
    direction: str | None = None  # OUTBOUND, INBOUND or None for both
    syscall: str = ""  # the syscall row it was opened from, for the title

    def matches(self, c: Connection) -> bool:
        return ((self.pid is None or c.pid == self.pid)
                and (self.direction is None or c.direction == self.direction))

    @property
    def is_all(self) -> bool:
        return self.pid is None and self.direction is None

    def label(self, comm: str = "") -> str:
        parts = []
        if self.pid is not None:
            parts.append(f"pid {self.pid}" + (f" {comm}" if comm else ""))
        if self.direction is not None:
            way = "outbound" if self.direction == OUTBOUND else "inbound"
            parts.append(f"{way} ({self.syscall})" if self.syscall else way)
        return " · ".join(parts) or "all processes"


def scope_of_row(grouping: str, row_key: RowKey | None) -> ConnectionScope:
    """The connections a live-view row stands for: a process's or thread's (its process's),
    outbound ones for a `connect` row, inbound ones for `accept`/`accept4`; all otherwise."""
    if row_key is None:
        return ConnectionScope()
    if grouping in ("process", "thread"):
        return ConnectionScope(pid=int(row_key[0]))
    if grouping == "syscall":
        return _syscall_scope(str(row_key[0]), None)
    if grouping == "pid_syscall":
        return _syscall_scope(str(row_key[1]), int(row_key[0]))
    return ConnectionScope()


def _syscall_scope(name: str, pid: int | None) -> ConnectionScope:
    direction = _SYSCALL_DIRECTIONS.get(name)
    return ConnectionScope(pid, direction, name if direction else "")


# -- cells -------------------------------------------------------------------------------------


def wall_clock(ts_ns: int, snapshot: Snapshot | None) -> str:
    """A monotonic timestamp as local wall-clock time, HH:MM:SS.mmm."""
    if snapshot is None:
        return "?"
    wall = snapshot.start_wall_time + (ts_ns - snapshot.start_ts_ns) / 1e9
    ms = int(wall * 1000) % 1000
    return time.strftime("%H:%M:%S", time.localtime(wall)) + f".{ms:03d}"


def container_label(c: Connection) -> str:
    return c.container_name or c.container_id[:12] or "-"


def result_label(c: Connection, short: bool = False) -> str:
    """"ok", "refused ECONNREFUSED", or "-" while undecided; `short` leaves the errno out
    (a narrow terminal: the line under the table still has it)."""
    if not c.result:
        return "-"
    if short or not c.error:
        return c.result
    return f"{c.result} {c.error}"


def shorten(text: str, width: int, keep_end: bool = False) -> str:
    """Cut to `width` with an ellipsis; `keep_end` cuts the middle (an endpoint's port and
    the end of its address matter most)."""
    if len(text) <= width:
        return text
    if keep_end:
        head = (width - 1) // 2
        return text[:head] + "…" + text[len(text) - (width - 1 - head):]
    return text[: width - 1] + "…"


def address_key(addr: str, port: int, family: int) -> tuple[int, int, str, int]:
    """Addresses sort as numbers (10.0.0.9 before 10.0.0.10), IPv4 before IPv6."""
    try:
        number = int(ipaddress.ip_address(addr))
    except ValueError:
        number = 0
    return family, number, addr, port


# Column.width is the most a column takes; each is as wide as its longest cell up to that.
LIST_COLUMNS = (
    Column("time", "time", False, 12),
    Column("pid", "pid", True, 7),
    Column("comm", "comm", False, 15),
    Column("container", "container", False, 16),
    Column("dir", "dir", False, 3),
    Column("local", "local", False, 23),
    Column("remote", "remote", False, 23),
    Column("state", "state", False, 12),
    Column("duration", "duration", True, 8),
    Column("result", "result", False, 24),
)
SUMMARY_COLUMNS = (
    Column("remote", "endpoint", False, 40),
    Column("dir", "dir", False, 3),
    Column("connections", "connections", True, 9),
    Column("failures", "failures", True, 9),
    Column("open", "open", True, 7),
    Column("avg_ns", "avg duration", True, 8),
)
_ENDPOINTS = frozenset({"local", "remote"})
_NEWEST_FIRST = frozenset({"time"})  # not numbers, yet they sort like them: newest first
# When the terminal is too narrow for every column, these steps make room, in this order,
# until the columns fit: the local address goes, then the container, then the result loses
# its errno, the start time goes, and the direction becomes an arrow. The line under the
# table still says all of it for the selected row.
NARROWING = (("drop", "local"), ("drop", "container"), ("short", "result"), ("drop", "time"),
             ("short", "dir"))
_SHORT_LABELS = {"dir": ""}
CELL_LIMIT = 200  # more than any column's width: the cut with an ellipsis is shorten()'s


def connection_cells(c: Connection, now_ns: int, snapshot: Snapshot | None) -> dict[str, str]:
    """Every column's text, and the narrow variants ("result:short", "dir:short"). The
    process and container names are outside text, and a saved session may hold anything in
    any field: every cell is sanitized before the columns are measured."""
    cells = {
        "time": wall_clock(c.ts_ns, snapshot), "pid": str(c.pid), "comm": c.comm,
        "container": container_label(c), "dir": c.direction,
        "dir:short": _ARROWS.get(c.direction, "-"), "local": c.local, "remote": c.remote,
        "state": c.state, "duration": format_duration(c.duration_ns(now_ns)),
        "result": result_label(c), "result:short": result_label(c, short=True),
    }
    return {key: sanitize(text, CELL_LIMIT) for key, text in cells.items()}


_LIST_SORT: dict[str, Callable[[Connection, int], object]] = {
    "time": lambda c, now: c.ts_ns,
    "pid": lambda c, now: c.pid,
    "comm": lambda c, now: c.comm,
    "container": lambda c, now: container_label(c),
    "dir": lambda c, now: c.direction,
    "local": lambda c, now: address_key(c.saddr, c.sport, c.family),
    "remote": lambda c, now: address_key(c.daddr, c.dport, c.family),
    "state": lambda c, now: c.state,
    "duration": lambda c, now: c.duration_ns(now),
    "result": lambda c, now: (c.result, c.error),
}


def sorted_connections(conns: Iterable[Connection], now_ns: int, sort: str,
                       reverse: bool) -> list[Connection]:
    """Ties keep the newest first, whichever the order, so rows do not swap on redraws."""
    ordered = sorted(conns, key=lambda c: (c.ts_ns, c.conn_id), reverse=True)
    primary = _LIST_SORT[sort]
    ordered.sort(key=lambda c: primary(c, now_ns), reverse=reverse)  # type: ignore[arg-type,return-value]
    return ordered


def summary_cells(s: RemoteSummary) -> dict[str, str]:
    return {"remote": sanitize(s.remote, CELL_LIMIT), "dir": sanitize(s.direction, CELL_LIMIT),
            "connections": f"{s.connections:,}", "failures": f"{s.failures:,}",
            "open": f"{s.open:,}",
            "avg_ns": format_duration(s.avg_duration_ns) if s.avg_duration_ns else "-"}


def summary_key(s: RemoteSummary) -> RowKey:
    return (s.remote, s.direction)


def connection_key(c: Connection) -> RowKey:
    return (c.conn_id,)


def largest_first(columns: Sequence[Column], column: str) -> bool:
    """A new sort column: numbers and times largest first, names A to Z."""
    numeric = next(c.numeric for c in columns if c.key == column)
    return numeric or column in _NEWEST_FIRST


def sorted_summaries(summaries: Iterable[RemoteSummary], sort: str,
                     reverse: bool) -> list[RemoteSummary]:
    def value(s: RemoteSummary) -> object:
        if sort == "remote":
            return s.remote
        if sort == "dir":
            return s.direction
        return getattr(s, "avg_duration_ns" if sort == "avg_ns" else sort)

    ordered = sorted(summaries, key=lambda s: (s.remote, s.direction))
    ordered.sort(key=value, reverse=reverse)  # type: ignore[arg-type]
    return ordered


# -- fitting the columns to the terminal -------------------------------------------------------


def table_width(widths: Iterable[int], labels: Iterable[str]) -> int:
    """What KeyedTable draws: each column at least its label and sort marker, then a gap."""
    return sum(max(len(label) + 2, w) + GAP for w, label in zip(widths, labels, strict=True))


def fitted(columns: Sequence[Column], cells: Sequence[dict[str, str]]) -> list[Column]:
    """The columns as wide as their longest cell (at most Column.width)."""
    out = []
    for col in columns:
        longest = max((len(row[col.key]) for row in cells), default=0)
        out.append(Column(col.key, col.label, col.numeric, min(longest, col.width)))
    return out


def narrowed(columns: Sequence[Column], cells: Sequence[dict[str, str]], available: int,
             steps: Sequence[tuple[str, str]] = NARROWING,
             ) -> tuple[list[Column], list[dict[str, str]]]:
    """The columns and cells that fit `available` terminal cells, taking `steps` in order
    until they do (see NARROWING); what still does not fit scrolls sideways."""
    dropped: set[str] = set()
    short: set[str] = set()
    shown, shown_cells = _narrowed_once(columns, cells, dropped, short)
    for kind, key in steps:
        if table_width((c.width for c in shown), (c.label for c in shown)) <= available:
            break
        (dropped if kind == "drop" else short).add(key)
        shown, shown_cells = _narrowed_once(columns, cells, dropped, short)
    return shown, shown_cells


def _narrowed_once(columns: Sequence[Column], cells: Sequence[dict[str, str]],
                   dropped: set[str], short: set[str],
                   ) -> tuple[list[Column], list[dict[str, str]]]:
    """The columns without `dropped`, those in `short` with their short label and cells."""
    chosen = [Column(c.key, _SHORT_LABELS.get(c.key, c.label), c.numeric, c.width)
              if c.key in short else c for c in columns if c.key not in dropped]
    shown_cells = [{c.key: row[f"{c.key}:short" if c.key in short else c.key]
                    for c in chosen} for row in cells]
    return fitted(chosen, shown_cells), shown_cells


# -- the line under the table ------------------------------------------------------------------


def describe_connection(c: Connection, now_ns: int, snapshot: Snapshot | None) -> str:
    """Everything about one connection, the columns a narrow terminal hides first."""
    lived = "lived" if c.ended else "open for"
    text = (f"{c.local} {_ARROWS.get(c.direction, '-')} {c.remote} · {c.state} · "
            f"{_outcome(c)} · started {wall_clock(c.ts_ns, snapshot)} · "
            f"{lived} {format_duration(c.duration_ns(now_ns))} · pid {c.pid} {c.comm}")
    if c.container_id or c.container_name:
        runtime = f" ({c.container_runtime})" if c.container_runtime else ""
        text += f" · container {container_label(c)}{runtime}"
    return text


def _outcome(c: Connection) -> str:
    if c.result:
        return result_label(c)
    return "open" if c.state == "ESTABLISHED" else "in progress"


def describe_summary(s: RemoteSummary, members: Sequence[Connection]) -> str:
    failures = Counter(c.result for c in members if c.failed)
    how = ", ".join(f"{n} {result}" for result, n in failures.most_common())
    way = "outbound to" if s.direction == OUTBOUND else "inbound from"
    return (f"{way} {s.remote} · {s.connections:,} connections · {s.failures:,} failed"
            + (f" ({how})" if how else "") + f" · {s.open:,} open · Enter lists them")


def summary_members(s: RemoteSummary, conns: Iterable[Connection]) -> list[Connection]:
    """The connections summarize() counted in `s` (inbound ones by address only)."""
    return [c for c in conns if c.direction == s.direction
            and (c.remote if c.direction == OUTBOUND else c.daddr) == s.remote]


def endpoint_filter(s: RemoteSummary, members: Sequence[Connection]) -> str:
    """The filter that lists one summary row's connections."""
    if not members:
        return f"dir={s.direction}"
    c = members[0]
    if s.direction == OUTBOUND:
        return f"dir=out addr={c.daddr} dport={c.dport}"
    return f"dir=in addr={c.daddr}"


def counts_line(shown: Sequence[Connection], total: int, filtered: bool) -> str:
    """"8 · 4 failed · 2 open", or with a filter "filtered: 3 of 8 · 1 failed · 0 open"."""
    failed = sum(c.failed for c in shown)
    still_open = sum(not c.ended for c in shown)
    count = f"filtered: {len(shown):,} of {total:,}" if filtered else f"{len(shown):,}"
    return f"{count} · {failed:,} failed · {still_open:,} open"


def shortened(cells: dict[str, str], columns: Sequence[Column]) -> dict[str, str]:
    """Cells cut to their column with an ellipsis (endpoints in the middle, keeping the
    port), rather than the table's plain cut."""
    return {c.key: shorten(cells[c.key], max(c.width, len(c.label) + 2), c.key in _ENDPOINTS)
            for c in columns}
