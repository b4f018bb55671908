"""The saved sessions in a directory, newest first, described from their metadata only
(reading a whole journal to list it would be slow). Each entry is untrusted: one that cannot
be read is listed as unreadable, with why, and never stops the list.

A journal whose trace was killed has no closing mark: it is listed as "aborted" (or
"recording" while another sikte-tui still writes it), with the start time its metadata
knows (the trace's first tick, else when the journal was made, else the file's time)."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracing.boundary.untrusted_files import Refused, kind_of, open_untrusted, read_fd
from tracing.errors import UserError
from tracing.session.checks import Bad, check_meta, one_line
from tracing.session.journal_reader import journal_connection, read_meta
from tracing.session.parquet_reader import SESSION_JSON_LIMITS
from tracing.session.retention import journal_path_in_use
from tracing.session.schema import FORMAT, SCHEMA_VERSION


@dataclass(frozen=True)
class SessionSummary:
    path: Path
    start_wall_time: float
    duration_s: float
    targets: tuple[str, ...]
    state: str
    exit_code: int | None
    size_bytes: int
    problem: str = ""  # why it cannot be opened, if it cannot
    # A journal cut short (killed trace): what it holds ends at its last write.
    aborted: bool = False
    has_data: bool = True  # it recorded at least one tick (else only its targets are known)


def _size(path: Path) -> int:
    """Bytes on disk: a directory's files, or a journal and its -wal and -shm files."""
    if path.is_dir() and not path.is_symlink():
        candidates = list(path.iterdir())
    else:
        candidates = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
    total = 0
    for p in candidates:
        try:
            st = p.lstat()
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            total += st.st_size
    return total


def _time(meta: dict[str, Any], key: str) -> float | None:
    value = meta.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None


# The states a trace has while it runs: a journal left in one of them without its closing
# mark was cut short.
RUNNING_STATES = ("tracing", "starting", "?")


def _summary(path: Path, meta: dict[str, Any], journal: bool) -> SessionSummary:
    has_data = _time(meta, "start_wall_time") is not None
    start = (_time(meta, "start_wall_time") or _time(meta, "created_wall_time")
             or _mtime(path))
    end = _time(meta, "end_wall_time") or start
    exit_code = meta.get("exit_code")
    state = str(meta.get("state", "?"))
    aborted = False
    if journal and _time(meta, "closed_wall_time") is None and state in RUNNING_STATES:
        aborted = not journal_path_in_use(path)
        state = "aborted" if aborted else "recording"
    return SessionSummary(path, start, max(end - start, 0.0),
                          tuple(meta.get("targets") or ()), state,
                          exit_code if isinstance(exit_code, int) else None, _size(path),
                          aborted=aborted, has_data=has_data)


def _parquet_meta(path: Path) -> dict[str, Any]:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        json_fd = open_untrusted("session.json", dir_fd=fd)
    finally:
        os.close(fd)
    try:
        meta = json.loads(read_fd(json_fd, SESSION_JSON_LIMITS).data)
    finally:
        os.close(json_fd)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise Bad("it has a session.json that is not a sikte-tui session's")
    return check_meta(meta, SCHEMA_VERSION)


def _ended(s: SessionSummary) -> str:
    return time.strftime("%H:%M:%S", time.localtime(s.start_wall_time + s.duration_s))


def cut_short_notice(path: Path, meta: dict[str, Any]) -> str | None:
    """What to tell a person opening a journal whose trace was killed, or None."""
    summary = _summary(path, meta, journal=not path.is_dir())  # Parquet: never cut short
    if not summary.aborted:
        return None
    held = (f"what it recorded until {_ended(summary)}" if summary.has_data
            else "no snapshot: it was killed before the first tick, only its targets are known")
    return f"{path.name}: the trace was cut short (killed); it holds {held}"


def _journal_meta(path: Path) -> dict[str, Any]:
    with journal_connection(path) as db:
        return read_meta(db)


def describe_session(path: Path) -> SessionSummary:
    """What the list shows of a session; never raises: an entry that cannot be read is
    listed with what is wrong (a FIFO or a device is not opened at all)."""
    try:
        st = path.lstat()
        journal = stat.S_ISREG(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            meta = _parquet_meta(path)
        elif journal:
            meta = _journal_meta(path)
        else:
            raise Refused(f"is {kind_of(st.st_mode)}, not a session")
    except (UserError, Bad, Refused, OSError, ValueError, RecursionError,
            sqlite3.Error) as err:
        problem = one_line(err.strerror if isinstance(err, OSError) and err.strerror else err)
        return SessionSummary(path, _mtime(path), 0.0, (), "unreadable", None, _size(path),
                              problem or type(err).__name__)
    return _summary(path, meta, journal)


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except OSError:
        return 0.0


def _is_session(entry: Path) -> bool:
    if entry.name.endswith(".sikte.db"):
        return True
    try:
        is_dir = stat.S_ISDIR(entry.lstat().st_mode)
        return is_dir and (entry / "session.json").exists()
    except OSError:
        return False


def list_sessions(directory: Path) -> list[SessionSummary]:
    """Journals (*.sikte.db) and Parquet session directories, newest first."""
    try:
        entries = list(directory.iterdir())
    except OSError:  # none yet, or not ours to read
        return []
    return sorted((describe_session(p) for p in entries if _is_session(p)),
                  key=lambda s: (s.start_wall_time, s.path.name), reverse=True)
