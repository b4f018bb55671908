"""What the event log shows, apart from the screen: the kept events (the newest MAX_EVENTS,
oldest first), each decoded when it is first shown or filtered, their rows and cells in
strace's form, and the full description of one event.

Pure (no Textual): tui/event_log.py draws these. Decoding is tracing.decode.render's; an
event is decoded at most once, and only when a row on screen, a filter on decoded fields or
the selected-row line asks, so a burst of events costs a dict store each.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from syscall_tables import errno_name, syscall_name
from tracing.boundary.display_text import sanitize
from tracing.decode.argspec import FD_ARG0, FD_RET, OPENS, SpecTable, abi_table, load_specs
from tracing.decode.constants import errno_name as decoded_errno_name
from tracing.model.captures import EVF_UNTIMED, KIND_PATH, parse_fields
from tracing.model.paths import PathTable
from tracing.model.stats import Snapshot
from tracing.model.timing import NO_TIME
from tracing.model.units import format_duration
from tui.columns import GAP, Column, Row
from tui.session import EventBatch

if TYPE_CHECKING:
    from tracing.decode.render import DecodedEvent

MAX_EVENTS = 10_000  # the log keeps the newest events only: bounded memory
MAX_ERRNO = 4095  # the kernel's -errno results are -1..-4095


def name_text(name: bytes | None) -> str:
    """A captured name as text: bytes that are not UTF-8 as \\xHH escapes (as the path table
    gives them). Still outside text: shown through tracing.boundary.display_text."""
    return name.decode("utf-8", errors="backslashreplace") if name else ""


def strace_ret(raw: int) -> int:
    """The result as strace shows it: -1 for a failure, else the value."""
    return -1 if -MAX_ERRNO <= raw < 0 else raw


@dataclass(frozen=True)
class DecodeContext:
    """What decoding a record needs from its trace: the host's arch, the syscalls' argument
    specs and the trace's path table (ids only grow: the newest snapshot's does for all)."""

    arch: str
    paths: PathTable | None
    specs: SpecTable

    def decode(self, record: np.ndarray, data: bytes) -> DecodedEvent:
        # Imported here: the decoder's tables load on first use, not when the app starts.
        from tracing.decode.render import decode_events
        return decode_events(record, [data], self.arch, self.specs, self.paths)[0]


@dataclass(eq=False, slots=True)
class LogEvent:
    """One kept event: the record's numbers, the names its process and thread had when it
    arrived, and its decoding once asked for. Its `seq` (the order of arrival) is its row
    key."""

    seq: int
    ts_ns: int
    pid: int
    tid: int
    nr: int
    abi: int
    raw_ret: int
    duration_ns: int | None  # None: not timed (EVF_UNTIMED), shown as NO_TIME, never as 0
    comm: str  # the process's name, as shown (escaped)
    thread_comm: str  # the thread's own name, as shown: the process's for its main thread
    record: np.ndarray  # the one-record slice, for the decoder
    data: bytes
    context: DecodeContext
    _decoded: DecodedEvent | None = field(default=None, repr=False)
    _path: str | None = field(default=None, repr=False)

    @property
    def decoded(self) -> DecodedEvent:
        if self._decoded is None:
            self._decoded = self.context.decode(self.record, self.data)
        return self._decoded

    @property
    def table(self) -> str:
        return abi_table(self.context.arch, self.abi)

    # -- what the filter tests (tracing.query.event_filter.EventFacts) ----------------------

    @property
    def name(self) -> str:
        return syscall_name(self.nr, self.table)

    @property
    def failed(self) -> bool:
        return -MAX_ERRNO <= self.raw_ret < 0

    @property
    def ret(self) -> int:
        return strace_ret(self.raw_ret)

    # errno, path and fd_path without decoding the whole call: a filter on them visits
    # every kept event.

    @property
    def errno(self) -> str:
        if not self.failed:
            return ""
        return decoded_errno_name(-self.raw_ret) or errno_name(self.raw_ret)

    @property
    def path(self) -> str:
        """The path argument (the first one captured whole or cut), as text; "" if none."""
        if self._path is None:
            fields = sorted(parse_fields(self.data), key=lambda f: f.arg)
            self._path = next((name_text(f.data) for f in fields
                               if f.kind == KIND_PATH and not f.faulted), "")
        return self._path

    @property
    def fd_path(self) -> str:
        """The name of the descriptor the call works on, when known."""
        paths, path_id = self.context.paths, int(self.record["fd_path"][0])
        return name_text(paths.name(path_id)) if paths is not None and path_id else ""

    @property
    def paths(self) -> tuple[str, ...]:
        # As shown: the filter bar holds what is typed or put there as visible escapes
        # (tui.widgets.DataInput), so a name with control characters is found by its escapes.
        return tuple(sanitize(p) for p in (self.path, self.fd_path) if p)

    @property
    def addr(self) -> str:
        return self.decoded.addr or ""

    @property
    def fds(self) -> tuple[int, ...]:
        """The descriptor in args[0] (calls that act on one) and the one a success returns."""
        spec = self.context.specs.for_call(self.table, self.nr)
        if spec is None:
            return ()
        out: list[int] = []
        if spec.effects & FD_ARG0:
            out.append(int(self.record["args"][0][0]) & 0xFFFFFFFF)
        if spec.effects & (FD_RET | OPENS) and self.raw_ret >= 0:
            out.append(self.raw_ret)
        # AT_FDCWD (-100) in a dfd is no descriptor.
        return tuple(fd for fd in out if fd < 1 << 31)

    # -- what is shown -----------------------------------------------------------------------

    @property
    def call(self) -> str:
        """strace's `openat(AT_FDCWD, "/etc/x", O_RDONLY) = -1 ENOENT (No such file ...)`."""
        return self.decoded.call_text


@lru_cache(maxsize=4096)
def _shown(name: str) -> str:
    # Asked for each kept event: a burst has a few distinct names.
    return sanitize(name)


def who(event: LogEvent) -> str:
    """The event's thread as the detail and the selected-row line name it: its own name,
    and its process's when that differs ("worker (python)")."""
    if event.thread_comm == event.comm:
        return event.comm
    return f"{event.thread_comm} ({event.comm})"


class EventStore:
    """The newest `limit` events of a trace (those `select` keeps, when given: a mask over a
    batch's records), oldest first, taken from the session's batches; `arrived` counts
    every event seen (kept or not)."""

    def __init__(self, limit: int = MAX_EVENTS,
                 select: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        self.limit = limit
        self.select = select
        self.events: deque[LogEvent] = deque(maxlen=limit)
        self.arrived = 0  # the number of the next event to take

    def update(self, batches: Sequence[EventBatch]) -> int:
        """Take the events not taken yet (only the newest `limit` of them are built); how
        many arrived."""
        if not batches or batches[-1].end <= self.arrived:
            return 0
        end = batches[-1].end
        start = self.arrived if self.select is not None else max(self.arrived,
                                                                  end - self.limit)
        before, self.arrived = self.arrived, end
        specs = load_specs()  # read once for the process (functools.cache)
        for batch in batches:
            if batch.end > start:
                self._take(batch, max(start - batch.first, 0), specs)
        return end - before

    def _take(self, batch: EventBatch, skip: int, specs: SpecTable) -> None:
        records = batch.events[skip:]
        if self.select is not None:
            index = np.flatnonzero(self.select(records))[-self.limit:] + skip
        else:
            index = np.arange(skip, len(batch.events))
        if not len(index):
            return
        kept = batch.events[index]  # a copy: the rest of a big batch may go
        snapshot = batch.snapshot
        context = DecodeContext(snapshot.arch, snapshot.paths, specs)
        processes, data = snapshot.processes, batch.data
        columns = [kept[name].tolist()
                   for name in ("ts", "pid", "tid", "nr", "abi", "ret", "duration_ns")]
        untimed = (kept["flags"] & EVF_UNTIMED).astype(bool).tolist()
        for j, (i, ts, pid, tid, nr, abi, ret, dur, no_time) in enumerate(
                zip(index.tolist(), *columns, untimed, strict=True)):
            info = processes.get(pid)
            # The names as shown (escaped), so that a filter typed from the screen matches
            # a name with control characters in it.
            comm = _shown(info.comm) if info else "?"
            self.events.append(LogEvent(
                batch.first + i, ts, pid, tid, nr, abi, ret, None if no_time else dur, comm,
                _shown(info.thread_name(tid)) if info else comm,
                kept[j:j + 1], data[i] if i < len(data) else b"", context))

    def clear(self) -> None:
        self.events.clear()


# -- rows and cells ----------------------------------------------------------------------------

TIME_WIDTH = 12
FIXED_COLUMNS = (
    Column("time", "time", False, TIME_WIDTH, priority=2),
    Column("pid", "pid", True, 7),
    Column("comm", "comm", False, 15, priority=3),
)
DURATION = Column("duration", "duration", True, 8, priority=1)
MIN_CALL_WIDTH = 50  # at 80 columns the time goes too: the call matters most


def log_columns(available: int) -> tuple[Column, ...]:
    """The log's columns for `available` cells: the call takes what the others leave; on a
    narrow terminal the comm goes, then the time (the line under the table has both)."""
    fixed = [*FIXED_COLUMNS, DURATION]

    def room() -> int:  # what the others leave: their widths (label too), gaps, the last gap
        return available - GAP - sum(max(c.width, len(c.label) + 2) + GAP for c in fixed)

    while len(fixed) > 2 and room() < MIN_CALL_WIDTH:
        fixed.remove(max(fixed, key=lambda c: c.priority))
    call = Column("call", "call", False, max(room(), MIN_CALL_WIDTH))
    leading = [c for c in fixed if c is not DURATION]
    trailing = [c for c in fixed if c is DURATION]
    return (*leading, call, *trailing)


def wall_clock(ts_ns: int, snapshot: Snapshot | None) -> str:
    """A monotonic timestamp as local wall-clock time, HH:MM:SS.mmm."""
    if snapshot is None:
        return "?"
    wall = snapshot.start_wall_time + (ts_ns - snapshot.start_ts_ns) / 1e9
    ms = int(wall * 1000) % 1000
    return time.strftime("%H:%M:%S", time.localtime(wall)) + f".{ms:03d}"


def event_row(event: LogEvent, snapshot: Snapshot | None) -> Row:
    """A row whose cells (the decoding) are made only when it is drawn."""
    def cells() -> dict[str, str]:
        return {"time": wall_clock(event.ts_ns, snapshot), "pid": str(event.pid),
                "comm": event.thread_comm, "call": event.call,
                "duration": duration_cell(event.duration_ns)}
    return Row((event.seq,), {"ts": event.ts_ns}, cells)


def duration_cell(duration_ns: int | None) -> str:
    """An event's duration as a table shows it: NO_TIME ("-") when its call was not timed."""
    return NO_TIME if duration_ns is None else format_duration(duration_ns)


def duration_detail(duration_ns: int | None) -> str:
    """An event's duration in its full description: the ns as well, or why there is none."""
    if duration_ns is None:
        return f"{NO_TIME} (not timed: --timing off, or a call --timing sampled left out)"
    return f"{format_duration(duration_ns)} ({duration_ns:,} ns)"


def rows_of(events: Iterable[LogEvent], snapshot: Snapshot | None) -> list[Row]:
    return [event_row(e, snapshot) for e in events]


def strace_line(event: LogEvent) -> str:
    """`[pid  N] call(args) = result <0.000012>`, as strace -f -T writes it."""
    from tracing.decode.render import render_line  # see DecodeContext.decode
    return render_line(event.decoded, multi_process=True)


def describe_event(event: LogEvent, snapshot: Snapshot | None) -> list[tuple[str, str]]:
    """(label, value) lines of one event in full: nothing cut, the paths whole."""
    d = event.decoded
    lines = [
        ("time", wall_clock(event.ts_ns, snapshot)),
        ("process", f"pid {event.pid} tid {event.tid} {who(event)}"),
        ("syscall", f"{d.name} (nr {event.nr}, {event.table})"),
        ("arguments", d.args_text),
        ("result", d.result_text),
        ("duration", duration_detail(event.duration_ns)),
    ]
    for label, value in (("path", event.path), ("descriptor", event.fd_path),
                         ("address", event.addr)):
        if value:
            lines.append((label, value))
    lines.append(("strace", strace_line(event)))
    return lines


def errno_causes(events: Iterable[LogEvent], top: int = 3) -> dict[int, str]:
    """For each errno (by number) of the failed events, the paths or addresses most often
    behind it: {2: "/etc/app.conf 8, /usr/lib/x 4"} (the top few, most first)."""
    counts: dict[int, Counter[str]] = {}
    for e in events:
        if e.failed:
            what = e.path or e.addr or e.fd_path
            if what:
                counts.setdefault(-e.raw_ret, Counter())[what] += 1
    return {errno: ", ".join(f"{what} {n:,}" for what, n in sorted(
        c.items(), key=lambda item: (-item[1], item[0]))[:top]) for errno, c in counts.items()}
