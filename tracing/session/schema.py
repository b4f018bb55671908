"""The journal's format on disk: what a sikte-tui journal is (FORMAT, SCHEMA_VERSION), the
SQL that makes each version of its tables, the encoding of its histogram blobs and the files
SQLite keeps beside it. The writer (journal_writer.py) and the readers (journal_reader.py,
catalogue.py) both take it from here; it imports neither.

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
  paths          (schema 3) the session's path names (bytes), by the id records carry
  files          (schema 3) per (pid, path): opens, failed opens by errno, I/O totals (newest)
  threads        (schema 5) per (pid, tid) other than the main thread: name, alive, exit time

Schema 3 also gives each event batch its record layout (`layout`: 1 the 88-byte records of
schema 1 and 2, 2 the 96-byte EVENT_DTYPE) and the fields captured behind its records
(`captures`: each record's `data_len` bytes, back to back, in the records' order).

Schema 4 keys timeline and aggregates rows by the call's ABI too (`abi`: 0 native, 1 compat,
2 x32): the same number is another syscall in each. Readers of older journals take each
row's ABI from its process's (`processes.abi`), the best that was recorded.

Schema 5 keeps each process's threads other than its main one (`threads`: name, running at
the end or not, when it ended) and how many it had (`processes.threads_seen`,
`processes.thread_names_dropped`), as the process tracker bounds them. Older journals open
with the threads their rows name (the aggregates' tids), unnamed.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import struct
from collections.abc import Iterable
from itertools import chain

import numpy as np

from tracing.model.connections import Connection

FORMAT = "sikte-tui-journal"
SCHEMA_VERSION = 5
SQLITE_MAGIC = b"SQLite format 3\x00"  # how every SQLite database file starts
# SQLite's files: the database, the rollback journal of its first transaction, the WAL, its
# index. SQLite deletes the last three itself when done.
JOURNAL_SUFFIXES = ("", "-journal", "-wal", "-shm")

# The ABI code of a row's process, from its recorded ABI (what schema 4 stores per row): the
# compat tables of syscall_tables.ABI_TABLES are 1, x32 is 2, anything else native.
_PROCESS_ABI = ("ifnull((SELECT CASE p.abi WHEN 'i386' THEN 1 WHEN 'arm' THEN 1 "
                "WHEN 'x32' THEN 2 ELSE 0 END FROM processes p WHERE p.pid = {table}.pid), 0)")

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
    3: (
        # Batches written before schema 3 hold 88-byte records and nothing captured.
        "ALTER TABLE event_batches ADD COLUMN layout INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE event_batches ADD COLUMN captures BLOB",
        "CREATE TABLE paths (id INTEGER PRIMARY KEY, name BLOB NOT NULL)",
        """CREATE TABLE files (pid INTEGER, path_id INTEGER, opens INTEGER, open_errors TEXT,
            calls INTEGER, reads INTEGER, bytes_read INTEGER, writes INTEGER,
            bytes_written INTEGER, io_ns INTEGER, PRIMARY KEY (pid, path_id))""",
    ),
    4: (
        # Rows written before schema 4 take their process's ABI (as readers of older
        # journals do); the aggregates' key gains the ABI, so that table is made again.
        "ALTER TABLE timeline ADD COLUMN abi INTEGER",
        f"UPDATE timeline SET abi = {_PROCESS_ABI.format(table='timeline')}",
        """CREATE TABLE aggregates_4 (pid INTEGER, tid INTEGER, nr INTEGER, count INTEGER,
            errors INTEGER, total_ns INTEGER, min_ns INTEGER, max_ns INTEGER, hist BLOB,
            abi INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (pid, tid, nr, abi))""",
        "INSERT INTO aggregates_4 SELECT pid, tid, nr, count, errors, total_ns, min_ns, "
        f"max_ns, hist, {_PROCESS_ABI.format(table='aggregates')} FROM aggregates",
        "DROP TABLE aggregates",
        "ALTER TABLE aggregates_4 RENAME TO aggregates",
    ),
    5: (
        # NULL in both: not known (a process written before schema 5).
        "ALTER TABLE processes ADD COLUMN threads_seen INTEGER",
        "ALTER TABLE processes ADD COLUMN thread_names_dropped INTEGER",
        # name NULL: not kept (the thread shows under its process's name); alive NULL: not
        # known; exit_ts_ns NULL: running, or its exit event was not seen.
        """CREATE TABLE threads (pid INTEGER, tid INTEGER, name TEXT, alive INTEGER,
            exit_ts_ns INTEGER, PRIMARY KEY (pid, tid))""",
    ),
}
# The record layouts of event_batches.layout: EVENT_DTYPE_V1 (88 bytes), EVENT_DTYPE (96).
EVENT_LAYOUT_V1 = 1
EVENT_LAYOUT = 2
CONNECTION_COLUMNS = tuple(f.name for f in dataclasses.fields(Connection))
# The tables every journal has, and those schema 2 added.
JOURNAL_TABLES = ("meta", "processes", "proc_events", "timeline", "aggregates",
                  "event_batches")
JOURNAL_TABLES_2 = ("stacks", "sample_timeline", "connections")
JOURNAL_TABLES_3 = ("paths", "files")
JOURNAL_TABLES_5 = ("threads",)
# The columns of processes rows as the writer inserts them (schema 5 on).
PROCESS_INSERT = ("pid", "ppid", "comm", "exe", "cmdline", "abi", "start_ts_ns", "exit_ts_ns",
                  "exit_code", "exit_signal", "container", "threads_seen",
                  "thread_names_dropped")
# The columns of timeline and aggregates rows as the writer inserts them (schema 4 on).
TIMELINE_INSERT = ("ts_ns", "pid", "tid", "nr", "abi", "count", "errors", "total_ns",
                   "max_ns", "hist")
AGGREGATE_INSERT = ("pid", "tid", "nr", "abi", "count", "errors", "total_ns", "min_ns",
                    "max_ns", "hist")
FILE_COLUMNS = ("pid", "path_id", "opens", "open_errors", "calls", "reads", "bytes_read",
                "writes", "bytes_written", "io_ns")

_HIST_DTYPE = np.dtype("<u8")
# hist_to_blob's packers by the number of u64s: at most two per histogram bucket.
_PAIRS: dict[int, struct.Struct] = {}


def hist_to_blob(hist: Iterable[tuple[int, int]]) -> bytes:
    """A sparse histogram as little-endian u64 (bucket, count) pairs. struct, not numpy: the
    journal packs tens of thousands of these a second with 5,000 busy threads, mostly of one
    or two buckets, and numpy's cost per call was four times the packing."""
    flat = tuple(chain.from_iterable(hist))
    packer = _PAIRS.get(len(flat))
    if packer is None:
        packer = _PAIRS.setdefault(len(flat), struct.Struct(f"<{len(flat)}Q"))
    return packer.pack(*flat)


def hist_from_blob(blob: bytes | None) -> tuple[tuple[int, int], ...]:
    if not blob:
        return ()
    pairs = np.frombuffer(blob, dtype=_HIST_DTYPE).reshape(-1, 2).tolist()
    return tuple((b, c) for b, c in pairs)


def apply_migrations(db: sqlite3.Connection, current: int) -> None:
    """Bring a journal's tables from version `current` (0: none yet) to SCHEMA_VERSION."""
    for version in range(current + 1, SCHEMA_VERSION + 1):
        for statement in MIGRATIONS[version]:
            db.execute(statement)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

