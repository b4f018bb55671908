"""What the journal writes, as SQL: the rows of a batch of snapshots, in one transaction per
flush (JournalWriter), the session metadata a snapshot changes and the host's, and the bounded
copy of a journal into memory when its disk fails. The thread, the caps and the fallback that
use these are in journal.py; the tables are in schema.py.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import socket
import sqlite3
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from tracing.model.bpf_cost import bpf_json
from tracing.model.files import FileKey, FileStats
from tracing.model.inflight import inflight_meta
from tracing.model.paths import PathTable
from tracing.model.samples import SampleKey, StackSample
from tracing.model.selection import EventSelection
from tracing.model.snapshots import FOLDED_PID
from tracing.model.stats import (
    ProcessInfo,
    ProcKind,
    Snapshot,
    StatKey,
    SyscallStats,
    bucket_bounds,
)
from tracing.session.schema import (
    AGGREGATE_INSERT,
    CONNECTION_COLUMNS,
    EVENT_LAYOUT,
    PROCESS_INSERT,
    TIMELINE_INSERT,
    hist_to_blob,
)


def interval_max(delta: SyscallStats) -> int:
    """The longest call of an interval, as far as its histogram tells: the top bucket's
    upper bound, or the observed maximum when that is lower (the kernel keeps only the
    maximum since the start)."""
    if not delta.hist:
        return 0
    return min(delta.max_ns, bucket_bounds(delta.hist[-1][0])[1] - 1)


def host_metadata() -> dict[str, Any]:
    """The host's part of a session's metadata: where it was traced, by which sikte-tui."""
    uname = platform.uname()
    return {"host": socket.gethostname(), "kernel": uname.release, "machine": uname.machine,
            "sikte_tui_version": _version()}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sikte-tui")
    except PackageNotFoundError:
        return "unknown"


class JournalWriter:
    """What the writer thread keeps between flushes (it alone touches the database)."""

    def __init__(self) -> None:
        # The processes as last written, of the last snapshot written only: the next flush
        # compares with them. Not every process ever seen: the tracer folds the exited ones
        # (tracing.system.process_fold) and this copy would keep them all alive.
        self.processes: dict[int, ProcessInfo] = {}
        self.stack_ids: dict[SampleKey, int] = {}
        self.sample_counts: dict[SampleKey, int] = {}  # cumulative, as written
        # Bytes of individual events it may still write (None: no cap). Once a batch does not
        # fit it is 0 for good: events stop at one point in time, not here and there.
        self.event_budget: int | None = None
        self.events_capped = 0  # individual events not written: the journal's cap
        self.events_bytes = 0  # bytes of individual events the database holds
        self.paths_written = 0  # path ids 0..paths_written-1 are in the paths table
        self.files: dict[FileKey, FileStats] = {}  # per-file totals as written

    def flush(self, db: sqlite3.Connection, snapshots: list[Snapshot],
              meta: Mapping[str, Any]) -> None:
        """Write snapshots in one transaction. The in-memory state changes only after the
        commit, so a failed flush can be retried whole elsewhere."""
        stack_ids, sample_counts = dict(self.stack_ids), dict(self.sample_counts)
        budget, capped, written = self.event_budget, 0, 0
        last = snapshots[-1]
        with db:
            for snapshot in snapshots:
                self._timeline(db, snapshot)
                budget, n_bytes, n_capped = self._events(db, snapshot, budget)
                written += n_bytes
                capped += n_capped
                self._samples(db, snapshot, stack_ids, sample_counts)
            db.executemany(
                f"INSERT OR REPLACE INTO connections VALUES "
                f"({','.join('?' * len(CONNECTION_COLUMNS))})",
                (dataclasses.astuple(c) for c in {
                    c.conn_id: c for s in snapshots for c in s.connections}.values()))
            self._aggregates(db, snapshots)
            paths_written = self._paths(db, last.paths, self.paths_written)
            files = self._files(db, last.files, self.files)
            processes, kept = self._changed_processes(snapshots)
            db.executemany(f"INSERT OR REPLACE INTO processes ({','.join(PROCESS_INSERT)}) "
                           f"VALUES ({','.join('?' * len(PROCESS_INSERT))})",
                           (_process_row(p) for p in processes))
            self._threads(db, processes, snapshots)
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                           ((k, json.dumps(v)) for k, v in meta.items()))
        self.event_budget = budget
        self.events_capped += capped
        self.events_bytes += written
        self.stack_ids, self.sample_counts = stack_ids, sample_counts
        self.paths_written, self.files = paths_written, files
        self.processes = kept

    @staticmethod
    def _aggregates(db: sqlite3.Connection, snapshots: list[Snapshot]) -> None:
        """Each entry's totals since the start, as the sum of its changes (the snapshots'
        intervals) added to its row. Not the snapshots' totals: those fold the entries of
        long-gone processes into one per syscall (SnapshotBuilder) and start a reused
        pid's entries again once its old ones are folded, while each row here keeps
        every life of its (pid, tid, syscall, ABI)."""
        changes = summed_intervals(snapshots)
        db.create_function("sikte_hist_add", 2, _hist_add, deterministic=True)
        db.executemany(
            f"INSERT INTO aggregates ({','.join(AGGREGATE_INSERT)}) "
            f"VALUES ({','.join('?' * len(AGGREGATE_INSERT))}) "
            "ON CONFLICT (pid, tid, nr, abi) DO UPDATE SET count = count + excluded.count, "
            "errors = errors + excluded.errors, total_ns = total_ns + excluded.total_ns, "
            "min_ns = min(min_ns, excluded.min_ns), max_ns = max(max_ns, excluded.max_ns), "
            "hist = sikte_hist_add(hist, excluded.hist)",
            ((k.pid, k.tid, k.nr, k.abi, d.count, d.errors, d.total_ns, d.min_ns, d.max_ns,
              hist_to_blob(d.hist)) for k, d in changes.items()))

    @staticmethod
    def _timeline(db: sqlite3.Connection, snapshot: Snapshot) -> None:
        # Streamed to SQLite (under process churn an interval has tens of thousands).
        rows = ((snapshot.ts_ns, key.pid, key.tid, key.nr, key.abi, delta.count, delta.errors,
                 delta.total_ns, interval_max(delta), hist_to_blob(delta.hist))
                for key, delta in snapshot.interval.items() if delta.count)
        db.executemany(f"INSERT INTO timeline ({','.join(TIMELINE_INSERT)}) "
                       f"VALUES ({','.join('?' * len(TIMELINE_INSERT))})", rows)
        # Renames are not kept one by one: a thread's name is in the threads table, and a
        # target renaming itself in a loop would otherwise fill the disk.
        db.executemany("INSERT INTO proc_events VALUES (?,?,?,?,?,?,?,?)",
                       ((e.ts_ns, e.kind, e.pid, e.tid, e.ppid, e.status, e.comm, e.filename)
                        for e in snapshot.proc_events if e.kind != ProcKind.RENAME))

    @staticmethod
    def _events(db: sqlite3.Connection, snapshot: Snapshot,
                budget: int | None) -> tuple[int | None, int, int]:
        """The snapshot's individual events and what was captured behind them, when they fit
        the budget: (the budget left, bytes written, events not written)."""
        batch = snapshot.events
        if not len(batch):
            return budget, 0, 0
        batch, captures = batch_captures(batch, snapshot.event_data)
        size = batch.nbytes + len(captures)
        if budget is not None and size > budget:
            return 0, 0, len(batch)
        db.execute("INSERT INTO event_batches (first_ts_ns, last_ts_ns, n, data, layout, "
                   "captures) VALUES (?,?,?,?,?,?)",
                   (int(batch["ts"].min()), int(batch["ts"].max()), len(batch),
                    batch.tobytes(), EVENT_LAYOUT, captures))
        return (None if budget is None else budget - size), size, 0

    @staticmethod
    def _paths(db: sqlite3.Connection, paths: PathTable | None, written: int) -> int:
        """The path names added since the last flush (the table only grows); returns how
        many the journal holds."""
        if paths is None:
            return written
        end = len(paths)
        db.executemany("INSERT OR REPLACE INTO paths VALUES (?, ?)",
                       ((i, paths.name(i)) for i in range(written, end)))
        return max(end, written)

    @staticmethod
    def _files(db: sqlite3.Connection, files: Mapping[FileKey, FileStats],
               written: dict[FileKey, FileStats]) -> dict[FileKey, FileStats]:
        """The per-file totals that changed since the last flush (upserted: the newest
        totals); returns every total the journal holds."""
        changed = {k: v for k, v in files.items() if written.get(k) != v}
        db.executemany(f"INSERT OR REPLACE INTO files VALUES ({','.join('?' * 10)})",
                       (file_row(k, v) for k, v in changed.items()))
        return {**written, **changed}

    @staticmethod
    def _samples(db: sqlite3.Connection, snapshot: Snapshot, stack_ids: dict[SampleKey, int],
                 counts: dict[SampleKey, int]) -> None:
        """The interval's samples per stack (snapshots give cumulative counts)."""
        rows = []
        for s in snapshot.samples:
            stack = stack_ids.get(s.key)
            if stack is None:
                stack = stack_ids[s.key] = len(stack_ids) + 1
                db.execute("INSERT INTO stacks VALUES (?,?,?,?,?,?,?)", _stack_row(stack, s))
            delta = s.count - counts.get(s.key, 0)
            counts[s.key] = s.count
            if delta > 0:  # stamped with the end of the time they were taken in
                rows.append((snapshot.samples_until_ns or snapshot.ts_ns, stack, delta))
        db.executemany("INSERT INTO sample_timeline VALUES (?,?,?)", rows)

    def _threads(self, db: sqlite3.Connection, processes: list[ProcessInfo],
                 snapshots: list[Snapshot]) -> None:
        """The threads of the changed processes as the tracker holds them now: rows of
        threads it forgot are deleted (the table stays as bounded as the tracker), those
        new or changed upserted; then the exit times the snapshots' exit events give."""
        upserts: list[tuple[Any, ...]] = []
        deletes: list[tuple[int, int]] = []
        # A pid not among those last written may have been written long ago (a process since
        # folded, its pid now reused): its rows go, as the processes row is replaced.
        unknown = [(p.pid,) for p in processes if p.pid not in self.processes]
        for p in processes:
            thread_changes(self.processes.get(p.pid), p, upserts, deletes)
        db.executemany("DELETE FROM threads WHERE pid = ?", unknown)
        db.executemany("DELETE FROM threads WHERE pid = ? AND tid = ?", deletes)
        # A tid running again (reused by a new thread) has no exit time yet.
        db.executemany(
            "INSERT INTO threads (pid, tid, name, alive) VALUES (?,?,?,?) "
            "ON CONFLICT (pid, tid) DO UPDATE SET name = excluded.name, "
            "alive = excluded.alive, "
            "exit_ts_ns = CASE WHEN excluded.alive = 1 THEN NULL ELSE exit_ts_ns END",
            upserts)
        db.executemany(
            "UPDATE threads SET exit_ts_ns = ? WHERE pid = ? AND tid = ? "
            "AND ifnull(alive, 0) = 0",
            ((e.ts_ns, e.pid, e.tid) for s in snapshots for e in s.proc_events
             if e.kind == ProcKind.EXIT and e.pid and e.tid != e.pid))

    def _changed_processes(self, snapshots: list[Snapshot]
                           ) -> tuple[list[ProcessInfo], dict[int, ProcessInfo]]:
        """The processes to write: each one's newest state in the batch, where it differs
        from what was written; and the last snapshot's, as they will be written.

        Every snapshot of the batch counts, not only the last: the tracer folds a process a
        few seconds after its exit (FOLD_DELAY_S), and a batch queued behind a slow flush
        can be longer than that; the snapshot with its exit is then not the last.
        The folded processes' entry (pid FOLDED_PID, "(N exited processes)") is not a
        process and is not written: each of them has its own row (written before it was
        folded) and the journal's aggregates keep their counts one by one."""
        newest: dict[int, ProcessInfo] = {}
        for snapshot in snapshots:
            newest.update(snapshot.processes)
        newest.pop(FOLDED_PID, None)
        known = self.processes
        changed = []
        for pid, p in newest.items():
            before = known.get(pid)
            if before is not p and before != p:
                changed.append(p)
        return changed, {pid: newest[pid] for pid in snapshots[-1].processes
                         if pid != FOLDED_PID}


def summed_intervals(snapshots: Sequence[Snapshot]) -> dict[StatKey, SyscallStats]:
    """Each entry's successive changes in these snapshots as one: counts, errors and times
    summed, histograms added bucket by bucket (sorted), min and max the last change's (they
    are cumulative); an entry changed once is its change as it came.

    Summed in place, one dict per histogram: with 5,000 busy threads every flush sums
    10,000 entries over four snapshots on the journal thread, and a merged SyscallStats
    and a sorted tuple per step were a large part of each flush (interpreter time taken
    from the UI thread)."""
    sums: dict[StatKey, list[Any]] = {}
    for snapshot in snapshots:
        for key, delta in snapshot.interval.items():
            row = sums.get(key)
            if row is None:
                sums[key] = [delta.count, delta.errors, delta.total_ns, delta.min_ns,
                             delta.max_ns, delta.hist]
                continue
            row[0] += delta.count
            row[1] += delta.errors
            row[2] += delta.total_ns
            row[3], row[4] = delta.min_ns, delta.max_ns
            hist = row[5]
            if not isinstance(hist, dict):  # the second change: the first's buckets counted
                hist = row[5] = _bucket_sums({}, hist)
            _bucket_sums(hist, delta.hist)
    return {key: SyscallStats(count, errors, total, low, high,
                              tuple(sorted(hist.items())) if isinstance(hist, dict) else hist)
            for key, (count, errors, total, low, high, hist) in sums.items()}


def _bucket_sums(into: dict[int, int], hist: Iterable[tuple[int, int]]) -> dict[int, int]:
    for bucket, n in hist:
        into[bucket] = into.get(bucket, 0) + n
    return into


def _hist_add(old: bytes | None, new: bytes | None) -> bytes:
    """SQL sikte_hist_add: two histogram blobs added bucket by bucket, the bytes
    hist_to_blob(hist_merge(...)) of the two would give. SQLite calls it for every entry a
    flush updates (10,000 with 5,000 busy threads), so plain struct: numpy's overhead per
    call made it about three times slower (hist_to_blob packs with struct too)."""
    total: dict[int, int] = {}
    for blob in (old, new):
        if blob:
            flat = struct.unpack(f"<{len(blob) // 8}Q", blob)
            _bucket_sums(total, zip(flat[::2], flat[1::2], strict=True))
    return hist_to_blob(sorted(total.items()))


def batch_captures(batch: np.ndarray, data: Sequence[bytes]) -> tuple[np.ndarray, bytes]:
    """A batch's records and its captured fields back to back. Each record's data_len must
    say how long its part is: when the data do not match the records (a hand-made stream),
    the records go without it (data_len 0) rather than mislead a reader."""
    if len(data) == len(batch) and np.array_equal(
            np.fromiter(map(len, data), dtype=np.int64, count=len(data)), batch["data_len"]):
        return batch, b"".join(data)
    if not batch["data_len"].any():
        return batch, b""
    bare = batch.copy()
    bare["data_len"] = 0
    return bare, b""


def file_row(key: FileKey, stats: FileStats) -> tuple[Any, ...]:
    return (key.pid, key.path_id, stats.opens, json.dumps([list(e) for e in stats.open_errors]),
            stats.calls, stats.reads, stats.bytes_read, stats.writes, stats.bytes_written,
            stats.io_ns)


def _process_row(p: ProcessInfo) -> tuple[Any, ...]:
    code = p.exit.code if p.exit else None
    sig = p.exit.signal if p.exit else None
    return (p.pid, p.ppid, p.comm, p.exe, json.dumps(list(p.cmdline)), p.abi,
            p.start_ts_ns or None, p.exit_ts_ns or None, code, sig, p.container,
            p.threads_seen, p.thread_names_dropped)


def _thread_state(p: ProcessInfo, tid: int) -> tuple[str | None, int | None]:
    alive = None if p.live_threads is None else int(tid in p.live_threads)
    return p.thread_names.get(tid), alive


def thread_changes(old: ProcessInfo | None, new: ProcessInfo,
                   upserts: list[tuple[Any, ...]], deletes: list[tuple[int, int]]) -> None:
    """The threads rows that change from `old` (as last written) to `new`: (pid, tid, name,
    alive) to upsert, (pid, tid) to delete. A new process under a reused pid replaces the
    old one's threads, as its processes row does."""
    before = old.threads if old is not None else frozenset()
    deletes.extend((new.pid, tid) for tid in before - new.threads)
    for tid in new.threads:
        state = _thread_state(new, tid)
        if old is None or tid not in before or _thread_state(old, tid) != state:
            upserts.append((new.pid, tid, *state))


def _stack_row(stack: int, s: StackSample) -> tuple[Any, ...]:
    return (stack, s.pid, s.tid, s.comm, json.dumps(list(s.frames)), json.dumps(list(s.modules)),
            s.kernel_frames)


def snapshot_meta(snapshot: Snapshot) -> dict[str, Any]:
    """What a snapshot changes in the session's metadata."""
    d = snapshot.drops
    exit_status = snapshot.target_exit
    return {
        "start_ts_ns": snapshot.start_ts_ns, "start_wall_time": snapshot.start_wall_time,
        "end_ts_ns": snapshot.ts_ns, "end_wall_time": snapshot.wall_time,
        "arch": snapshot.arch, "state": snapshot.state, "targets": list(snapshot.targets),
        "drops": {"events": d.events, "stats_full": d.stats_full,
                  "proc_events": d.proc_events, "inflight": d.inflight,
                  "events_sent": d.events_sent, "stacks_missing": d.stacks_missing,
                  "stack_collisions": d.stack_collisions, "samples_lost": d.samples_lost,
                  "tcp_events": d.tcp_events},
        "tcp_monitored": snapshot.tcp_monitored,
        # Also known from the command line, but not for a trace started from the picker.
        "sample_hz": snapshot.sample_hz,
        # Issue 18: how the calls were timed ("sampled": times are estimates).
        "timing": snapshot.timing,
        "probes": {str(nr): name for nr, name in snapshot.probes.items()},
        "exit_code": exit_status.code if exit_status else None,
        "exit_signal": exit_status.signal if exit_status else None,
        # The selection may change while tracing (from the TUI): the newest one. (Not known:
        # the one the trace was started with stays.)
        **({} if snapshot.selection is None
           else {"event_selection": selection_meta(snapshot.selection)}),
        # Issue 16: the calls in flight at the last read (at stop: those never finished).
        **({} if snapshot.inflight is None else {"in_flight": inflight_meta(snapshot.inflight)}),
        # Issue 18: our BPF programs' kernel cost since the start (not measured: no key).
        **({"bpf": bpf_json(snapshot)} if snapshot.bpf_stats else {}),
    }


def selection_meta(selection: EventSelection) -> dict[str, Any]:
    """An event selection as the metadata's `event_selection` object."""
    return {"all": selection.all, "failed": selection.failed, "slow_ns": selection.slow_ns,
            "sample_n": selection.sample_n, "files": selection.files}


def database_size(db: sqlite3.Connection) -> int:
    """Bytes the database takes (the file and what its write-ahead log adds to it)."""
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    size = db.execute("PRAGMA page_size").fetchone()[0]
    return int(pages) * int(size)


COPIED_TABLES = ("meta", "processes", "proc_events", "timeline", "aggregates", "stacks",
                 "sample_timeline", "connections", "paths", "files", "threads")


def copy_bounded(source: sqlite3.Connection, target: sqlite3.Connection,
                 events_cap: int) -> tuple[int, int]:
    """Every table of a journal into an empty one, but only the newest individual events
    within `events_cap` bytes: (bytes of events copied, events left out)."""
    with target:
        for table in COPIED_TABLES:
            rows = source.execute(f"SELECT * FROM {table}")
            width = len(rows.description)
            target.executemany(f"INSERT INTO {table} VALUES ({','.join('?' * width)})", rows)
        kept, left_out, budget = [], 0, events_cap
        for row in source.execute("SELECT id, first_ts_ns, last_ts_ns, n, length(data) "
                                  "+ ifnull(length(captures), 0) "
                                  "FROM event_batches ORDER BY id DESC"):
            if row[4] > budget:
                left_out += row[3]
                budget = 0
                continue
            budget -= row[4]
            kept.append(row[0])
        copied = 0
        for batch_id in reversed(kept):
            row = source.execute("SELECT id, first_ts_ns, last_ts_ns, n, data, layout, "
                                 "captures FROM event_batches WHERE id = ?",
                                 (batch_id,)).fetchone()
            target.execute("INSERT INTO event_batches (id, first_ts_ns, last_ts_ns, n, data, "
                           "layout, captures) VALUES (?,?,?,?,?,?,?)", row)
            copied += len(row[4]) + len(row[6] or b"")
    return copied, left_out

