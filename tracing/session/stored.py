"""A saved session, read back: from a journal (SQLite) or a Parquet directory, into the
same plain tables, so `open` and `export` do not care which one they were given.

Times stay on the kernel's monotonic clock (ns) inside; `wall_offset_ns` turns them into
UTC nanoseconds (`ts_ns + wall_offset_ns`), exactly, in both directions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import sqlite3
import stat
import tempfile
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tracing.boundary.untrusted_files import Limits, Refused, open_untrusted, read_fd
from tracing.errors import UserError
from tracing.model.stats import EVENT_DTYPE
from tracing.session.checks import (
    ID32,
    INT32,
    INT64,
    NATURAL,
    TEXT,
    TIME,
    Bad,
    check_meta,
    hist_blob,
    hist_lists,
    ints,
    one_line,
    text_list,
    typed,
)
from tracing.session.journal import CONNECTION_COLUMNS, FORMAT, SCHEMA_VERSION

SQLITE_MAGIC = b"SQLite format 3\x00"
PARQUET_FILES = ("syscalls", "events", "timeline", "processes")
OPTIONAL_PARQUET_FILES = ("samples", "connections")  # absent from older exports
SAMPLE_COLUMNS = ("ts_ns", "pid", "tid", "comm", "frames", "modules", "kernel_frames", "count")
SESSION_JSON_LIMITS = Limits(4 << 20)  # metadata: a few KB in practice
JOURNAL_TABLES = ("meta", "processes", "proc_events", "timeline", "aggregates",
                  "event_batches")
JOURNAL_TABLES_2 = ("stacks", "sample_timeline", "connections")  # schema 2 on

# The columns each reader uses, and what they must hold (the journal's names; Parquet's
# timestamps are checked apart).
PROCESS_COLUMNS = {
    "pid": ints(ID32, required=True), "ppid": ints(ID32), "comm": TEXT, "exe": TEXT,
    "abi": TEXT, "start_ts_ns": ints(TIME), "exit_ts_ns": ints(TIME),
    "exit_code": ints(INT32, default=None), "exit_signal": ints(INT32, default=None)}
PROC_EVENT_COLUMNS = {
    "ts_ns": ints(TIME), "kind": ints(INT32), "pid": ints(ID32), "tid": ints(ID32),
    "ppid": ints(ID32), "status": ints(INT32), "comm": TEXT, "filename": TEXT}
_KEY = {"pid": ints(ID32, required=True), "tid": ints(ID32, required=True),
        "nr": ints(ID32, required=True)}
_SUMS = {c: ints(NATURAL, required=True) for c in ("count", "errors", "total_ns", "max_ns")}
TIMELINE_COLUMNS = {"ts_ns": ints(TIME, required=True), **_KEY, **_SUMS}
AGGREGATE_COLUMNS = {**_KEY, **_SUMS, "min_ns": ints(NATURAL, required=True)}
EVENT_KINDS = {"pid": ints(ID32, required=True), "tid": ints(ID32, required=True),
               "nr": ints(ID32, required=True), "ret": ints(INT64, required=True),
               "duration_ns": ints(NATURAL, required=True)}
SAMPLE_KINDS = {"ts_ns": ints(TIME, required=True), "pid": ints(ID32, required=True),
                "tid": ints(ID32, required=True), "comm": TEXT,
                "kernel_frames": ints(ID32, required=True),
                "count": ints(NATURAL, required=True)}
CONNECTION_KINDS = {
    "conn_id": ints(NATURAL, required=True), "ts_ns": ints(TIME, required=True),
    "pid": ints(ID32), "tid": ints(ID32), "comm": TEXT, "cgroup_id": ints(NATURAL),
    "family": ints((0, 127)), "saddr": TEXT, "sport": ints((0, 65535)), "daddr": TEXT,
    "dport": ints((0, 65535)), "direction": TEXT, "state": TEXT, "end_ts_ns": ints(TIME),
    "result": TEXT, "error": TEXT, "cgroup_path": TEXT, "container_id": TEXT,
    "container_name": TEXT, "container_runtime": TEXT}


@dataclass
class StoredSession:
    path: Path
    meta: dict[str, Any]
    processes: pd.DataFrame  # pid, ppid, comm, exe, cmdline (list), abi, start/exit_ts_ns, ...
    proc_events: pd.DataFrame  # ts_ns, kind, pid, tid, ppid, status, comm, filename
    timeline: pd.DataFrame  # ts_ns, pid, tid, nr, count, errors, total_ns, max_ns, hist
    aggregates: pd.DataFrame  # pid, tid, nr, count, errors, total_ns, min_ns, max_ns, hist
    events: np.ndarray  # EVENT_DTYPE, oldest first
    # CPU samples per interval and stack: ts_ns, pid, tid, comm, frames (tuple), modules
    # (tuple), kernel_frames, count
    samples: pd.DataFrame = dataclasses.field(
        default_factory=lambda: pd.DataFrame(columns=SAMPLE_COLUMNS))
    # TCP connections, the newest state of each: Connection's fields
    connections: pd.DataFrame = dataclasses.field(
        default_factory=lambda: pd.DataFrame(columns=CONNECTION_COLUMNS))

    @property
    def wall_offset_ns(self) -> int:
        return wall_offset_ns(self.meta)

    @property
    def start_ts_ns(self) -> int:
        return int(self.meta.get("start_ts_ns", 0))

    @property
    def end_ts_ns(self) -> int:
        return int(self.meta.get("end_ts_ns", self.start_ts_ns))

    @property
    def name(self) -> str:
        return self.path.name


def wall_offset_ns(meta: dict[str, Any]) -> int:
    """UTC ns minus monotonic ns for this session (fixed at its start)."""
    wall_ns = round(float(meta.get("start_wall_time", 0.0)) * 1e9)
    return wall_ns - int(meta.get("start_ts_ns", 0))


def open_session(path: Path) -> StoredSession:
    """A journal file or a Parquet directory; UserError with one line (exit 2) for anything
    else, however it is malformed: a session file is untrusted input."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise UserError(f"{path}: no such session file or directory; "
                        "'sikte-tui open' with no argument lists the saved sessions") from None
    except OSError as err:
        raise UserError(f"{path}: cannot read it ({err.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        return _from_parquet(path)
    return _from_journal(path)


def _refused(path: Path | str, why: Refused) -> UserError:
    return UserError(f"{path} {why}; a session is a journal file (.sikte.db) or a Parquet "
                     "session directory")


def _bad(path: Path | str, why: Bad | str) -> UserError:
    return UserError(f"{path} is not a readable sikte-tui session: {why}")


# -- journals -------------------------------------------------------------------------------

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
        raise _refused(path, why) from None
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
    if not wal.exists() or wal.stat().st_size == 0:
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
    for suffix in ("", "-wal"):
        _copy_untrusted(Path(f"{path}{suffix}"), copy / f"journal{suffix}")
    return sqlite3.connect(_uri(copy / "journal", "mode=rw"), uri=True, check_same_thread=False)


def _copy_untrusted(source: Path, target: Path) -> None:
    fd = open_untrusted(source)
    try:
        with os.fdopen(os.dup(fd), "rb") as src, open(target, "xb") as dst:
            shutil.copyfileobj(src, dst)
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
        raise _bad(path, why) from None
    if meta.get("format") != FORMAT:
        raise UserError(f"{path} is an SQLite file of another program, not a sikte-tui "
                        "journal")
    try:
        check_meta(meta, SCHEMA_VERSION)
    except Bad as why:
        raise _bad(path, why) from None


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


def _from_journal(path: Path) -> StoredSession:
    with journal_connection(path) as db:
        try:
            return read_journal(db, path)
        except (sqlite3.DatabaseError, pd.errors.DatabaseError, UnicodeDecodeError) as err:
            raise UserError(f"{path} is corrupt or unreadable ({one_line(err)})") from None
        except Bad as why:
            raise _bad(path, why) from None


def read_journal(db: sqlite3.Connection, path: Path) -> StoredSession:
    """Every table of an open journal connection (a file, or a copy in memory); Bad when
    a table or value is not what a journal holds."""
    meta = check_meta(read_meta(db), SCHEMA_VERSION)
    tables = _tables(db)
    newer = int(meta.get("schema_version", 1)) >= 2
    needed = JOURNAL_TABLES + (JOURNAL_TABLES_2 if newer else ())
    missing = [t for t in needed if t not in tables]
    if missing:
        raise Bad(f"it has no {missing[0]} table")
    processes = typed(pd.read_sql_query("SELECT * FROM processes ORDER BY pid", db),
                      "processes", PROCESS_COLUMNS)
    processes["cmdline"] = [text_list(c, "its processes table's cmdline column")
                            for c in processes["cmdline"]]
    processes["cmdline"] = processes["cmdline"].map(list)
    processes["container"] = _texts(processes, "container")  # schema 2 on
    proc_events = typed(pd.read_sql_query("SELECT * FROM proc_events ORDER BY ts_ns", db),
                        "proc_events", PROC_EVENT_COLUMNS)
    timeline = _journal_stats(db, "timeline", "SELECT * FROM timeline ORDER BY ts_ns")
    aggregates = _journal_stats(db, "aggregates",
                                "SELECT * FROM aggregates ORDER BY pid, tid, nr")
    session = StoredSession(path, meta, processes, proc_events, timeline, aggregates,
                            _journal_events(db))
    if newer:
        session.samples = _journal_samples(db)
        session.connections = typed(pd.read_sql_query(
            "SELECT * FROM connections ORDER BY ts_ns, conn_id", db), "connections",
            CONNECTION_KINDS)
    return session


def _journal_stats(db: sqlite3.Connection, table: str, query: str) -> pd.DataFrame:
    frame = typed(pd.read_sql_query(query, db), table,
                  TIMELINE_COLUMNS if table == "timeline" else AGGREGATE_COLUMNS)
    if "hist" not in frame.columns:
        raise Bad(f"its {table} table has no hist column")
    frame["hist"] = [hist_blob(b, table) for b in frame["hist"]]
    return frame


def _journal_events(db: sqlite3.Connection) -> np.ndarray:
    blobs = []
    for (blob,) in db.execute("SELECT data FROM event_batches ORDER BY id"):
        if not isinstance(blob, bytes) or len(blob) % EVENT_DTYPE.itemsize:
            raise Bad("it has a batch of events that is not whole events")
        blobs.append(blob)
    events = np.frombuffer(b"".join(blobs), dtype=EVENT_DTYPE)
    if len(events) and (events["pid"].max() > ID32[1] or events["tid"].max() > ID32[1]
                        or events["nr"].max() > ID32[1] or events["ts"].max() > NATURAL[1]):
        raise Bad("it has an event with a process, thread or syscall number out of range")
    if len(events) and (np.diff(events["ts"].astype(np.int64)) < 0).any():
        events = np.sort(events, order="ts", kind="stable")  # per-CPU buffers interleave
    return events


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
    _check_stacks(samples)
    return samples


def _check_stacks(samples: pd.DataFrame) -> None:
    for frames, modules, kernel in zip(samples["frames"], samples["modules"],
                                       samples["kernel_frames"], strict=True):
        if len(frames) != len(modules) or not 0 <= kernel <= len(frames):
            raise Bad("it has a stack whose frames, modules and kernel frames do not agree")


# -- Parquet directories --------------------------------------------------------------------

def _from_parquet(path: Path) -> StoredSession:
    """Every file is opened from the directory, without following symbolic links, regular
    files only; session.json is read within SESSION_JSON_LIMITS."""
    try:
        dir_fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as err:
        raise UserError(f"{path}: cannot read it ({err.strerror})") from None
    try:
        names = set(os.listdir(dir_fd))
        missing = [f"{n}.parquet" for n in PARQUET_FILES if f"{n}.parquet" not in names]
        if "session.json" not in names or missing:
            raise UserError(f"{path} is not a sikte-tui Parquet session (missing "
                            f"{', '.join(missing) or 'session.json'})")
        meta = _parquet_meta(path, dir_fd)
        present = PARQUET_FILES + tuple(n for n in OPTIONAL_PARQUET_FILES
                                        if f"{n}.parquet" in names)
        tables = {n: _parquet_table(path, dir_fd, n) for n in present}
        return _parquet_session(path, meta, tables)
    except Bad as why:
        raise _bad(path, why) from None
    except OSError as err:
        raise UserError(f"{path}: cannot read it ({err.strerror})") from None
    finally:
        os.close(dir_fd)


def _parquet_meta(path: Path, dir_fd: int) -> dict[str, Any]:
    try:
        fd = open_untrusted("session.json", dir_fd=dir_fd)
        try:
            data = read_fd(fd, SESSION_JSON_LIMITS).data
        finally:
            os.close(fd)
    except Refused as why:
        raise _refused(path / "session.json", why) from None
    try:
        meta = json.loads(data)
    except (ValueError, RecursionError):
        raise Bad("it has a session.json that is not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError(f"{path}/session.json is not a sikte-tui session's")
    return check_meta(meta, SCHEMA_VERSION)


def _parquet_table(path: Path, dir_fd: int, name: str) -> pd.DataFrame:
    import pyarrow.lib
    import pyarrow.parquet as pq

    try:
        fd = open_untrusted(f"{name}.parquet", dir_fd=dir_fd)
    except Refused as why:
        raise _refused(path / f"{name}.parquet", why) from None
    try:
        with os.fdopen(fd, "rb") as f:
            return pq.read_table(f).to_pandas()
    except (ValueError, TypeError, KeyError, IndexError, OverflowError,
            pyarrow.lib.ArrowException) as err:
        raise Bad(f"it has a {name}.parquet that cannot be read ({one_line(err)})") from None


def _parquet_session(path: Path, meta: dict[str, Any],
                     tables: dict[str, pd.DataFrame]) -> StoredSession:
    offset = wall_offset_ns(meta)
    session = StoredSession(
        path, meta,
        processes=_processes_from(tables["processes"], offset),
        proc_events=pd.DataFrame(columns=["ts_ns", "kind", "pid", "tid", "ppid", "status",
                                          "comm", "filename"]),
        timeline=_stats_from(tables["timeline"], offset, "timeline"),
        aggregates=_stats_from(tables["syscalls"], offset, "syscalls"),
        events=_events_from(tables["events"], offset),
    )
    if "samples" in tables:
        session.samples = _samples_from(tables["samples"], offset)
    if "connections" in tables:
        session.connections = _connections_from(tables["connections"], offset)
    return session


def _samples_from(frame: pd.DataFrame, offset: int) -> pd.DataFrame:
    out = typed(frame, "samples", {k: v for k, v in SAMPLE_KINDS.items() if k != "ts_ns"})
    out["ts_ns"] = _mono(frame, "samples", "ts", offset, required=True)
    for column in ("frames", "modules"):
        if column not in frame.columns:
            raise Bad(f"its samples table has no {column} column")
        out[column] = [text_list(v, f"its samples table's {column} column")
                       for v in frame[column]]
    _check_stacks(out)
    return out[list(SAMPLE_COLUMNS)]


def _connections_from(frame: pd.DataFrame, offset: int) -> pd.DataFrame:
    kinds = {k: v for k, v in CONNECTION_KINDS.items() if k not in ("ts_ns", "end_ts_ns")}
    out = typed(frame, "connections", kinds)
    out["ts_ns"] = _mono(frame, "connections", "ts", offset, required=True)
    out["end_ts_ns"] = _mono(frame, "connections", "end_ts", offset)
    return out[list(CONNECTION_COLUMNS)]


def _mono(frame: pd.DataFrame, table: str, column: str, offset: int,
          required: bool = False) -> np.ndarray:
    """A column of UTC timestamps back on the session's monotonic clock, in ns (0 where
    missing, unless required); Bad when it holds something else or falls outside it."""
    if column not in frame.columns:
        raise Bad(f"its {table} table has no {column} column")
    values = frame[column]
    where = f"its {table} table's {column} column"
    if values.dtype.kind == "M":
        stamps = values.to_numpy(dtype="datetime64[ns]")
        known = ~np.isnat(stamps)
        ns = np.where(known, stamps.view(np.int64), 0)
    elif values.dtype.kind in "iu":
        known, ns = np.ones(len(values), dtype=bool), values.to_numpy().astype(np.int64)
    else:
        raise Bad(f"{where} holds {values.dtype} where timestamps belong")
    if required and not known.all():
        raise Bad(f"{where} is empty where a time belongs")
    if known.any():
        low, high = int(ns[known].min()) - offset, int(ns[known].max()) - offset
        if low < TIME[0] or high > TIME[1]:
            raise Bad(f"{where} holds a time outside the session's clock")
    return np.where(known, ns - offset, 0).astype(np.int64)


def _stats_from(frame: pd.DataFrame, offset: int, table: str) -> pd.DataFrame:
    kinds = AGGREGATE_COLUMNS if table == "syscalls" else {
        k: v for k, v in TIMELINE_COLUMNS.items() if k != "ts_ns"}
    out = typed(frame, table, kinds)
    if table != "syscalls":
        out["ts_ns"] = _mono(frame, table, "ts", offset, required=True)
    for column in ("hist_low_ns", "hist_count"):
        if column not in frame.columns:
            raise Bad(f"its {table} table has no {column} column")
    out["hist"] = [hist_lists(lo, c, table) for lo, c in zip(
        frame["hist_low_ns"], frame["hist_count"], strict=True)]
    return out


def _processes_from(frame: pd.DataFrame, offset: int) -> pd.DataFrame:
    kinds = {k: v for k, v in PROCESS_COLUMNS.items()
             if k not in ("start_ts_ns", "exit_ts_ns")}
    out = typed(frame, "processes", kinds)
    for column in ("start_ts", "exit_ts"):
        out[f"{column}_ns"] = _mono(frame, "processes", column, offset)
    if "cmdline" not in frame.columns:
        raise Bad("its processes table has no cmdline column")
    out["cmdline"] = [list(text_list(c, "its processes table's cmdline column"))
                      for c in frame["cmdline"]]
    out["container"] = _texts(out, "container")  # newer exports only
    return out


def _texts(frame: pd.DataFrame, column: str) -> list[str]:
    """A text column, "" where missing (or the whole column, from an older session)."""
    if column not in frame:
        return [""] * len(frame)
    return [v if isinstance(v, str) else "" for v in frame[column]]


def _events_from(frame: pd.DataFrame, offset: int) -> np.ndarray:
    checked = typed(frame, "events", EVENT_KINDS)
    events = np.zeros(len(frame), dtype=EVENT_DTYPE)
    events["ts"] = _mono(frame, "events", "ts", offset, required=True)
    for name in ("pid", "tid", "nr", "ret", "duration_ns"):
        events[name] = checked[name].to_numpy()
    for i in range(6):
        column = f"arg{i}"
        if column not in frame.columns or frame[column].dtype.kind not in "iu":
            raise Bad(f"its events table has no {column} column of numbers")
        events["args"][:, i] = frame[column].to_numpy().astype(np.uint64)
    return events
