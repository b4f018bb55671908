"""How much the saved sessions may take: the sessions folder's size cap, pruning the oldest
sessions past it, a journal's own cap, and deleting one session from the `open` list.

Only what is certainly a sikte-tui session of the user is ever deleted, through a handle on
the folder (tracing/userfiles.Dir: as the user, no link followed):

- a journal: a regular file of the user named *.sikte.db that starts like an SQLite
  database, with its -journal, -wal and -shm files (those that are the user's regular files);
- a Parquet session: a real directory of the user holding only an export's files, all regular
  and the user's, with a session.json of sikte-tui's.

A journal another process has open (a trace still running, or a reader) is never deleted:
SQLite holds a shared lock on its -shm file for as long as a connection is open, and
F_GETLK sees it.
"""

from __future__ import annotations

import fcntl
import os
import re
import stat
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tracing.boundary.userfiles import Dir, acting_as, read_json_object
from tracing.errors import UserError
from tracing.session.schema import SQLITE_MAGIC

GIB = 1 << 30
DEFAULT_SESSIONS_CAP = 2 * GIB
CAP_ENV = "SIKTE_SESSIONS_CAP"
# Individual events an in-memory session keeps at most (after a disk failure, or
# --no-journal); the oldest go first. Everything else is small beside them.
MEMORY_EVENTS_CAP = 256 << 20

JOURNAL_SUFFIX = ".sikte.db"
JOURNAL_SIDE_FILES = ("-journal", "-wal", "-shm")
# What an export writes (tracing/export.SESSION_FILES; a test keeps the two equal).
PARQUET_FILES = frozenset({"session.json", *(f"{t}.parquet" for t in (
    "syscalls", "events", "timeline", "processes", "samples", "connections", "files",
    "threads"))})

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """'2G', '500MiB', '1.5g', '0' -> bytes (binary units); ValueError naming the form."""
    m = _SIZE_RE.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a size: use a number with K, M, G or T "
                         "(e.g. 2G, 500M; 0: no cap)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def format_cap(n: int) -> str:
    """1073741824 -> '1 GiB', 536870912 -> '512 MiB' (for messages)."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            value = n / scale
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"


def sessions_cap(option: str | None) -> int:
    """The folder cap in bytes: --sessions-cap, else $SIKTE_SESSIONS_CAP, else 2 GiB; 0 means
    no cap. A malformed value is one line, exit 2."""
    for text, where in ((option, "--sessions-cap"), (os.environ.get(CAP_ENV), CAP_ENV)):
        if text is None or (where == CAP_ENV and not text.strip()):
            continue
        try:
            return parse_size(text)
        except ValueError as err:
            raise UserError(f"{where}: {err}", exit_code=2) from None
    return DEFAULT_SESSIONS_CAP


def journal_cap(folder_cap: int) -> int:
    """A journal's own cap: half the folder's (1 GiB by default), so one trace never pushes
    out every other session; 0 (no folder cap) means none."""
    return folder_cap // 2


@dataclass(frozen=True)
class SavedSession:
    """A session found in the folder: its entry's name, bytes on disk, files (for a journal),
    when it was last written, and whether another process has it open."""

    name: str
    size: int
    mtime: float
    files: tuple[str, ...]
    parquet: bool
    in_use: bool


def scan(directory: Dir) -> list[SavedSession]:
    """The sikte-tui sessions in the folder; anything else is left out (and never touched)."""
    found = (_classify(directory, name) for name in sorted(_listdir(directory)))
    return [s for s in found if s is not None]


def _listdir(directory: Dir) -> list[str]:
    """Its entries (a Dir may hold an O_PATH handle, which cannot be read: "." from it can)."""
    with acting_as(directory.owner):
        fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=directory.fd)
    try:
        return os.listdir(fd)
    finally:
        os.close(fd)


def _classify(directory: Dir, name: str) -> SavedSession | None:
    st = directory.lstat(name)
    if st is None or st.st_uid != directory.owner.uid:
        return None
    try:
        if stat.S_ISREG(st.st_mode) and name.endswith(JOURNAL_SUFFIX):
            return _journal(directory, name, st)
        if stat.S_ISDIR(st.st_mode):
            return _parquet(directory, name, st)
    except OSError:  # gone meanwhile, or unreadable: not ours to delete
        return None
    return None


def _journal(directory: Dir, name: str, st: os.stat_result) -> SavedSession | None:
    if not _starts_like_sqlite(directory, name):
        return None
    files, size, mtime = [name], st.st_size, st.st_mtime
    for suffix in JOURNAL_SIDE_FILES:
        side = directory.lstat(name + suffix)
        if side is not None and stat.S_ISREG(side.st_mode) and side.st_uid == st.st_uid:
            files.append(name + suffix)
            size += side.st_size
            mtime = max(mtime, side.st_mtime)
    return SavedSession(name, size, mtime, tuple(files), False, journal_in_use(directory, name))


def _starts_like_sqlite(directory: Dir, name: str) -> bool:
    try:
        head = directory.read_small(name, len(SQLITE_MAGIC))
    except OSError:
        return False
    return head[:len(SQLITE_MAGIC)] == SQLITE_MAGIC


def _parquet(directory: Dir, name: str, st: os.stat_result) -> SavedSession | None:
    with directory.open_subdir(name) as sub:
        names = _listdir(sub)
        if not names or not set(names) <= PARQUET_FILES or "session.json" not in names:
            return None
        size, mtime = 0, st.st_mtime
        for entry in names:
            est = sub.lstat(entry)
            if est is None or not stat.S_ISREG(est.st_mode) or est.st_uid != st.st_uid:
                return None
            size += est.st_size
            mtime = max(mtime, est.st_mtime)
        meta = read_json_object(sub, "session.json")
    if meta is None or not str(meta.get("format", "")).startswith("sikte-tui"):
        return None
    return SavedSession(name, size, mtime, (), True, False)


# struct flock on Linux: l_type, l_whence (short), l_start, l_len (off_t), l_pid (pid_t).
_FLOCK = "hhqqi"
# SQLite's unix VFS keeps its "DMS" lock at byte 120 + 8 of the -shm file, shared, for as
# long as a connection to the database is open.
_SHM_DMS_BYTE = 128


def journal_in_use(directory: Dir, name: str) -> bool:
    """Another process (a running trace, a reader) has the journal open."""
    with acting_as(directory.owner):
        try:
            fd = os.open(f"{name}-shm", _SHM_FLAGS, dir_fd=directory.fd)
        except OSError:  # no -shm file: no connection has it open
            return False
    return _dms_locked(fd)


def journal_path_in_use(path: Path) -> bool:
    """The same for a journal named by its path (the sessions list, which reads as is)."""
    try:
        fd = os.open(f"{path}-shm", _SHM_FLAGS)
    except OSError:
        return False
    return _dms_locked(fd)


_SHM_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _dms_locked(fd: int) -> bool:
    """Someone else holds SQLite's DMS lock on this -shm file (closes fd)."""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        query = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, _SHM_DMS_BYTE, 1, 0)
        answer = struct.unpack(_FLOCK, fcntl.fcntl(fd, fcntl.F_GETLK, query))
        return bool(answer[0] != fcntl.F_UNLCK)
    except OSError:
        return False
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Pruned:
    removed: tuple[str, ...]  # entry names, oldest first
    freed: int  # bytes
    total: int  # bytes the folder's sessions take afterwards


def prune(directory: Dir, cap: int, keep: Iterable[str] = ()) -> Pruned:
    """Delete the least recently written sessions until the folder's sessions take at most
    `cap` bytes (0: no cap). Never those named in `keep` (the running journal) nor one
    another process has open."""
    sessions = scan(directory)
    total = sum(s.size for s in sessions)
    if cap <= 0 or total <= cap:
        return Pruned((), 0, total)
    kept = set(keep)
    candidates = sorted((s for s in sessions if s.name not in kept and not s.in_use),
                        key=lambda s: (s.mtime, s.name))
    removed: list[str] = []
    freed = 0
    for session in candidates:
        if total - freed <= cap:
            break
        _remove(directory, session)
        removed.append(session.name)
        freed += session.size
    return Pruned(tuple(removed), freed, total - freed)


def _remove(directory: Dir, session: SavedSession) -> None:
    if session.parquet:
        directory.remove_tree(session.name)
        return
    # The main file last: a journal is a session as long as it is there.
    for name in reversed(session.files):
        directory.unlink(name)


def delete_session(directory: Dir, name: str) -> SavedSession:
    """Delete one session (from the `open` list); UserError, one line, when it is not a
    sikte-tui session of the user or another process has it open."""
    session = _classify(directory, name)
    if session is None:
        raise UserError(f"{directory.path / name} is not a sikte-tui session of yours; "
                        "nothing was deleted")
    if session.in_use:
        raise UserError(f"{name} is open in another sikte-tui (a trace still recording, or "
                        "someone reading it); close that first")
    _remove(directory, session)
    return session
