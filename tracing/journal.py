"""The session journal: one SQLite file (WAL) per trace, written while it runs.

A writer thread takes the snapshots the tracer produces and commits them in batches at least
twice a second, so a trace killed at any moment leaves a journal that holds everything up to
half a second before. Nothing on the tracer's or the UI's side ever waits for the disk: `put`
only queues. When the disk fails (full, read-only, gone), the writer copies what it has into
memory and goes on there; `status` says so and an export from memory still works.

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

from tracing.connections import Connection
from tracing.errors import UserError
from tracing.model import (
    ProcessInfo,
    Snapshot,
    StatKey,
    SyscallStats,
    bucket_bounds,
    merge_stats,
)
from tracing.samples import SampleKey, StackSample
from tracing.userfiles import Dir, Owner, acting_as, ensure_sessions_dir, invoking_user, open_dir

if TYPE_CHECKING:
    from tracing.stored import StoredSession

FORMAT = "sikte-tui-journal"
SCHEMA_VERSION = 2
FLUSH_INTERVAL_S = 0.5  # the most a SIGKILL can lose (plus one tick)
# SQLite's files: the database, the rollback journal of its first transaction, the WAL, its
# index. SQLite deletes the last three itself when done.
JOURNAL_SUFFIXES = ("", "-journal", "-wal", "-shm")

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

    def flush(self, db: sqlite3.Connection, snapshots: list[Snapshot],
              meta: Mapping[str, Any]) -> None:
        """Write snapshots in one transaction. The in-memory state changes only after the
        commit, so a failed flush can be retried whole elsewhere."""
        cumulative = dict(self.cumulative)
        stack_ids, sample_counts = dict(self.stack_ids), dict(self.sample_counts)
        with db:
            for snapshot in snapshots:
                self._timeline(db, snapshot, cumulative)
                self._events(db, snapshot)
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
    def _events(db: sqlite3.Connection, snapshot: Snapshot) -> None:
        batch = snapshot.events
        if len(batch):
            db.execute("INSERT INTO event_batches (first_ts_ns, last_ts_ns, n, data) "
                       "VALUES (?,?,?,?)", (int(batch["ts"].min()), int(batch["ts"].max()),
                                            len(batch), batch.tobytes()))

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


class Journal:
    """Writes one trace to a SQLite file from its own thread.

    `put(snapshot)` may be called from any thread and never blocks. `close()` writes what is
    queued and the final metadata. `status` is None while the file is written, else the
    reason it stopped (the session then continues in memory)."""

    def __init__(self, path: Path | None, meta: Mapping[str, Any],
                 owner: Owner | None = None) -> None:
        """path None keeps the journal in memory only (--no-journal)."""
        self.path = path
        self.owner = owner or invoking_user()
        self._dir: Dir | None = None  # the journal's directory, held open (see _create)
        self.status: str | None = None if path else "not kept on disk (--no-journal)"
        self._meta: dict[str, Any] = {"format": FORMAT, "schema_version": SCHEMA_VERSION,
                                      **host_metadata(), **meta}
        # Snapshots; None to close; an Event to be set once everything before it is written.
        self._queue: queue.SimpleQueue[Snapshot | threading.Event | None] = queue.SimpleQueue()
        self._lock = threading.Lock()  # the database connection, while the writer uses it
        self._writer = _Writer()
        self._db = self._create(path) if path else self._create_in_memory()
        self._closed = False
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
            if self.path is None or self.status is not None:
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

    @property
    def failed(self) -> bool:
        """The file stopped being written (the session goes on in memory)."""
        return self.path is not None and self.status is not None

    @property
    def on_disk(self) -> bool:
        return self.path is not None and self.status is None

    def describe(self) -> str:
        """One line for the UI: where the session is kept."""
        if self.on_disk:
            return f"journal {self.path}"
        return self.status or ""

    def stored(self) -> StoredSession:
        """Everything recorded so far, read back (for export)."""
        from tracing.stored import open_session, read_journal

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
            self._drain()

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
            for done in waiting:
                done.set()
            waiting = []
            next_flush = time.monotonic() + FLUSH_INTERVAL_S

    def _flush(self, snapshots: list[Snapshot]) -> None:
        with self._lock:
            self._meta.update(snapshot_meta(snapshots[-1]))
            meta = dict(self._meta)
            try:
                self._writer.flush(self._db, snapshots, meta)
            except sqlite3.Error as err:
                self._to_memory(str(err))
                self._writer.flush(self._db, snapshots, meta)

    def _to_memory(self, reason: str) -> None:
        """The file cannot be written: keep going in memory with what it holds."""
        memory = sqlite3.connect(":memory:", check_same_thread=False)
        try:
            self._db.rollback()
            self._db.backup(memory)
        except sqlite3.Error:  # unreadable too: start over in memory with the metadata
            memory.close()
            memory = sqlite3.connect(":memory:", check_same_thread=False)
            with memory:
                apply_migrations(memory, 0)
            self._writer = _Writer()  # what it wrote is gone: nothing to build on
        # The writer's memory advances only after a commit, so it matches the copy.
        with contextlib.suppress(sqlite3.Error):  # the file is lost to us already
            self._db.close()
        self._db = memory
        self.status = f"journal stopped ({reason}); kept in memory, x exports it"


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


def start_journal(options: JournalOptions, targets: Iterable[str],
                  meta: Mapping[str, Any]) -> Journal:
    """A journal for a new trace, where the options say (UserError when it cannot be)."""
    owner = invoking_user()
    if not options.enabled:
        return Journal(None, meta, owner)
    path = options.db_path
    if path is None:
        with ensure_sessions_dir(owner) as directory:
            name = base = default_journal_name(tuple(targets), time.time())
            n = 2
            while any(directory.lstat(f"{name}{s}") for s in JOURNAL_SUFFIXES):
                name = base.replace(".sikte.db", f"-{n}.sikte.db")
                n += 1
            path = directory.path / name
    return Journal(path, meta, owner)
