"""Reading a journal (SQLite) back, as untrusted input: the file checked before SQLite opens
it, opened so that reading someone else's journal changes nothing of theirs, its metadata
and every table checked into a StoredSession.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import tempfile
import urllib.parse
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tracing.boundary.untrusted_files import Refused, check_regular, open_untrusted
from tracing.errors import UserError
from tracing.model.files import FileKey, FileStats
from tracing.model.paths import PathTable
from tracing.model.stats import EVENT_DTYPE, EVENT_DTYPE_V1, events_from_v1
from tracing.session.checks import (
    ID32,
    NATURAL,
    Bad,
    bad,
    check_meta,
    check_stacks,
    hist_blob,
    one_line,
    refused,
    text_list,
    texts,
    typed,
)
from tracing.session.schema import (
    EVENT_LAYOUT,
    EVENT_LAYOUT_V1,
    FILE_COLUMNS,
    FORMAT,
    JOURNAL_TABLES,
    JOURNAL_TABLES_2,
    JOURNAL_TABLES_3,
    JOURNAL_TABLES_5,
    SCHEMA_VERSION,
    SQLITE_MAGIC,
)
from tracing.session.stored_session import (
    AGGREGATE_COLUMNS,
    CONNECTION_KINDS,
    NR32,
    PROC_EVENT_COLUMNS,
    PROCESS_COLUMNS,
    SAMPLE_KINDS,
    TIMELINE_COLUMNS,
    StoredSession,
    open_errors,
    path_table,
    process_abis,
    with_abi,
)
from tracing.session.stored_threads import checked_threads, count_column


@contextlib.contextmanager
def journal_connection(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection to a journal, after checking it is a regular file (a FIFO or a device
    is refused without being opened) that starts like an SQLite database and holds a
    journal this sikte-tui reads. Only the journal's owner opens it for writing (so SQLite
    can tidy its -wal file); anyone else reads it read-only, even root."""
    try:
        fd = open_untrusted(path)
        try:
            magic = os.read(fd, len(SQLITE_MAGIC))
            st = os.fstat(fd)
        finally:
            os.close(fd)
    except Refused as why:
        raise refused(path, why) from None
    except OSError as err:
        raise UserError(f"{path}: cannot read it ({err.strerror})") from None
    if magic != SQLITE_MAGIC:
        raise UserError(f"{path} is not a sikte-tui session (neither a journal nor a "
                        "Parquet directory)")
    with contextlib.ExitStack() as stack:
        try:
            db = _connect(path, st, stack)
            stack.callback(db.close)
            db.text_factory = _text
            check_journal(db, path)
        # SQLite's own message may quote the damaged schema's bytes, which are not UTF-8.
        except (sqlite3.DatabaseError, UnicodeDecodeError) as err:
            raise UserError(f"{path} is corrupt or unreadable ({one_line(err)})") from None
        yield db


def _text(value: bytes) -> str:
    """Text as stored, with bytes that are not UTF-8 shown as U+FFFD instead of failing."""
    return value.decode(errors="replace")


def _uri(path: Path, query: str) -> str:
    return f"file:{urllib.parse.quote(os.path.abspath(path))}?{query}"


def _connect(path: Path, st: os.stat_result, stack: contextlib.ExitStack) -> sqlite3.Connection:
    mine = st.st_uid == os.geteuid() and os.access(path, os.W_OK) \
        and os.access(path.parent, os.W_OK)
    if mine:
        return sqlite3.connect(_uri(path, "mode=rw"), uri=True, check_same_thread=False)
    wal = Path(f"{path}-wal")
    try:
        # Not followed: a -wal that is a link or a FIFO is refused before SQLite opens it.
        wal_st: os.stat_result | None = os.lstat(wal)
    except FileNotFoundError:
        wal_st = None
    if wal_st is not None:
        try:
            check_regular(wal_st)
        except Refused as why:
            raise refused(wal, why) from None
    if wal_st is None or wal_st.st_size == 0:
        # Complete in the main file (no write-ahead log): immutable creates no -shm file and
        # takes no lock, so reading leaves nothing behind in someone else's directory.
        return sqlite3.connect(_uri(path, "mode=ro&immutable=1"), uri=True,
                               check_same_thread=False)
    db = sqlite3.connect(_uri(path, "mode=ro"), uri=True, check_same_thread=False)
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.OperationalError:  # the -shm file cannot be made (a read-only directory)
        db.close()
    # immutable would ignore the write-ahead log (the newest data of a killed trace): read a
    # private copy of both files instead.
    copy = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sikte-read-")))
    room = shutil.disk_usage(copy).free
    for suffix in ("", "-wal"):
        room -= _copy_untrusted(Path(f"{path}{suffix}"), copy / f"journal{suffix}", room)
    return sqlite3.connect(_uri(copy / "journal", "mode=rw"), uri=True, check_same_thread=False)


def _copy_untrusted(source: Path, target: Path, room: int) -> int:
    """Copies at most the size the file had when opened (its writer may keep appending),
    and nothing of one larger than the `room` left in the temporary directory (a sparse
    file can claim any size); the bytes copied."""
    try:
        fd = open_untrusted(source)
    except Refused as why:  # swapped since it was checked
        raise refused(source, why) from None
    try:
        size = os.fstat(fd).st_size
        if size > room:
            raise refused(source, Refused(
                f"is {size:,} bytes, more than the {max(room, 0):,} free to copy it to read"))
        with os.fdopen(os.dup(fd), "rb") as src, open(target, "xb") as dst:
            left = size
            while left > 0:
                chunk = src.read(min(left, 1 << 20))
                if not chunk:
                    break
                dst.write(chunk)
                left -= len(chunk)
        return size - left
    finally:
        os.close(fd)


def check_journal(db: sqlite3.Connection, path: Path | str) -> None:
    tables = _tables(db)
    if "meta" not in tables:
        raise UserError(f"{path} is an SQLite file of another program, not a sikte-tui "
                        "journal")
    try:
        meta = read_meta(db)
    except Bad as why:
        raise bad(path, why) from None
    if meta.get("format") != FORMAT:
        raise UserError(f"{path} is an SQLite file of another program, not a sikte-tui "
                        "journal")
    try:
        check_meta(meta, SCHEMA_VERSION)
    except Bad as why:
        raise bad(path, why) from None


def _tables(db: sqlite3.Connection) -> set[str]:
    return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def read_meta(db: sqlite3.Connection) -> dict[str, Any]:
    """The meta table's values (JSON each); Bad when one is not JSON."""
    meta = {}
    for key, value in db.execute("SELECT key, value FROM meta"):
        if not isinstance(key, str) or not isinstance(value, (str, bytes)):
            raise Bad("it has a metadata entry that is not text")
        try:
            meta[key] = json.loads(value)
        except (ValueError, RecursionError):
            raise Bad(f"it has metadata {key!r} that is not valid JSON") from None
    return meta


def from_journal(path: Path) -> StoredSession:
    with journal_connection(path) as db:
        try:
            return read_journal(db, path)
        except (sqlite3.DatabaseError, pd.errors.DatabaseError, UnicodeDecodeError) as err:
            raise UserError(f"{path} is corrupt or unreadable ({one_line(err)})") from None
        except Bad as why:
            raise bad(path, why) from None


def read_journal(db: sqlite3.Connection, path: Path) -> StoredSession:
    """Every table of an open journal connection (a file, or a copy in memory); Bad when
    a table or value is not what a journal holds."""
    meta = check_meta(read_meta(db), SCHEMA_VERSION)
    tables = _tables(db)
    version = int(meta.get("schema_version", 1))
    newer = version >= 2
    needed = JOURNAL_TABLES + (JOURNAL_TABLES_2 if newer else ()) \
        + (JOURNAL_TABLES_3 if version >= 3 else ()) \
        + (JOURNAL_TABLES_5 if version >= 5 else ())
    missing = [t for t in needed if t not in tables]
    if missing:
        raise Bad(f"it has no {missing[0]} table")
    processes = typed(pd.read_sql_query("SELECT * FROM processes ORDER BY pid", db),
                      "processes", PROCESS_COLUMNS)
    processes["cmdline"] = [text_list(c, "its processes table's cmdline column")
                            for c in processes["cmdline"]]
    processes["cmdline"] = processes["cmdline"].map(list)
    processes["container"] = texts(processes, "container")  # schema 2 on
    for column in ("threads_seen", "thread_names_dropped"):  # schema 5 on
        processes[column] = count_column(processes, column, "processes")
    proc_events = typed(pd.read_sql_query("SELECT * FROM proc_events ORDER BY ts_ns", db),
                        "proc_events", PROC_EVENT_COLUMNS)
    # Before schema 4 the rows did not keep their call's ABI: their process's stands in.
    abis = process_abis(processes, str(meta.get("arch", "x86_64")))
    timeline = _journal_stats(db, "timeline", "SELECT * FROM timeline ORDER BY ts_ns", abis)
    aggregates = _journal_stats(db, "aggregates",
                                "SELECT * FROM aggregates ORDER BY pid, tid, nr", abis)
    events, event_data = _journal_events(db, version, abis)
    session = StoredSession(path, meta, processes, proc_events, timeline, aggregates,
                            events, event_data=event_data)
    if version >= 5:
        session.threads = checked_threads(pd.read_sql_query(
            "SELECT * FROM threads ORDER BY pid, tid", db))
    if version >= 3:
        session.paths = _journal_paths(db)
        session.files = _journal_files(db)
    if newer:
        session.samples = _journal_samples(db)
        session.connections = typed(pd.read_sql_query(
            "SELECT * FROM connections ORDER BY ts_ns, conn_id", db), "connections",
            CONNECTION_KINDS)
    return session


def _journal_stats(db: sqlite3.Connection, table: str, query: str,
                   abis: Mapping[int, int]) -> pd.DataFrame:
    frame = typed(with_abi(pd.read_sql_query(query, db), abis), table,
                  TIMELINE_COLUMNS if table == "timeline" else AGGREGATE_COLUMNS)
    if "hist" not in frame.columns:
        raise Bad(f"its {table} table has no hist column")
    frame["hist"] = [hist_blob(b, table) for b in frame["hist"]]
    return frame


def _journal_events(db: sqlite3.Connection, version: int,
                    abis: Mapping[int, int]) -> tuple[np.ndarray, tuple[bytes, ...]]:
    """Every event batch's records in the current layout, oldest first, with what was
    captured behind each (b"" for records of the old layout, whose ABI is their process's)."""
    query = ("SELECT data, layout, captures FROM event_batches ORDER BY id" if version >= 3
             else "SELECT data, 1, NULL FROM event_batches ORDER BY id")
    batches: list[np.ndarray] = []
    data: list[bytes] = []
    for blob, layout, captures in db.execute(query):
        records, fields = _batch(blob, layout, captures)
        if layout == EVENT_LAYOUT_V1 and abis and len(records):
            records["abi"] = [abis.get(p, 0) for p in records["pid"].tolist()]
        batches.append(records)
        data.extend(fields)
    events = np.concatenate(batches) if batches else np.empty(0, dtype=EVENT_DTYPE)
    if len(events) and (events["pid"].max() > ID32[1] or events["tid"].max() > ID32[1]
                        or events["nr"].max() > NR32[1] or events["ts"].max() > NATURAL[1]):
        raise Bad("it has an event with a process, thread or syscall number out of range")
    if len(events) and (np.diff(events["ts"].astype(np.int64)) < 0).any():
        order = np.argsort(events["ts"], kind="stable")  # per-CPU buffers interleave
        events, data = events[order], [data[i] for i in order.tolist()]
    return events, tuple(data)


def _batch(blob: object, layout: object, captures: object) -> tuple[np.ndarray, list[bytes]]:
    """One batch's records (in EVENT_DTYPE) and each record's captured fields."""
    if layout == EVENT_LAYOUT_V1:
        dtype = EVENT_DTYPE_V1
    elif layout == EVENT_LAYOUT:
        dtype = EVENT_DTYPE
    else:
        raise Bad("it has a batch of events of a record layout this sikte-tui does not know")
    if not isinstance(blob, bytes) or len(blob) % dtype.itemsize:
        raise Bad("it has a batch of events that is not whole events")
    raw = np.frombuffer(blob, dtype=dtype)
    if layout == EVENT_LAYOUT_V1:
        return events_from_v1(raw), [b""] * len(raw)
    captures = captures or b""
    if not isinstance(captures, bytes):
        raise Bad("it has a batch of events whose captured fields are not bytes")
    ends_array = np.cumsum(raw["data_len"], dtype=np.int64)
    if (int(ends_array[-1]) if len(ends_array) else 0) != len(captures):
        raise Bad("it has a batch of events whose captured fields do not match its records")
    if not captures:  # nothing captured (the common case): no slicing per event
        return raw, [b""] * len(raw)  # read-only: _journal_events' concatenate copies it
    ends = ends_array.tolist()
    starts = [0, *ends[:-1]]
    return raw.copy(), [captures[a:b] for a, b in zip(starts, ends, strict=True)]


def _journal_paths(db: sqlite3.Connection) -> PathTable:
    return path_table(db.execute("SELECT id, name FROM paths ORDER BY id"))


def _journal_files(db: sqlite3.Connection) -> dict[FileKey, FileStats]:
    files = {}
    for row in db.execute(f"SELECT {', '.join(FILE_COLUMNS)} FROM files ORDER BY pid, path_id"):
        pid, path_id, opens, errors, *io = row
        numbers = (pid, path_id, opens, *io)
        if not all(isinstance(v, int) and 0 <= v <= NATURAL[1] for v in numbers) \
                or pid > ID32[1]:
            raise Bad("its files table has a value that is not a count")
        files[FileKey(pid, path_id)] = FileStats(opens, open_errors(errors), *io)
    return files


def _journal_samples(db: sqlite3.Connection) -> pd.DataFrame:
    samples = typed(pd.read_sql_query(
        "SELECT t.ts_ns, s.pid, s.tid, s.comm, s.frames, s.modules, s.kernel_frames, t.count "
        "FROM sample_timeline t JOIN stacks s ON s.id = t.stack ORDER BY t.ts_ns, s.id", db),
        "stacks", SAMPLE_KINDS)
    # Stacks repeat over intervals: decode each distinct one once.
    for column in ("frames", "modules"):
        decoded = {text: text_list(text, f"its stacks table's {column} column")
                   for text in samples[column].unique()}
        samples[column] = samples[column].map(decoded)
    check_stacks(samples)
    return samples
