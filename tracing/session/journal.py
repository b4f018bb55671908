"""The session journal: one SQLite file (WAL) per trace, written while it runs.

A writer thread takes the snapshots the tracer produces and commits them in batches at least
twice a second, so a trace killed at any moment leaves a journal that holds everything up to
half a second before. Nothing on the tracer's or the UI's side ever waits for the disk: `put`
only queues. When the disk fails (full, read-only, gone), the writer copies what it has into
memory and goes on there; `status` says so and an export from memory still works.

Nothing grows without a bound (tracing/session/retention.py): a journal stops keeping individual
events at its own cap (aggregates, timeline, processes, samples and connections are always
kept); in memory the oldest individual events go first past MEMORY_EVENTS_CAP; and a journal
in the sessions folder prunes the oldest other sessions there past the folder's cap, when it
starts and as it grows. `status` says each of these.

Tables (docs/session-format.md documents every column):
  meta           key -> JSON value: format, schema version, host, kernel, targets, drops...
  processes      one row per process seen (upserted as it changes)
  proc_events    fork, exec and exit events
  timeline       per tick and (pid, tid, syscall): the interval's counts and histogram
  aggregates     per (pid, tid, syscall): totals since the start, with the histogram
  event_batches  individual syscall events, as packed EVENT_DTYPE records per batch
  stacks         (schema 2) one row per distinct sampled stack of a thread, frames as JSON
  sample_timeline (schema 2) per tick and stack: the CPU samples of the interval
  connections    (schema 2) one row per TCP connection, its newest state
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import queue
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tracing.boundary.userfiles import (
    Dir,
    Owner,
    acting_as,
    ensure_sessions_dir,
    invoking_user,
    open_dir,
    sessions_dir,
)
from tracing.errors import UserError
from tracing.model.connections import Connection
from tracing.model.samples import SampleKey, StackSample
from tracing.model.stats import (
    ProcessInfo,
    Snapshot,
    StatKey,
    SyscallStats,
    bucket_bounds,
    merge_stats,
)
from tracing.session.retention import (
    DEFAULT_SESSIONS_CAP,
    MEMORY_EVENTS_CAP,
    format_cap,
    prune,
    sessions_cap,
)
from tracing.session.retention import journal_cap as journal_cap_for

if TYPE_CHECKING:
    from tracing.session.stored import StoredSession

FORMAT = "sikte-tui-journal"
SCHEMA_VERSION = 2
FLUSH_INTERVAL_S = 0.5  # the most a SIGKILL can lose (plus one tick)
# SQLite's files: the database, the rollback journal of its first transaction, the WAL, its
# index. SQLite deletes the last three itself when done.
JOURNAL_SUFFIXES = ("", "-journal", "-wal", "-shm")
PRUNE_INTERVAL_S = 5.0  # how often a growing journal checks its folder's cap

# Each entry upgrades the schema from the version before it. Journals are upgraded when
# opened for writing; readers accept every version up to SCHEMA_VERSION.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE processes (pid INTEGER PRIMARY KEY, ppid INTEGER, comm TEXT,
            exe TEXT, cmdline TEXT, abi TEXT, start_ts_ns INTEGER, exit_ts_ns INTEGER,
            exit_code INTEGER, exit_signal INTEGER)""",
        """CREATE TABLE proc_events (ts_ns INTEGER, kind INTEGER, pid INTEGER, tid INTEGER,
            ppid INTEGER, status INTEGER, comm TEXT, filename TEXT)""",
        """CREATE TABLE timeline (ts_ns INTEGER, pid INTEGER, tid INTEGER, nr INTEGER,
            count INTEGER, errors INTEGER, total_ns INTEGER, max_ns INTEGER, hist BLOB)""",
        "CREATE INDEX timeline_ts ON timeline (ts_ns)",
        """CREATE TABLE aggregates (pid INTEGER, tid INTEGER, nr INTEGER, count INTEGER,
            errors INTEGER, total_ns INTEGER, min_ns INTEGER, max_ns INTEGER, hist BLOB,
            PRIMARY KEY (pid, tid, nr))""",
        """CREATE TABLE event_batches (id INTEGER PRIMARY KEY, first_ts_ns INTEGER,
            last_ts_ns INTEGER, n INTEGER, data BLOB)""",
    ),
    2: (
        """CREATE TABLE stacks (id INTEGER PRIMARY KEY, pid INTEGER, tid INTEGER, comm TEXT,
            frames TEXT, modules TEXT, kernel_frames INTEGER)""",
        """CREATE TABLE sample_timeline (ts_ns INTEGER, stack INTEGER, count INTEGER)""",
        "CREATE INDEX sample_timeline_ts ON sample_timeline (ts_ns)",
        """CREATE TABLE connections (conn_id INTEGER PRIMARY KEY, ts_ns INTEGER, pid INTEGER,
            tid INTEGER, comm TEXT, cgroup_id INTEGER, family INTEGER, saddr TEXT,
            sport INTEGER, daddr TEXT, dport INTEGER, direction TEXT, state TEXT,
            end_ts_ns INTEGER, result TEXT, error TEXT, cgroup_path TEXT, container_id TEXT,
            container_name TEXT, container_runtime TEXT)""",
        "ALTER TABLE processes ADD COLUMN container TEXT",
    ),
}
CONNECTION_COLUMNS = tuple(f.name for f in dataclasses.fields(Connection))

_HIST_DTYPE = np.dtype("<u8")


def hist_to_blob(hist: Iterable[tuple[int, int]]) -> bytes:
    """A sparse histogram as little-endian u64 (bucket, count) pairs."""
    return np.array(list(hist), dtype=_HIST_DTYPE).tobytes()


def hist_from_blob(blob: bytes | None) -> tuple[tuple[int, int], ...]:
    if not blob:
        return ()
    pairs = np.frombuffer(blob, dtype=_HIST_DTYPE).reshape(-1, 2).tolist()
    return tuple((b, c) for b, c in pairs)


def interval_max(delta: SyscallStats) -> int:
    """The longest call of an interval, as far as its histogram tells: the top bucket's
    upper bound, or the observed maximum when that is lower (the kernel keeps only the
    maximum since the start)."""
    if not delta.hist:
        return 0
    return min(delta.max_ns, bucket_bounds(delta.hist[-1][0])[1] - 1)


def apply_migrations(db: sqlite3.Connection, current: int) -> None:
    for version in range(current + 1, SCHEMA_VERSION + 1):
        for statement in MIGRATIONS[version]:
            db.execute(statement)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def host_metadata() -> dict[str, Any]:
    uname = platform.uname()
    return {"host": socket.gethostname(), "kernel": uname.release, "machine": uname.machine,
            "sikte_tui_version": _version()}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sikte-tui")
    except PackageNotFoundError:
        return "unknown"


class _Writer:
    """What the writer thread keeps between flushes (it alone touches the database)."""

    def __init__(self) -> None:
        self.cumulative: dict[StatKey, SyscallStats] = {}
        self.processes: dict[int, ProcessInfo] = {}
        self.stack_ids: dict[SampleKey, int] = {}
        self.sample_counts: dict[SampleKey, int] = {}  # cumulative, as written
        # Bytes of individual events it may still write (None: no cap). Once a batch does not
        # fit it is 0 for good: events stop at one point in time, not here and there.
        self.event_budget: int | None = None
        self.events_capped = 0  # individual events not written: the journal's cap
        self.events_bytes = 0  # bytes of individual events the database holds

    def flush(self, db: sqlite3.Connection, snapshots: list[Snapshot],
              meta: Mapping[str, Any]) -> None:
        """Write snapshots in one transaction. The in-memory state changes only after the
        commit, so a failed flush can be retried whole elsewhere."""
        cumulative = dict(self.cumulative)
        stack_ids, sample_counts = dict(self.stack_ids), dict(self.sample_counts)
        budget, capped, written = self.event_budget, 0, 0
        with db:
            for snapshot in snapshots:
                self._timeline(db, snapshot, cumulative)
                budget, n_bytes, n_capped = self._events(db, snapshot, budget)
                written += n_bytes
                capped += n_capped
                self._samples(db, snapshot, stack_ids, sample_counts)
            db.executemany(
                f"INSERT OR REPLACE INTO connections VALUES "
                f"({','.join('?' * len(CONNECTION_COLUMNS))})",
                (dataclasses.astuple(c) for c in {
                    c.conn_id: c for s in snapshots for c in s.connections}.values()))
            changed = [k for s in snapshots for k in s.interval]
            db.executemany(
                "INSERT OR REPLACE INTO aggregates VALUES (?,?,?,?,?,?,?,?,?)",
                ((k.pid, k.tid, k.nr, s.count, s.errors, s.total_ns, s.min_ns, s.max_ns,
                  hist_to_blob(s.hist)) for k in set(changed) for s in (cumulative[k],)))
            processes = self._changed_processes(snapshots[-1])
            db.executemany("INSERT OR REPLACE INTO processes VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                           (_process_row(p) for p in processes))
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                           ((k, json.dumps(v)) for k, v in meta.items()))
        self.cumulative = cumulative
        self.event_budget = budget
        self.events_capped += capped
        self.events_bytes += written
        self.stack_ids, self.sample_counts = stack_ids, sample_counts
        self.processes.update((p.pid, p) for p in processes)

    @staticmethod
    def _timeline(db: sqlite3.Connection, snapshot: Snapshot,
                  cumulative: dict[StatKey, SyscallStats]) -> None:
        rows = []
        for key, delta in snapshot.interval.items():
            before = cumulative.get(key)
            cumulative[key] = delta if before is None else merge_stats((before, delta))
            if delta.count:
                rows.append((snapshot.ts_ns, key.pid, key.tid, key.nr, delta.count,
                             delta.errors, delta.total_ns, interval_max(delta),
                             hist_to_blob(delta.hist)))
        db.executemany("INSERT INTO timeline VALUES (?,?,?,?,?,?,?,?,?)", rows)
        db.executemany("INSERT INTO proc_events VALUES (?,?,?,?,?,?,?,?)",
                       ((e.ts_ns, e.kind, e.pid, e.tid, e.ppid, e.status, e.comm, e.filename)
                        for e in snapshot.proc_events))

    @staticmethod
    def _events(db: sqlite3.Connection, snapshot: Snapshot,
                budget: int | None) -> tuple[int | None, int, int]:
        """The snapshot's individual events, when they fit the budget: (the budget left,
        bytes written, events not written)."""
        batch = snapshot.events
        if not len(batch):
            return budget, 0, 0
        if budget is not None and batch.nbytes > budget:
            return 0, 0, len(batch)
        db.execute("INSERT INTO event_batches (first_ts_ns, last_ts_ns, n, data) "
                   "VALUES (?,?,?,?)", (int(batch["ts"].min()), int(batch["ts"].max()),
                                        len(batch), batch.tobytes()))
        return (None if budget is None else budget - batch.nbytes), batch.nbytes, 0

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

    def _changed_processes(self, snapshot: Snapshot) -> list[ProcessInfo]:
        known = self.processes
        return [p for pid, p in snapshot.processes.items() if known.get(pid) != p]


def _process_row(p: ProcessInfo) -> tuple[Any, ...]:
    code = p.exit.code if p.exit else None
    sig = p.exit.signal if p.exit else None
    return (p.pid, p.ppid, p.comm, p.exe, json.dumps(list(p.cmdline)), p.abi,
            p.start_ts_ns or None, p.exit_ts_ns or None, code, sig, p.container)


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
        "probes": {str(nr): name for nr, name in snapshot.probes.items()},
        "exit_code": exit_status.code if exit_status else None,
        "exit_signal": exit_status.signal if exit_status else None,
    }


@dataclass(frozen=True)
class Limits:
    """What a journal may take. journal_cap: bytes of the file past which individual events
    are no longer kept (0: none). memory_events_cap: bytes of individual events kept in
    memory (after a disk failure, or --no-journal), the oldest dropped past it. sessions_cap:
    the folder cap this journal keeps by pruning the other sessions of its directory (0: it
    prunes nothing; only a journal in the sessions folder does)."""

    journal_cap: int = journal_cap_for(DEFAULT_SESSIONS_CAP)
    memory_events_cap: int = MEMORY_EVENTS_CAP
    sessions_cap: int = 0


class Journal:
    """Writes one trace to a SQLite file from its own thread.

    `put(snapshot)` may be called from any thread and never blocks. `close()` writes what is
    queued and the final metadata. `status` is None while everything is written to the file,
    else what is not: the journal at its cap, the disk failed (the session then continues in
    memory), the oldest events dropped from memory. `failed` is the disk failure alone."""

    def __init__(self, path: Path | None, meta: Mapping[str, Any],
                 owner: Owner | None = None, limits: Limits | None = None) -> None:
        """path None keeps the journal in memory only (--no-journal)."""
        self.path = path
        self.owner = owner or invoking_user()
        self.limits = limits or Limits()
        self._dir: Dir | None = None  # the journal's directory, held open (see _create)
        self._disk_error: str | None = None  # why the file stopped being written
        self.dropped_events = 0  # individual events let go from memory (the oldest)
        self.pruned: list[str] = []  # other sessions this one deleted to keep the folder cap
        self._meta: dict[str, Any] = {"format": FORMAT, "schema_version": SCHEMA_VERSION,
                                      **host_metadata(), "created_wall_time": time.time(),
                                      **meta}
        # Snapshots; None to close; an Event to be set once everything before it is written.
        self._queue: queue.SimpleQueue[Snapshot | threading.Event | None] = queue.SimpleQueue()
        self._lock = threading.Lock()  # the database connection, while the writer uses it
        self._writer = _Writer()
        self._db = self._create(path) if path else self._create_in_memory()
        self._closed = False
        self._next_prune = 0.0  # monotonic time of the next folder check (0: at once)
        self._thread = threading.Thread(target=self._run, name="sikte-journal", daemon=True)
        self._thread.start()

    def _create_in_memory(self) -> sqlite3.Connection:
        db = sqlite3.connect(":memory:", check_same_thread=False)
        with db:
            apply_migrations(db, 0)
            self._write_meta(db, self._meta)
        return db

    @staticmethod
    def _write_meta(db: sqlite3.Connection, meta: Mapping[str, Any]) -> None:
        db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                       ((k, json.dumps(v)) for k, v in meta.items()))

    def _create(self, path: Path) -> sqlite3.Connection:
        try:
            with acting_as(self.owner):
                self._dir = self._precreate(path)
                db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
                db.execute("PRAGMA journal_mode = WAL")
                db.execute("PRAGMA synchronous = NORMAL")  # WAL: safe against a killed process
                db.isolation_level = ""  # transactions around each flush
                with db:
                    apply_migrations(db, 0)
                    self._write_meta(db, self._meta)
        except sqlite3.Error as err:
            self._remove_files()
            raise UserError(f"cannot write the journal {path} ({err}); choose another "
                            "--db-path or use --no-journal", exit_code=1) from None
        except OSError as err:
            self._remove_files()
            raise UserError(f"cannot write the journal {path} ({err.strerror}); choose "
                            "another --db-path or use --no-journal", exit_code=1) from None
        return db

    def _remove_files(self) -> None:
        """Delete the journal's files (from the directory handle) and let the handle go."""
        if self.path is not None and self._dir is not None:
            for suffix in JOURNAL_SUFFIXES:
                self._dir.unlink(f"{self.path.name}{suffix}")
        self._release_dir()

    def _release_dir(self) -> None:
        if self._dir is not None:
            self._dir.close()
            self._dir = None

    def _precreate(self, path: Path) -> Dir:
        """SQLite opens the journal and its side files by name, some of them later: all are
        made here first, new (O_EXCL, no link followed), 0600 and the user's, in a directory
        no other user can change, so SQLite only ever opens files we made."""
        directory = open_dir(path.parent, self.owner, create=True, trusted=True)
        made: list[str] = []
        try:
            for suffix in JOURNAL_SUFFIXES:
                name = f"{path.name}{suffix}"
                try:
                    directory.create(name).close()
                except FileExistsError:
                    raise UserError(f"{path.parent / name} already exists; choose another "
                                    "--db-path or remove it") from None
                made.append(name)
        except BaseException:
            for name in made:
                directory.unlink(name)
            directory.close()
            raise
        return directory

    # -- the producer's side ---------------------------------------------------------------

    def put(self, snapshot: Snapshot) -> None:
        self._queue.put(snapshot)

    def set_meta(self, **values: Any) -> None:
        """Session metadata known later (exit code, filters...); written at the next flush."""
        with self._lock:
            self._meta.update(values)

    def sync(self, timeout: float = 30.0) -> bool:
        """Wait until everything put so far is written; False on timeout."""
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued and the final metadata, then close the file. What is kept
        in memory (after a disk failure, or --no-journal) stays readable by `stored()`."""
        self._close(timeout)
        self._release_dir()

    def _close(self, timeout: float = 30.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)
        with self._lock, acting_as(self.owner):  # SQLite removes its side files by name
            if not self.on_disk or self._closed:
                return
            # On failure the WAL stays beside the file, and SQLite replays it on open.
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()
            self._closed = True

    def discard(self) -> None:
        """Close and delete a journal of a trace that never started."""
        self._close()
        self._remove_files()

    # -- what the UI and record show ---------------------------------------------------------

    @property
    def failed(self) -> bool:
        """The file stopped being written (the session goes on in memory)."""
        return self.path is not None and self._disk_error is not None

    @property
    def on_disk(self) -> bool:
        return self.path is not None and self._disk_error is None

    @property
    def capped(self) -> bool:
        """The file reached its cap: individual events are no longer kept (the rest is)."""
        return self.on_disk and self._writer.event_budget == 0 and bool(self.limits.journal_cap)

    @property
    def events_not_kept(self) -> int:
        """Individual events the tracer delivered that the session does not hold: not
        written at the journal's cap, or dropped from memory (the oldest)."""
        return self._writer.events_capped + self.dropped_events

    @property
    def memory_bounded(self) -> bool:
        """Held in memory and past its bound: the oldest individual events are being let go."""
        return self.dropped_events > 0

    @property
    def status(self) -> str | None:
        """None while every snapshot is written to the file in full; else one line saying
        what is not (and what was done instead)."""
        parts = []
        if self.path is None:
            parts.append("not kept on disk (--no-journal)")
        elif self._disk_error is not None:
            parts.append(f"the journal could not be written ({self._disk_error}); the "
                         "session is kept in memory")
        elif self.capped:
            parts.append(f"journal at its {format_cap(self.limits.journal_cap)} cap: "
                         "individual events no longer kept")
        if self.memory_bounded:
            parts.append(f"in memory only the newest {format_cap(self.limits.memory_events_cap)}"
                         f" of individual events are kept ({self.dropped_events:,} older ones "
                         "dropped; every count is kept)")
        return "; ".join(parts) or None

    def describe(self) -> str:
        """One line for the UI: where the session is kept, and what it does not keep."""
        status = self.status
        if self.on_disk:
            return f"journal {self.path}" + (f" ({status})" if status else "")
        return status or ""

    def stored(self) -> StoredSession:
        """Everything recorded so far, read back (for export)."""
        from tracing.session.stored import open_session, read_journal

        if self._thread.is_alive():
            self.sync()
        if self.on_disk and self._closed:
            return open_session(self.path)  # type: ignore[arg-type]
        copy = self.copy()
        try:
            return read_journal(copy, self.path or Path("memory"))
        finally:
            copy.close()

    def copy(self) -> sqlite3.Connection:
        """A private copy of everything written so far (for an export while tracing, or
        after the disk failed): a consistent in-memory database."""
        copy = sqlite3.connect(":memory:", check_same_thread=False)
        with self._lock:
            self._db.backup(copy)
        return copy

    # -- the writer thread -----------------------------------------------------------------

    def _run(self) -> None:
        """The writer thread acts as the user its whole life: SQLite may open the WAL and its
        index by name at any write."""
        with acting_as(self.owner):
            self._keep_folder_cap()  # the new session may push the folder past its cap
            self._drain()
            self._finish()

    def _drain(self) -> None:
        pending: list[Snapshot] = []
        waiting: list[threading.Event] = []
        next_flush = time.monotonic() + FLUSH_INTERVAL_S
        closing = False
        while not closing:
            try:
                item = self._queue.get(timeout=max(0.0, next_flush - time.monotonic()))
            except queue.Empty:
                item = ...
            if item is None:
                closing = True
            elif isinstance(item, threading.Event):
                waiting.append(item)
            elif item is not ...:
                pending.append(item)  # type: ignore[arg-type]
                if time.monotonic() < next_flush:
                    continue
            if pending:
                self._flush(pending)
                pending = []
                self._keep_folder_cap()
            for done in waiting:
                done.set()
            waiting = []
            next_flush = time.monotonic() + FLUSH_INTERVAL_S

    def _finish(self) -> None:
        """Mark the journal closed: a journal without this mark was cut short (the trace was
        killed), which the sessions list shows as aborted."""
        with self._lock, contextlib.suppress(sqlite3.Error):  # what is written stays
            final = self._with_losses({"closed_wall_time": time.time()})
            self._meta.update(final)
            with self._db:  # all of it: set_meta after the last snapshot (a failure) too
                self._write_meta(self._db, self._meta)

    def _flush(self, snapshots: list[Snapshot]) -> None:
        with self._lock:
            self._meta.update(snapshot_meta(snapshots[-1]))
            meta = dict(self._meta)
            try:
                self._set_event_budget()
                self._writer.flush(self._db, snapshots, self._with_losses(meta))
            except sqlite3.Error as err:
                self._to_memory(one_error(err))
                self._writer.flush(self._db, snapshots, self._with_losses(meta))
            self._trim_memory()

    def _with_losses(self, meta: dict[str, Any]) -> dict[str, Any]:
        """The metadata with the individual events the session does not hold, as far as
        known before this flush (the next flush writes this one's)."""
        return {**meta, "events_not_kept": {"journal_cap": self._writer.events_capped,
                                            "memory_cap": self.dropped_events}}

    def _set_event_budget(self) -> None:
        """On disk with a cap: the bytes left for individual events before this flush."""
        cap = self.limits.journal_cap
        if not self.on_disk or not cap or self._writer.event_budget == 0:
            return
        self._writer.event_budget = max(0, cap - database_size(self._db))

    def _trim_memory(self) -> None:
        """In memory: let the oldest individual events go past the bound (never the counts,
        the timeline, processes, samples or connections)."""
        if self.on_disk or self._writer.events_bytes <= self.limits.memory_events_cap:
            return
        # Down to 3/4 of the bound, so that trimming happens once in a while, not per flush.
        excess = self._writer.events_bytes - self.limits.memory_events_cap * 3 // 4
        freed, dropped, last_id = 0, 0, None
        for batch_id, n, size in self._db.execute(
                "SELECT id, n, length(data) FROM event_batches ORDER BY id"):
            if freed >= excess:
                break
            freed, dropped, last_id = freed + size, dropped + n, batch_id
        if last_id is None:
            return
        with self._db:
            self._db.execute("DELETE FROM event_batches WHERE id <= ?", (last_id,))
        self._writer.events_bytes -= freed
        self.dropped_events += dropped

    def _to_memory(self, reason: str) -> None:
        """The file cannot be written: keep going in memory with what it holds (the newest
        individual events within the memory bound)."""
        memory = sqlite3.connect(":memory:", check_same_thread=False)
        with memory:
            apply_migrations(memory, 0)
        try:
            self._db.rollback()
            kept = copy_bounded(self._db, memory, self.limits.memory_events_cap)
        except sqlite3.Error:  # unreadable too: start over in memory with the metadata
            memory.close()
            memory = sqlite3.connect(":memory:", check_same_thread=False)
            with memory:
                apply_migrations(memory, 0)
            self._writer = _Writer()  # what it wrote is gone: nothing to build on
            kept = (0, 0)
        # The writer's memory advances only after a commit, so it matches the copy.
        with contextlib.suppress(sqlite3.Error):  # the file is lost to us already
            self._db.close()
        self._db = memory
        self._disk_error = reason
        self._writer.events_bytes, self.dropped_events = kept[0], self.dropped_events + kept[1]
        self._writer.event_budget = None  # the journal's cap was the file's

    # -- the sessions folder -------------------------------------------------------------------

    def _keep_folder_cap(self) -> None:
        """Past the folder's cap, delete the oldest other sessions (never this one). On the
        writer thread, at its start and then at most every PRUNE_INTERVAL_S."""
        cap = self.limits.sessions_cap
        if not cap or self._dir is None or self.path is None or not self.on_disk:
            return
        now = time.monotonic()
        if now < self._next_prune:
            return
        self._next_prune = now + PRUNE_INTERVAL_S
        try:
            pruned = prune(self._dir, cap, keep={self.path.name})
        except OSError:  # the folder is unreadable now: the journal itself goes on
            return
        self.pruned.extend(pruned.removed)


def one_error(err: sqlite3.Error) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def database_size(db: sqlite3.Connection) -> int:
    """Bytes the database takes (the file and what its write-ahead log adds to it)."""
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    size = db.execute("PRAGMA page_size").fetchone()[0]
    return int(pages) * int(size)


COPIED_TABLES = ("meta", "processes", "proc_events", "timeline", "aggregates", "stacks",
                 "sample_timeline", "connections")


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
                                  "FROM event_batches ORDER BY id DESC"):
            if row[4] > budget:
                left_out += row[3]
                budget = 0
                continue
            budget -= row[4]
            kept.append(row[0])
        copied = 0
        for batch_id in reversed(kept):
            row = source.execute("SELECT * FROM event_batches WHERE id = ?",
                                 (batch_id,)).fetchone()
            target.execute("INSERT INTO event_batches VALUES (?,?,?,?,?)", row)
            copied += len(row[4])
    return copied, left_out


def default_journal_name(targets: Iterable[str], wall_time: float) -> str:
    """A file name that sorts by time and says what was traced: 20261123-101500-ls.sikte.db"""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(wall_time))
    first = next(iter(targets), "trace")
    word = os.path.basename(first.split()[0]) if first.split() else "trace"
    slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in word)[:32] or "trace"
    return f"{stamp}-{slug}.sikte.db"


@dataclass(frozen=True)
class JournalOptions:
    db_path: Path | None = None  # None: a new file in the user's sessions directory
    enabled: bool = True  # False (--no-journal): kept in memory only; x still exports
    # --sessions-cap in bytes (0: none); None: $SIKTE_SESSIONS_CAP, else the default
    sessions_cap: int | None = None


def start_journal(options: JournalOptions, targets: Iterable[str],
                  meta: Mapping[str, Any]) -> Journal:
    """A journal for a new trace, where the options say (UserError when it cannot be).
    A journal in the sessions folder keeps that folder within its cap."""
    owner = invoking_user()
    folder_cap = sessions_cap(None) if options.sessions_cap is None else options.sessions_cap
    limits = Limits(journal_cap=journal_cap_for(folder_cap),
                    memory_events_cap=MEMORY_EVENTS_CAP)
    if not options.enabled:
        return Journal(None, meta, owner, limits)
    path = options.db_path
    if path is None:
        with ensure_sessions_dir(owner) as directory:
            name = base = default_journal_name(tuple(targets), time.time())
            n = 2
            while any(directory.lstat(f"{name}{s}") for s in JOURNAL_SUFFIXES):
                name = base.replace(".sikte.db", f"-{n}.sikte.db")
                n += 1
            path = directory.path / name
    if _in_sessions_folder(path, owner):
        limits = dataclasses.replace(limits, sessions_cap=folder_cap)
    return Journal(path, meta, owner, limits)


def _in_sessions_folder(path: Path, owner: Owner) -> bool:
    """The journal goes into the user's sessions folder (by identity, not by spelling)."""
    try:
        here = os.stat(path.parent)
        there = os.stat(sessions_dir(owner))
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)
