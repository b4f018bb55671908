"""`record --interval S`: the trace cut into intervals of S seconds, each with its own
counts, errors and latency (like `syscount -i`).

Interval N (from 1) is the slot [(N-1)*S, N*S) of the session's clock (seconds since the
trace started). Each snapshot's change (Snapshot.interval) goes whole into the slot of the
snapshot's time: snapshots come about 4 times a second (up to 2 s apart under load), so a
call made just before a boundary may be counted in the next interval, never twice and never
lost. The intervals therefore add up exactly to the final totals (count, errors and total
time per syscall); their percentiles come from the interval's summed histogram and their
maximum is bounded by it (tracing/model/deltas.py). A slot no snapshot fell into is still
given, empty, and says so (`snapshots` 0: the tracer was busy, or S is shorter than its
tick; its calls are counted in a later interval), apart from one in which the targets made
no calls; the last one ends with the trace.

Pure: no bcc, no Textual, no I/O.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from tracing.boundary.display_text import sanitize
from tracing.model.deltas import DeltaSum
from tracing.model.json_stream import Rows
from tracing.model.report import (
    NAME_LIMIT,
    format_table,
    syscall_row_json,
    syscall_rows,
)
from tracing.model.stats import Snapshot, StatKey, SyscallStats

# Shorter intervals than this would be mostly empty (snapshots come every 0.25 s) and could
# print without end: 1e-9 s over an hour is 3.6e12 intervals.
MIN_INTERVAL_S = 0.1


def parse_interval_s(text: str) -> float:
    """--interval S: a finite number of seconds, at least MIN_INTERVAL_S (ValueError says
    why not, in the user's words)."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"--interval takes a positive number of seconds, like 1 or 0.5 "
                         f"(not {text!r})")
    if seconds < MIN_INTERVAL_S:
        raise ValueError(f"--interval takes at least {MIN_INTERVAL_S:g} s (snapshots come "
                         f"4 times a second; not {text!r})")
    return seconds


@dataclass(frozen=True)
class ProcessCount:
    pid: int
    comm: str | None  # None: the process was not known when its calls were read
    count: int
    errors: int


@dataclass(frozen=True)
class Interval:
    """One slot's calls. `view` is a Snapshot whose `stats` are the slot's (named with the
    trace's arch and probes, as the final summary is)."""

    number: int  # from 1
    start_ns: int  # since the start of the trace
    end_ns: int
    view: Snapshot
    processes: tuple[ProcessCount, ...]
    snapshots: int  # how many snapshots fell into it (0: its calls are in a later one)

    @property
    def start_s(self) -> float:
        return self.start_ns / 1e9

    @property
    def end_s(self) -> float:
        return self.end_ns / 1e9


class IntervalSlicer:
    """Takes every snapshot of a trace in order and gives each interval once it is over
    (when a snapshot of a later slot arrives), then the last one at `finish`. Holds only
    the current slot's sums."""

    def __init__(self, every_s: float) -> None:
        self.every_ns = max(1, round(every_s * 1e9))
        self._slot = 0  # the current slot (0: interval 1)
        self._sum = DeltaSum()
        self._comms: dict[int, str] = {}
        self._snapshots = 0  # in the current slot
        self._last: Snapshot | None = None

    def _slot_of(self, snapshot: Snapshot) -> int:
        return max(0, snapshot.ts_ns - snapshot.start_ts_ns) // self.every_ns

    def add(self, snapshot: Snapshot) -> list[Interval]:
        """The intervals that ended before this snapshot's slot (empty ones included)."""
        slot = self._slot_of(snapshot)
        done = []
        if self._last is not None:
            while self._slot < slot:
                done.append(self._close((self._slot + 1) * self.every_ns))
                self._slot += 1
        else:
            self._slot = slot
            # Slots before the first snapshot: nothing was read in them.
            done = [self._empty(n, snapshot) for n in range(slot)]
        self._sum.add(snapshot.interval)
        self._snapshots += 1
        processes = snapshot.processes
        for key in snapshot.interval:  # the name a process had when its calls were read
            info = processes.get(key.pid)
            if info is not None:
                self._comms[key.pid] = info.comm
        self._last = snapshot
        return done

    def finish(self, end_ns: int | None = None) -> Interval | None:
        """The last interval, ending with the trace (`end_ns`: since its start; default:
        the last snapshot's time). None: no snapshot came."""
        last = self._last
        if last is None:
            return None
        end = last.ts_ns - last.start_ts_ns if end_ns is None else end_ns
        start = self._slot * self.every_ns
        interval = self._close(max(end, start))
        self._last = None
        return interval

    def _empty(self, slot: int, like: Snapshot) -> Interval:
        return Interval(slot + 1, slot * self.every_ns, (slot + 1) * self.every_ns,
                        _view(like, {}), (), 0)

    def _close(self, end_ns: int) -> Interval:
        assert self._last is not None
        stats = self._sum.stats()
        self._sum.clear()
        comms, self._comms = self._comms, {}
        snapshots, self._snapshots = self._snapshots, 0
        return Interval(self._slot + 1, self._slot * self.every_ns, end_ns,
                        _view(self._last, stats), process_counts(stats, comms), snapshots)


def _view(like: Snapshot, stats: Mapping[StatKey, SyscallStats]) -> Snapshot:
    return dataclasses.replace(like, stats=MappingProxyType(dict(stats)), since_start=None)


def process_counts(stats: Mapping[StatKey, SyscallStats], comms: Mapping[int, str]
                   ) -> tuple[ProcessCount, ...]:
    """Calls and errors per process, most calls first (ties by pid)."""
    sums: dict[int, list[int]] = {}
    for key, s in stats.items():
        entry = sums.setdefault(key.pid, [0, 0])
        entry[0] += s.count
        entry[1] += s.errors
    rows = [ProcessCount(pid, comms.get(pid), count, errors)
            for pid, (count, errors) in sums.items()]
    rows.sort(key=lambda p: (-p.count, p.pid))
    return tuple(rows)


def interval_json(interval: Interval) -> dict[str, object]:
    """`record --interval --json`'s document of one interval (one line of the output)."""
    return {
        "interval": interval.number,
        "start_s": round(interval.start_s, 6),
        "end_s": round(interval.end_s, 6),
        "syscalls": [syscall_row_json(r, interval.view.timing)
                     for r in syscall_rows(interval.view)],
        "processes": [{"pid": p.pid, "comm": p.comm, "count": p.count, "errors": p.errors}
                      for p in interval.processes],
        "snapshots": interval.snapshots,
    }


def interval_heading(interval: Interval) -> str:
    return (f"interval {interval.number}: {interval.start_s:.3f} s to "
            f"{interval.end_s:.3f} s")


def format_interval(interval: Interval, per_process: bool = False) -> str:
    """The text form: a heading, then the `strace -c` table of the interval's calls (one
    per process with `per_process`); "no calls" when there were none, and "not read" when
    no snapshot fell into it."""
    heading = interval_heading(interval)
    if not interval.snapshots:
        return f"{heading}: not read (no snapshot fell in it: its calls are in a later one)"
    if not interval.processes:
        return f"{heading}: no calls"
    if not per_process:
        return f"{heading}\n{format_table(syscall_rows(interval.view), interval.view.timing)}"
    parts = [heading]
    for p in sorted(interval.processes, key=lambda p: p.pid):
        comm = "?" if p.comm is None else sanitize(p.comm, NAME_LIMIT)  # set by the process
        parts.append(f"pid {p.pid} ({comm})\n"
                     f"{format_table(syscall_rows(interval.view, p.pid), interval.view.timing)}")
    return "\n\n".join(parts)


def iter_json_line(doc: Mapping[str, object]) -> Iterator[str]:
    """The text of json.dumps(doc) (one line), in pieces: a `Rows` value is made, encoded
    and written a row at a time (the final summary's long lists, as in json_stream)."""
    yield "{"
    for n, (key, value) in enumerate(doc.items()):
        yield ("" if n == 0 else ", ") + json.dumps(key) + ": "
        if not isinstance(value, Rows):
            yield json.dumps(value)
            continue
        yield "["
        for i, row in enumerate(value):
            yield ("" if i == 0 else ", ") + json.dumps(row)
        yield "]"
    yield "}"
