"""A saved session, read back: from a journal (SQLite) or a Parquet directory, into the
same plain tables, so `open` and `export` do not care which one they were given.

Times stay on the kernel's monotonic clock (ns) inside; `wall_offset_ns` turns them into
UTC nanoseconds (`ts_ns + wall_offset_ns`), exactly, in both directions.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tracing.errors import UserError
from tracing.journal import CONNECTION_COLUMNS, FORMAT, SCHEMA_VERSION, hist_from_blob
from tracing.model import EVENT_DTYPE, bucket_of

SQLITE_MAGIC = b"SQLite format 3\x00"
PARQUET_FILES = ("syscalls", "events", "timeline", "processes")
OPTIONAL_PARQUET_FILES = ("samples", "connections")  # absent from older exports
SAMPLE_COLUMNS = ("ts_ns", "pid", "tid", "comm", "frames", "modules", "kernel_frames", "count")


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
    """A journal file or a Parquet directory; UserError with one line for anything else."""
    if not path.exists():
        raise UserError(f"{path}: no such session file or directory; "
                        "'sikte-tui open' with no argument lists the saved sessions")
    if path.is_dir():
        return _from_parquet(path)
    return _from_journal(path)


# -- journals -------------------------------------------------------------------------------

def connect_journal(path: Path) -> sqlite3.Connection:
    """A read-only connection to a journal, after checking it is one we can read."""
    try:
        with open(path, "rb") as f:
            magic = f.read(len(SQLITE_MAGIC))
    except OSError as err:
        raise UserError(f"{path}: cannot read it ({err.strerror})") from None
    if magic != SQLITE_MAGIC:
        raise UserError(f"{path} is not a sikte-tui session (neither a journal nor a "
                        "Parquet directory)")
    try:
        # Read-write when allowed: a read-only connection leaves -wal and -shm files behind.
        mode = "rw" if os.access(path, os.W_OK) and os.access(path.parent, os.W_OK) else "ro"
        db = sqlite3.connect(f"file:{path}?mode={mode}", uri=True, check_same_thread=False)
        check_journal(db, path)
    except sqlite3.DatabaseError as err:
        raise UserError(f"{path} is corrupt or unreadable ({err})") from None
    return db


def check_journal(db: sqlite3.Connection, path: Path | str) -> None:
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "meta" not in tables:
        raise UserError(f"{path} is an SQLite file of another program, not a sikte-tui "
                        "journal")
    meta = dict(db.execute("SELECT key, value FROM meta"))
    if json.loads(meta.get("format", "null")) != FORMAT:
        raise UserError(f"{path} is an SQLite file of another program, not a sikte-tui "
                        "journal")
    version = int(json.loads(meta.get("schema_version", "0")))
    if version > SCHEMA_VERSION:
        raise UserError(f"{path} was written by a newer sikte-tui (journal schema {version}, "
                        f"this one reads up to {SCHEMA_VERSION}); upgrade sikte-tui to read it")


def read_meta(db: sqlite3.Connection) -> dict[str, Any]:
    return {k: json.loads(v) for k, v in db.execute("SELECT key, value FROM meta")}


def _from_journal(path: Path) -> StoredSession:
    db = connect_journal(path)
    try:
        return read_journal(db, path)
    except sqlite3.DatabaseError as err:
        raise UserError(f"{path} is corrupt or unreadable ({err})") from None
    finally:
        db.close()


def read_journal(db: sqlite3.Connection, path: Path) -> StoredSession:
    """Every table of an open journal connection (a file, or a copy in memory)."""
    meta = read_meta(db)
    processes = pd.read_sql_query("SELECT * FROM processes ORDER BY pid", db)
    processes["cmdline"] = [json.loads(c) if c else [] for c in processes["cmdline"]]
    processes["container"] = _texts(processes, "container")  # schema 2 on
    proc_events = pd.read_sql_query("SELECT * FROM proc_events ORDER BY ts_ns", db)
    timeline = pd.read_sql_query("SELECT * FROM timeline ORDER BY ts_ns", db)
    aggregates = pd.read_sql_query("SELECT * FROM aggregates ORDER BY pid, tid, nr", db)
    for frame in (timeline, aggregates):
        frame["hist"] = [hist_from_blob(b) for b in frame["hist"]]
    blobs = [row[0] for row in db.execute("SELECT data FROM event_batches ORDER BY id")]
    events = np.frombuffer(b"".join(blobs), dtype=EVENT_DTYPE)
    if len(events) and (np.diff(events["ts"].astype(np.int64)) < 0).any():
        events = np.sort(events, order="ts", kind="stable")  # per-CPU buffers interleave
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    session = StoredSession(path, meta, processes, proc_events, timeline, aggregates, events)
    if "stacks" in tables:  # schema 2 on
        session.samples = _journal_samples(db)
        session.connections = pd.read_sql_query(
            "SELECT * FROM connections ORDER BY ts_ns, conn_id", db)
    return session


def _journal_samples(db: sqlite3.Connection) -> pd.DataFrame:
    samples = pd.read_sql_query(
        "SELECT t.ts_ns, s.pid, s.tid, s.comm, s.frames, s.modules, s.kernel_frames, t.count "
        "FROM sample_timeline t JOIN stacks s ON s.id = t.stack ORDER BY t.ts_ns, s.id", db)
    # Stacks repeat over intervals: decode each distinct one once.
    for column in ("frames", "modules"):
        decoded = {text: tuple(json.loads(text)) for text in samples[column].unique()}
        samples[column] = samples[column].map(decoded)
    return samples


# -- Parquet directories --------------------------------------------------------------------

def _from_parquet(path: Path) -> StoredSession:
    import pyarrow.lib
    import pyarrow.parquet as pq

    meta_file = path / "session.json"
    missing = [f"{n}.parquet" for n in PARQUET_FILES if not (path / f"{n}.parquet").exists()]
    if not meta_file.exists() or missing:
        raise UserError(f"{path} is not a sikte-tui Parquet session (missing "
                        f"{', '.join(missing) or 'session.json'})")
    try:
        meta = json.loads(meta_file.read_text())
        if meta.get("format") != FORMAT:
            raise UserError(f"{path}/session.json is not a sikte-tui session's")
        tables = {n: pq.read_table(path / f"{n}.parquet").to_pandas() for n in PARQUET_FILES}
        tables.update({n: pq.read_table(path / f"{n}.parquet").to_pandas()
                       for n in OPTIONAL_PARQUET_FILES if (path / f"{n}.parquet").exists()})
    except (ValueError, OSError, pyarrow.lib.ArrowException) as err:
        raise UserError(f"{path} is corrupt or unreadable ({err})") from None
    offset = wall_offset_ns(meta)
    session = StoredSession(
        path, meta,
        processes=_processes_from(tables["processes"], offset),
        proc_events=pd.DataFrame(columns=["ts_ns", "kind", "pid", "tid", "ppid", "status",
                                          "comm", "filename"]),
        timeline=_stats_from(tables["timeline"], offset),
        aggregates=_stats_from(tables["syscalls"], offset),
        events=_events_from(tables["events"], offset),
    )
    if "samples" in tables:
        session.samples = _samples_from(tables["samples"], offset)
    if "connections" in tables:
        session.connections = _connections_from(tables["connections"], offset)
    return session


def _samples_from(frame: pd.DataFrame, offset: int) -> pd.DataFrame:
    out = pd.DataFrame({"ts_ns": _mono(frame["ts"], offset)})
    for column in ("pid", "tid", "comm", "kernel_frames", "count"):
        out[column] = frame[column].to_numpy()
    for column in ("frames", "modules"):
        out[column] = [tuple(v) for v in frame[column]]
    return out[list(SAMPLE_COLUMNS)]


def _connections_from(frame: pd.DataFrame, offset: int) -> pd.DataFrame:
    out = frame.copy()
    out["ts_ns"] = _mono(out["ts"], offset)
    ended = out["end_ts"].notna()
    out["end_ts_ns"] = np.where(ended, _mono(out["end_ts"], offset), 0)
    out["family"] = out["family"].astype(np.int64)
    for column in CONNECTION_COLUMNS:
        if out[column].dtype == object:
            out[column] = out[column].fillna("")
    return out[list(CONNECTION_COLUMNS)]


def _mono(column: pd.Series, offset: int) -> np.ndarray:
    """UTC timestamps back to the session's monotonic ns (0 where missing)."""
    values = column.astype("int64") if column.dtype.kind == "M" else column
    ns = np.asarray(pd.array(values, dtype="Int64").fillna(offset), dtype=np.int64)
    return ns - offset


def _hist_pairs(lows: Any, counts: Any) -> tuple[tuple[int, int], ...]:
    if lows is None or counts is None:
        return ()
    return tuple((bucket_of(int(lo)), int(c)) for lo, c in zip(lows, counts, strict=True))


def _stats_from(frame: pd.DataFrame, offset: int) -> pd.DataFrame:
    out = frame.copy()
    if "ts" in out:
        out["ts_ns"] = _mono(out["ts"], offset)
    out["hist"] = [_hist_pairs(lo, c) for lo, c in zip(out["hist_low_ns"], out["hist_count"],
                                                       strict=True)]
    return out


def _processes_from(frame: pd.DataFrame, offset: int) -> pd.DataFrame:
    out = frame.copy()
    for column in ("start_ts", "exit_ts"):
        known = out[column].notna()
        out[f"{column}_ns"] = np.where(known, _mono(out[column], offset), 0)
    out["cmdline"] = [list(c) if c is not None else [] for c in out["cmdline"]]
    out["container"] = _texts(out, "container")  # newer exports only
    return out


def _texts(frame: pd.DataFrame, column: str) -> list[str]:
    """A text column, "" where missing (or the whole column, from an older session)."""
    if column not in frame:
        return [""] * len(frame)
    return [v if isinstance(v, str) else "" for v in frame[column]]


def _events_from(frame: pd.DataFrame, offset: int) -> np.ndarray:
    events = np.zeros(len(frame), dtype=EVENT_DTYPE)
    events["ts"] = _mono(frame["ts"], offset)
    for name in ("pid", "tid", "nr", "ret", "duration_ns"):
        events[name] = frame[name].to_numpy()
    for i in range(6):
        events["args"][:, i] = frame[f"arg{i}"].to_numpy()
    return events
