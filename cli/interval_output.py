"""`record --interval S`'s output: each interval printed as soon as it is over, from a thread
of its own.

The tracer's thread only queues its snapshots here (on_snapshot must not wait on a slow
stdout: a script reading the intervals, a paused terminal); this thread adds them up and
writes each interval whole, flushed, so a reader sees it at once: a table, or with --json
one JSON document on one line.
"""

from __future__ import annotations

import dataclasses
import json
import queue
import sys
import threading
from collections.abc import Mapping
from types import MappingProxyType
from typing import TextIO

from tracing.errors import UserError
from tracing.model.files import FileKey, FileStats
from tracing.model.intervals import (
    Interval,
    IntervalSlicer,
    format_interval,
    interval_json,
    parse_interval_s,
)
from tracing.model.stats import Snapshot, StatKey, SyscallStats, no_events


def interval_seconds(text: str | None) -> float | None:
    """--interval S, checked (None: not given)."""
    if text is None:
        return None
    try:
        return parse_interval_s(text)
    except ValueError as err:
        raise UserError(str(err)) from None


def slim(snapshot: Snapshot) -> Snapshot:
    """The snapshot without what the intervals never read: its cumulative stats, events,
    samples, connections and files. A stdout that takes nothing (`| less` left on its
    first page, a paused terminal) keeps every queued snapshot: 4 a second, each of them
    whole would hold the totals of every key and the tick's events, for hours."""
    return dataclasses.replace(
        snapshot, stats=EMPTY, since_start=None, events=no_events(), proc_events=(),
        event_data=(), samples=(), connections=(), files=EMPTY_FILES, inflight=None)


EMPTY: Mapping[StatKey, SyscallStats] = MappingProxyType({})
EMPTY_FILES: Mapping[FileKey, FileStats] = MappingProxyType({})


class IntervalWriter:
    def __init__(self, every_s: float, as_json: bool, per_process: bool = False,
                 out: TextIO | None = None) -> None:
        self._slicer = IntervalSlicer(every_s)
        self._json = as_json
        self._per_process = per_process
        self._out = out if out is not None else sys.stdout
        # Unbounded, as the journal's: the tracer thread never waits. Snapshots pile up only
        # while stdout does not take what is written.
        self._queue: queue.SimpleQueue[Snapshot | bool] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="sikte-intervals", daemon=True)
        self.error: OSError | None = None  # the first write that failed: nothing more written
        self.written = 0  # intervals written
        self._thread.start()

    def put(self, snapshot: Snapshot) -> None:
        """From the tracer's thread: queued, never waited on."""
        self._queue.put(slim(snapshot))

    def close(self, last: bool = True) -> OSError | None:
        """Write what is queued and (`last`) the last interval, which ends with the trace;
        then the thread ends. Returns the error that stopped the writing, if any."""
        self._queue.put(last)
        self._thread.join()
        return self.error

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if isinstance(item, bool):
                final = self._slicer.finish() if item else None
                if final is not None:
                    self._write(final)
                return
            for interval in self._slicer.add(item):
                self._write(interval)

    def _write(self, interval: Interval) -> None:
        if self.error is not None:
            return  # stdout failed: the intervals are still added up, not written
        if self._json:
            text = json.dumps(interval_json(interval)) + "\n"
        else:
            text = format_interval(interval, self._per_process) + "\n\n"
        try:
            self._out.write(text)
            self._out.flush()
        except OSError as err:
            self.error = err
            return
        self.written += 1
