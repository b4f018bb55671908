"""Reading the kernel's per-(pid, tid, syscall, ABI) aggregates: what changed since the last
read, and retiring the entries of exited threads.

Under process churn (a shell starting a thousand short processes a second, ~25 entries each)
the stats map fills unless exited threads' entries leave it at every tick, and a tick must
cost what changed, not what the trace has seen. So nothing of an exited thread is kept here:
its totals live in the snapshots (SnapshotBuilder, which folds old exited processes into
bounded rows) and in the journal; this module remembers only which thread ids were retired
(a bitmap of pid_max bits), so that a reused id's new entries add to the earlier totals.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tracing.engine.bcc_types import BccTable
from tracing.engine.maps import (
    STAT_KEY_DTYPE,
    STAT_VALUE_DTYPE,
    BatchReader,
    delete_entries,
    key_ids,
)
from tracing.engine.memory import release_after_load
from tracing.model.stats import StatKey, SyscallStats, merge_stats

# One-bucket histograms of small counts, shared by every entry that has one (the entries of
# short-lived processes mostly do): a few thousand at most, instead of two tuples per entry.
_SHARED_COUNTS = 16
_SINGLE: dict[tuple[int, int], tuple[tuple[int, int], ...]] = {}

# The trace's total of a key (SnapshotBuilder.total_of), or None when it has none (any more).
BaseOf = Callable[[StatKey], SyscallStats | None]


class AggregateReader:
    """The stats map's changes, read a chunk at a time; the exited threads' entries deleted.

    Between reads it keeps, per live entry, its key, id, count and total time (to tell what
    changed: 40 bytes), never a copy of the map's values (over a KiB an entry, and the map
    holds the process rate times a tick of them)."""

    def __init__(self, table: BccTable, max_tid: int, settled_by_hist: bool = True) -> None:
        """`settled_by_hist`: every call adds one to its entry's histogram (exact timing), so
        an entry whose histogram does not sum to its count was read mid-update. Otherwise
        (sampled: weighted buckets; off: none) every changed entry is read once more."""
        self._table = table
        self._settled_by_hist = settled_by_hist
        self._reader = BatchReader(table, STAT_KEY_DTYPE, STAT_VALUE_DTYPE)
        # The last read, sorted by id: ids, counts (unsettled ones marked: read again),
        # total times and keys (for retire).
        self._ids = np.empty(0, np.uint64)
        self._counts = np.empty(0, np.uint64)
        self._times = np.empty(0, np.uint64)
        self._keys = np.empty(0, STAT_KEY_DTYPE)
        # Thread ids whose entries were retired, and the earlier totals of live entries
        # whose id came back (dropped when they are retired in turn).
        self._retired_tids = np.zeros(max_tid + 1, dtype=bool)
        self._bases: dict[int, SyscallStats] = {}
        # Made once the program is loaded: what the compile freed goes back, and the large
        # arrays of each read are returned when freed (tracing/engine/memory.py).
        release_after_load()

    def read_changes(self, base_of: BaseOf | None = None) -> dict[StatKey, SyscallStats]:
        """The totals (cumulative since load) of the (pid, tid, syscall, ABI) aggregates
        that are new or changed since the last call. These totals are the trace's only
        ones: snapshots carry them (SnapshotBuilder folds them in and tells each one's
        change from the total it held), the journal writes them. Python work is one object
        per changed entry, the rest numpy on one chunk of the map at a time.

        `base_of(key)`: the total the trace holds for a key whose thread was retired (its
        kernel entry deleted) and whose id came back (a reused pid or tid): the new entry's
        counts add to it."""
        totals: dict[StatKey, SyscallStats] = {}
        parts: list[tuple[np.ndarray, ...]] = []
        last_ids, last_counts, last_times = self._ids, self._counts, self._times
        for keys, values in self._reader.chunks():
            ids = key_ids(keys)
            counts, times = values["count"].copy(), values["total_ns"].copy()
            if len(last_ids):
                pos = np.minimum(np.searchsorted(last_ids, ids), len(last_ids) - 1)
                seen = last_ids[pos] == ids
                same = seen & (last_counts[pos] == counts) & (last_times[pos] == times)
            else:
                seen = same = np.zeros(len(ids), dtype=bool)
            rows = np.flatnonzero(~same)
            changed = values[rows]
            # The kernel updates an entry field by field: an entry read mid-update (its
            # histogram not yet matching its count) must count as changed next time too.
            if self._settled_by_hist:
                unsettled = changed["hist"].sum(axis=1, dtype=np.uint64) != changed["count"]
            else:
                unsettled = np.ones(len(rows), dtype=bool)
            counts[rows[unsettled]] = np.uint64(2**64 - 1)
            parts.append((ids, counts, times, keys.copy()))
            self._report(keys[rows], ids[rows], seen[rows], changed, base_of, totals)
        self._keep(parts)
        return totals

    def _report(self, keys: np.ndarray, ids: np.ndarray, seen: np.ndarray,
                values: np.ndarray, base_of: BaseOf | None,
                totals: dict[StatKey, SyscallStats]) -> None:
        """Changed entries into totals. A reused thread id's new entries add to the trace's
        earlier totals (looked up once, when they appear, and kept while they live)."""
        bases, retired = self._bases, self._retired_tids
        stat_keys, now = self._keys_of(keys), self._stats_of(values)
        totals.update(zip(stat_keys, now, strict=True))
        tids = np.minimum(keys["tid"].astype(np.int64), len(retired) - 1)
        id_list = ids.tolist()
        if base_of is not None:
            for i in np.flatnonzero(~seen & retired[tids]).tolist():
                base = base_of(stat_keys[i])
                if base is not None:
                    bases[id_list[i]] = base
        if bases:
            for i, id_ in enumerate(id_list):
                base = bases.get(id_)
                if base is not None:
                    totals[stat_keys[i]] = merge_stats((base, now[i]))

    def _keep(self, parts: list[tuple[np.ndarray, ...]]) -> None:
        """This read's ids, counts, times and keys, sorted by id, for the next one."""
        if not parts:
            self._ids, self._counts = np.empty(0, np.uint64), np.empty(0, np.uint64)
            self._times, self._keys = np.empty(0, np.uint64), np.empty(0, STAT_KEY_DTYPE)
            return
        ids, counts, times, keys = (np.concatenate(column) for column in zip(*parts, strict=True))
        order = np.argsort(ids)
        self._ids, self._counts = ids[order], counts[order]
        self._times, self._keys = times[order], keys[order]

    @staticmethod
    def _keys_of(keys: np.ndarray) -> list[StatKey]:
        pids, tids = keys["pid"].tolist(), keys["tid"].tolist()
        # A process's main thread: one int object for both (an entry's key is ~20% smaller).
        tids = [p if p == t else t for p, t in zip(pids, tids, strict=True)]
        return list(map(StatKey, pids, tids, keys["nr"].tolist(), keys["abi"].tolist()))

    @staticmethod
    def _stats_of(values: np.ndarray) -> list[SyscallStats]:
        """SyscallStats for a batch of rows: histograms taken apart in one numpy pass."""
        rows, bucket_ids = np.nonzero(values["hist"])
        counts = values["hist"][rows, bucket_ids].tolist()
        ends = np.searchsorted(rows, np.arange(1, len(values) + 1)).tolist()
        buckets = bucket_ids.tolist()
        result, start = [], 0
        columns = zip(values["count"].tolist(), values["errors"].tolist(),
                      values["total_ns"].tolist(), values["min_ns"].tolist(),
                      values["max_ns"].tolist(), ends, strict=True)
        single = _SINGLE
        for count, errors, total, low, high, end in columns:
            if end - start == 1 and count <= _SHARED_COUNTS:  # most entries of short lives
                hist = single.get((buckets[start], count)) or single.setdefault(
                    (buckets[start], count), ((buckets[start], count),))
            else:
                hist = tuple(zip(buckets[start:end], counts[start:end], strict=True))
            if count == 1:  # one call: its time is the minimum and the maximum (one int)
                low = high = total
            result.append(SyscallStats(count, errors, total, low, high, hist))
            start = end
        return result

    def retire(self, threads: set[tuple[int, int]], processes: set[int]) -> None:
        """Delete the entries of exited threads from the kernel map once read_changes has
        reported their final values, so the map, and every read, holds live threads only
        (under process churn the map then holds about two ticks of short-lived processes).

        Their totals are not kept here (the snapshots have them): only that their thread ids
        were retired, so that a reused id's new entries are added to them (read_changes)."""
        keys = self._keys
        if not (threads or processes) or not len(keys):
            return
        pid_tid = (keys["pid"].astype(np.uint64) << 32) | keys["tid"]
        wanted = np.fromiter(((p << 32) | t for p, t in threads), dtype=np.uint64)
        mask = np.isin(pid_tid, wanted) | np.isin(keys["pid"], list(processes))
        rows = np.flatnonzero(mask)
        if not len(rows):
            return
        gone = keys[rows]
        delete_entries(self._table, gone)
        tids = gone["tid"].astype(np.int64)
        self._retired_tids[tids[tids < len(self._retired_tids)]] = True
        if self._bases:
            for id_ in self._ids[rows].tolist():
                self._bases.pop(id_, None)
        keep = ~mask
        self._ids, self._counts = self._ids[keep], self._counts[keep]
        self._times, self._keys = self._times[keep], keys[keep]
