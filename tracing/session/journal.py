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

The journal's tables are in schema.py, the rows it writes in journal_writer.py, the making of
its files in journal_files.py; reading it back is stored.py's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import queue
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import EllipsisType
from typing import Any

from tracing.boundary.userfiles import Dir, Owner, acting_as, invoking_user
from tracing.errors import UserError
from tracing.model.stats import Snapshot
from tracing.session.journal_files import in_sessions_folder, new_journal_path, precreate
from tracing.session.journal_reader import read_journal
from tracing.session.journal_writer import (
    JournalWriter,
    copy_bounded,
    database_size,
    host_metadata,
    snapshot_meta,
)
from tracing.session.retention import (
    DEFAULT_SESSIONS_CAP,
    MEMORY_EVENTS_CAP,
    format_cap,
    prune,
    sessions_cap,
)
from tracing.session.retention import journal_cap as journal_cap_for
from tracing.session.schema import FORMAT, JOURNAL_SUFFIXES, SCHEMA_VERSION, apply_migrations
from tracing.session.stored import open_session
from tracing.session.stored_session import StoredSession

FLUSH_INTERVAL_S = 0.5  # the most a SIGKILL can lose (plus one tick)
PRUNE_INTERVAL_S = 5.0  # how often a growing journal checks its folder's cap

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
        self._writer = JournalWriter()
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
                self._dir = precreate(path, self.owner)
                db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
                db.execute("PRAGMA journal_mode = WAL")
                db.execute("PRAGMA synchronous = NORMAL")  # WAL: safe against a killed process
                db.isolation_level = "DEFERRED"  # transactions around each flush
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
            item: Snapshot | threading.Event | EllipsisType | None  # ...: the flush is due
            try:
                item = self._queue.get(timeout=max(0.0, next_flush - time.monotonic()))
            except queue.Empty:
                item = ...
            if item is None:
                closing = True
            elif isinstance(item, threading.Event):
                waiting.append(item)
            elif item is not ...:
                pending.append(item)
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
                "SELECT id, n, length(data) + ifnull(length(captures), 0) FROM event_batches "
                "ORDER BY id"):
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
            self._writer = JournalWriter()  # what it wrote is gone: nothing to build on
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
    """SQLite's message in one line, for `status`."""
    return str(err).splitlines()[0] if str(err) else type(err).__name__


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
        path = new_journal_path(owner, tuple(targets))
    if in_sessions_folder(path, owner):
        limits = dataclasses.replace(limits, sessions_cap=folder_cap)
    return Journal(path, meta, owner, limits)
