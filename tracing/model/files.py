"""Per-file accounting: for each (process, path), its opens and failed opens by errno, and the
I/O done through its descriptors (calls, reads and bytes read, writes and bytes written, time).

The kernel counts I/O per descriptor (map fd_io) and hands a descriptor's totals over when
its number stops meaning its file (close, dup2 onto it, reuse, exit): those become the
path's closed totals here. The descriptors still open are read each tick and attributed to
the path they name now, so a descriptor's I/O is counted for one path only, however often
its number is reused. Totals are cumulative since the trace began. Pure: no bcc, no I/O.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from tracing.model.captures import IoTotals
from tracing.model.persistent_map import PersistentMap

_ZERO = IoTotals()
# (process, path) pairs kept apart; past it a new pair is counted under pid 0 ("all
# processes") for its path: per-path totals stay exact, and memory is bounded by this plus
# the path table's bound, however many short processes (a build, or a local user's fork
# loop) open however many paths. A pair costs about 600 bytes here, in the snapshots' map
# and in the journal's last-written copy: 50,000 of them (25,000 short processes opening
# their loader cache and libc) are about 30 MB. Pairs are not folded once kept apart: the
# journal holds each pair's last totals, and a pair moved under pid 0 would count twice.
MAX_FILES = 50_000
ALL_PROCESSES = 0


def _add(a: IoTotals, b: IoTotals) -> IoTotals:
    return IoTotals._make(map(operator.add, a, b))


class FileKey(NamedTuple):
    pid: int
    path_id: int  # tracing.model.paths.PathTable id (0: a descriptor of unknown name)


@dataclass(frozen=True, slots=True)
class FileStats:
    opens: int = 0  # successful opens of the path
    open_errors: tuple[tuple[int, int], ...] = ()  # (errno, count) of failed opens, by errno
    calls: int = 0  # read and write calls on its descriptors (failed ones too)
    reads: int = 0
    bytes_read: int = 0
    writes: int = 0
    bytes_written: int = 0
    io_ns: int = 0  # time in those calls

    @property
    def open_failures(self) -> int:
        return sum(count for _, count in self.open_errors)

    @property
    def io(self) -> IoTotals:
        return IoTotals(self.calls, self.reads, self.bytes_read, self.writes,
                        self.bytes_written, self.io_ns)


def merge_files(items: Mapping[FileKey, FileStats]) -> dict[int, FileStats]:
    """Per path over every process (the Files view and files.parquet show paths)."""
    merged: dict[int, FileStats] = {}
    for key, stats in items.items():
        before = merged.get(key.path_id)
        merged[key.path_id] = stats if before is None else _plus(before, stats)
    return merged


def _plus(a: FileStats, b: FileStats) -> FileStats:
    errors = dict(a.open_errors)
    for code, count in b.open_errors:
        errors[code] = errors.get(code, 0) + count
    return _stats(a.opens + b.opens, errors, _add(a.io, b.io))


def _stats(opens: int, errors: Mapping[int, int], io: IoTotals) -> FileStats:
    return FileStats(opens, tuple(sorted(errors.items())), *io)


class FileAccounts:
    """Closed totals per FileKey plus the live totals of the open descriptors, folded into
    one immutable mapping per tick (`totals()`), which shares unchanged entries with the
    one before."""

    def __init__(self, max_files: int = MAX_FILES) -> None:
        self.max_files = max_files
        self.folded = 0  # updates of pairs past max_files, counted under ALL_PROCESSES
        self._keys: set[FileKey] = set()  # the pairs kept apart
        self._opens: dict[FileKey, int] = {}
        self._errors: dict[FileKey, dict[int, int]] = {}
        self._closed: dict[FileKey, IoTotals] = {}
        self._live: dict[FileKey, IoTotals] = {}  # the open descriptors', by their path now
        self._dirty: set[FileKey] = set()
        self._totals: PersistentMap[FileKey, FileStats] = PersistentMap()

    def _admit(self, key: FileKey) -> FileKey:
        if key in self._keys:
            return key
        if len(self._keys) < self.max_files:
            self._keys.add(key)
            return key
        self.folded += 1
        return FileKey(ALL_PROCESSES, key.path_id)

    def opened(self, key: FileKey, count: int = 1) -> None:
        key = self._admit(key)
        self._opens[key] = self._opens.get(key, 0) + count
        self._dirty.add(key)

    def open_failed(self, key: FileKey, errno: int, count: int = 1) -> None:
        key = self._admit(key)
        errors = self._errors.setdefault(key, {})
        errors[errno] = errors.get(errno, 0) + count
        self._dirty.add(key)

    def closed(self, key: FileKey, totals: IoTotals) -> None:
        """A descriptor's totals, handed over: they belong to this path for good."""
        key = self._admit(key)
        before = self._closed.get(key)
        self._closed[key] = totals if before is None else _add(before, totals)
        self._dirty.add(key)

    def set_live(self, live: Mapping[FileKey, IoTotals]) -> None:
        """The open descriptors' totals now, summed per path (replaces the previous)."""
        old = self._live
        if not self._keys.issuperset(live.keys()):
            live = self._admitted(live)
        for key in old.keys() - live.keys():
            self._dirty.add(key)
        for key, totals in live.items():
            if old.get(key) != totals:
                self._dirty.add(key)
        self._live = dict(live)

    def _admitted(self, live: Mapping[FileKey, IoTotals]) -> dict[FileKey, IoTotals]:
        out: dict[FileKey, IoTotals] = {}
        for key, totals in live.items():
            key = self._admit(key)
            before = out.get(key)
            out[key] = totals if before is None else _add(before, totals)
        return out

    def totals(self) -> PersistentMap[FileKey, FileStats]:
        """Every (pid, path) seen, cumulative; the same object while nothing changed."""
        if self._dirty:
            changes = {key: self._stats_of(key) for key in self._dirty}
            self._dirty = set()
            self._totals = self._totals.updated(changes)
        return self._totals

    def _stats_of(self, key: FileKey) -> FileStats:
        closed, live = self._closed.get(key), self._live.get(key)
        if closed is None:
            io = _ZERO if live is None else live
        else:
            io = closed if live is None else _add(closed, live)
        errors = self._errors.get(key)
        return FileStats(self._opens.get(key, 0), tuple(sorted(errors.items())) if errors else (),
                         *io)
