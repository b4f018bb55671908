"""The Files view's summaries kept across snapshots: per path and per directory, recomputed
only for the entries that changed, and the order of the current sort kept by insertion, so
an update costs what changed and not every path (200,000 of them with a flood of names).

A snapshot's `files` is a PersistentMap that shares unchanged values with the one before
(PersistentMap.changed_since finds the changed ones by identity); any other mapping, another
path table or an older map is read whole again. Sums are kept by adding an entry's new
totals and taking its old ones off, so a path used by thousands of processes (or a
directory of thousands of files) costs one entry per change too. Pure: no Textual.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tracing.model.files import FileKey, FileStats
from tracing.model.paths import PathTable
from tracing.model.persistent_map import PersistentMap
from tui.file_rows import PathSummary, directory_of

UNKNOWN = "(unknown)"
# Moving one name in the order of 200,000 costs about 0.1 ms (a list insert and delete); past
# this many changed names a merge of the changed ones into the rest is cheaper.
MOVE_AT_MOST = 64


class _Sums:
    """One path's or directory's totals, from the entries (pid, path) under it. Plain dicts
    and lists: a flood makes 200,000 of these at once."""

    __slots__ = ("errors", "pids", "totals")

    def __init__(self, pid: int, stats: FileStats) -> None:
        """The sums of one entry."""
        # Entries per process; a lone entry's pid as is (most paths: a dict each is 40 MB).
        self.pids: int | dict[int, int] = pid
        # failed opens by errno
        self.errors: dict[int, int] | None = dict(stats.open_errors) or None
        # opens, calls, reads, bytes read, writes, written, I/O ns
        self.totals = [stats.opens, stats.calls, stats.reads, stats.bytes_read, stats.writes,
                       stats.bytes_written, stats.io_ns]

    def apply(self, pid: int, stats: FileStats, sign: int) -> None:
        pids = self.pids
        if isinstance(pids, int):
            pids = self.pids = {pids: 1}
        held = pids.get(pid, 0) + sign
        if held:
            pids[pid] = held
        else:
            del pids[pid]
        if stats.open_errors:
            self._apply_errors(stats.open_errors, sign)
        t = self.totals
        t[0] += sign * stats.opens
        t[1] += sign * stats.calls
        t[2] += sign * stats.reads
        t[3] += sign * stats.bytes_read
        t[4] += sign * stats.writes
        t[5] += sign * stats.bytes_written
        t[6] += sign * stats.io_ns

    def _apply_errors(self, open_errors: Iterable[tuple[int, int]], sign: int) -> None:
        errors = self.errors
        if errors is None:
            errors = self.errors = {}
        for errno, count in open_errors:
            held = errors.get(errno, 0) + sign * count
            if held:
                errors[errno] = held
            else:
                del errors[errno]

    @property
    def failed(self) -> int:
        return sum(self.errors.values()) if self.errors else 0

    @property
    def procs(self) -> int:
        return 1 if isinstance(self.pids, int) else len(self.pids)

    @property
    def empty(self) -> bool:
        """No entry left (only when a mapping other than a PersistentMap lost keys)."""
        return not self.pids and not isinstance(self.pids, int)

    def summary(self, name: str) -> PathSummary:
        opens, calls, reads, bytes_read, writes, written, io_ns = self.totals
        errors = tuple(sorted(self.errors.items(), key=lambda e: (-e[1], e[0]))) \
            if self.errors else ()
        pids = frozenset((self.pids,) if isinstance(self.pids, int) else self.pids)
        return PathSummary(name, pids, opens, errors, calls, reads,
                           bytes_read, writes, written, io_ns)


class _Level:
    """The sums of one level (paths, or directories), their summaries made when asked, and
    the names changed since the ranking last took them."""

    def __init__(self) -> None:
        self.sums: dict[str, _Sums] = {}
        self.changed: set[str] = set()
        self._made: dict[str, PathSummary] = {}

    def apply(self, name: str, pid: int, stats: FileStats, sign: int) -> None:
        sums = self.sums.get(name)
        if sums is None:  # a new name: its first entry (never a removal)
            self.sums[name] = _Sums(pid, stats)
        else:
            sums.apply(pid, stats, sign)

    def refresh(self, names: set[str]) -> int:
        """Forget the summaries of `names` (changed); drop those left without entries."""
        self.changed |= names
        count = 0
        for name in names:
            self._made.pop(name, None)
            if self.sums[name].empty:
                del self.sums[name]
            count += 1
        return count

    def summary(self, name: str) -> PathSummary | None:
        made = self._made.get(name)
        if made is None:
            sums = self.sums.get(name)
            if sums is None:
                return None
            made = self._made[name] = sums.summary(name)
        return made

    def __len__(self) -> int:
        return len(self.sums)


class FileIndex:
    """Per-path and per-directory summaries of the newest `files` given to `update`."""

    def __init__(self) -> None:
        self.paths = _Level()
        self.directories = _Level()
        self.recomputed = 0  # paths and directories the last update summed again (tests)
        self._files: Mapping[FileKey, FileStats] | None = None
        self._table: PathTable | None = None
        self._names: dict[int, tuple[str, str]] = {}  # path id -> (path, directory)
        self._directories: dict[str, str] = {}
        # One per level: each takes its level's changes (so g back and forth costs little).
        self._rankings: dict[bool, Ranking] = {}

    def update(self, files: Mapping[FileKey, FileStats], table: PathTable | None) -> None:
        if files is self._files and table is self._table:
            self.recomputed = 0
            return
        older = self._files
        keys = self._changed_keys(files, table)
        if keys is None or older is None:  # read whole
            self._reset(table)
            self._files = files
            self.recomputed = self._apply_all({}, files.items())
            return
        self._files = files
        self.recomputed = self._apply_all(older, [(key, files[key]) for key in keys])

    def _apply_all(self, older: Mapping[FileKey, FileStats],
                   changed: Iterable[tuple[FileKey, FileStats]]) -> int:
        """Each changed entry's old totals off and its new ones on; the summaries made."""
        paths, directories = self.paths, self.directories
        path_names: set[str] = set()
        directory_names: set[str] = set()
        for key, new in changed:
            path, directory = self._name(key.path_id)
            old = older.get(key)
            if old is not None:
                paths.apply(path, key.pid, old, -1)
                directories.apply(directory, key.pid, old, -1)
            paths.apply(path, key.pid, new, 1)
            directories.apply(directory, key.pid, new, 1)
            path_names.add(path)
            directory_names.add(directory)
        return paths.refresh(path_names) + directories.refresh(directory_names)

    def _changed_keys(self, files: Mapping[FileKey, FileStats], table: PathTable | None
                      ) -> list[FileKey] | None:
        if table is not self._table or self._files is None:
            return None
        if isinstance(files, PersistentMap) and isinstance(self._files, PersistentMap):
            return files.changed_since(self._files)
        return None

    def _reset(self, table: PathTable | None) -> None:
        self.paths, self.directories = _Level(), _Level()
        self._names, self._directories, self._table = {}, {}, table

    def _name(self, path_id: int) -> tuple[str, str]:
        found = self._names.get(path_id)
        if found is None:
            text = self._table.text(path_id) if self._table is not None else ""
            path = text or UNKNOWN
            directory = directory_of(path)
            # One string per directory, not one per path under it.
            directory = self._directories.setdefault(directory, directory)
            found = self._names[path_id] = (path, directory)
        return found

    def level(self, grouped: bool) -> _Level:
        return self.directories if grouped else self.paths

    def ranked(self, grouped: bool, sort: str, reverse: bool) -> Ranking:
        """A level's names in that order, up to the last update."""
        level = self.level(grouped)
        ranking = self._rankings.get(grouped)
        if ranking is None or ranking.level is not level or \
                (ranking.sort, ranking.reverse) != (sort, reverse):
            ranking = self._rankings[grouped] = Ranking(level, sort, reverse)
        else:
            ranking.sync()
        return ranking


_SORT_VALUES: dict[str, Callable[[_Sums], int]] = {
    "procs": lambda s: s.procs, "opens": lambda s: s.totals[0],
    "failed": lambda s: s.failed, "reads": lambda s: s.totals[2],
    "bytes_read": lambda s: s.totals[3], "writes": lambda s: s.totals[4],
    "bytes_written": lambda s: s.totals[5], "io_ns": lambda s: s.totals[6],
}  # fmt: skip


def _sort_key(sort: str, reverse: bool) -> Callable[[str, _Sums], tuple[Any, ...]]:
    """Ascending keys: ties in path order whichever the direction (as sorted_summaries)."""
    if sort == "path":
        return lambda name, _: (name,)  # read from the end when reversed (names are unique)
    value = _SORT_VALUES[sort]
    if reverse:
        return lambda name, s: (-value(s), name)
    return lambda name, s: (value(s), name)


class Ranking:
    """One level's names in the order of one sort, kept sorted as their sums change."""

    def __init__(self, level: _Level, sort: str, reverse: bool) -> None:
        self.level, self.sort, self.reverse = level, sort, reverse
        self._key = _sort_key(sort, reverse)
        self._from_end = sort == "path" and reverse
        self._keys: dict[str, tuple[Any, ...]] = {}
        self._order: list[tuple[Any, ...]] = []
        self.resort()

    def resort(self) -> None:
        key = self._key
        self._keys = {name: key(name, s) for name, s in self.level.sums.items()}
        self._order = sorted(self._keys.values())
        self.level.changed.clear()

    def sync(self) -> None:
        """Take the level's changed names into the order: each moved by bisection when they
        are few, else the unchanged ones kept in order and merged with the changed ones
        (two sorted runs: a linear merge, not a sort of every name)."""
        changed, sums, keys, key = self.level.changed, self.level.sums, self._keys, self._key
        if len(changed) <= MOVE_AT_MOST:
            order = self._order
            for name in changed:
                old = keys.pop(name, None)
                if old is not None:
                    del order[bisect_left(order, old)]
                held = sums.get(name)
                if held is not None:
                    insort(order, keys.setdefault(name, key(name, held)))
        else:
            for name in changed:
                keys.pop(name, None)
            new = sorted(keys.setdefault(name, key(name, sums[name]))
                         for name in changed if name in sums)
            self._order = [k for k in self._order if k[-1] not in changed]
            self._order += new
            self._order.sort()
        changed.clear()

    def __len__(self) -> int:
        return len(self._order)

    def top(self, limit: int) -> list[PathSummary]:
        """The first `limit` summaries in this order."""
        limit = max(limit, 0)
        picked = reversed(self._order[max(len(self._order) - limit, 0):]) if self._from_end \
            else self._order[:limit]
        summary = self.level.summary
        return [s for k in picked if (s := summary(k[-1])) is not None]
