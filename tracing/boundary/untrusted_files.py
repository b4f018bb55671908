"""The one way to read a file someone else controls: a traced program's perf map, its /proc
files, a session file handed to `open` or `export`.

sikte-tui runs as root; such a file's owner chooses what it is, so the rules are:

- no symbolic link at the last component (O_NOFOLLOW): a planted link to a root-only file
  is refused, never read on its owner's behalf;
- regular files only: FIFOs, devices, sockets and directories are refused from lstat, before
  any open, and again from fstat on the descriptor (O_NONBLOCK: an open never waits for a
  FIFO's writer, even if the name was swapped between the two checks);
- optionally the owner: a perf map must belong to the process's user and not be writable by
  others, as perf itself requires;
- a size bound: at most `max_bytes` are read, whatever the file says its size is (a sparse
  file or a /proc file, whose size reads as 0, cannot make us read more); past the bound the
  file is refused or, where a prefix is useful, truncated (Limits.truncate says which);
- bounded parsing: lines come one at a time, each at most `max_line` bytes (longer ones are
  skipped, not kept), at most `max_lines` of them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass

CHUNK = 64 * 1024
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY


class Refused(Exception):
    """Why a file was not read, in a few words (the caller names the file)."""


@dataclass(frozen=True, slots=True)
class Limits:
    max_bytes: int
    truncate: bool = False  # past max_bytes: keep the first max_bytes (True) or refuse
    max_line: int = 4096  # longer lines are skipped
    max_lines: int | None = None  # more lines are not read


@dataclass(frozen=True, slots=True)
class Content:
    data: bytes
    truncated: bool  # the file had more than was read


def kind_of(mode: int) -> str:
    """What a non-regular file is, in words."""
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link"))
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def check_regular(st: os.stat_result, owner_uid: int | None = None,
                  others_may_write: bool = True) -> None:
    """Refused unless st is a regular file that passes the owner checks."""
    if not stat.S_ISREG(st.st_mode):
        raise Refused(f"is {kind_of(st.st_mode)}, not a regular file")
    if owner_uid is not None and st.st_uid != owner_uid:
        raise Refused(f"belongs to uid {st.st_uid}, not to uid {owner_uid}")
    if not others_may_write and st.st_mode & stat.S_IWOTH:
        raise Refused("is writable by every user")


def open_untrusted(path: str | os.PathLike[str], owner_uid: int | None = None,
                   others_may_write: bool = True, dir_fd: int | None = None) -> int:
    """A read-only descriptor of a regular file (the caller closes it); Refused or OSError."""
    try:
        # Before opening: opening a device can itself do something (a tape rewinds).
        check_regular(os.lstat(path, dir_fd=dir_fd), owner_uid, others_may_write)
        fd = os.open(path, _OPEN_FLAGS, dir_fd=dir_fd)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise Refused("is a symbolic link") from None
        raise
    try:
        # After: the name may have been swapped since the lstat; the descriptor cannot be.
        check_regular(os.fstat(fd), owner_uid, others_may_write)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_fd(fd: int, limits: Limits) -> Content:
    """At most limits.max_bytes from fd; Refused past them unless limits.truncate."""
    parts: list[bytes] = []
    left = limits.max_bytes + 1  # one byte more tells whether there was more
    while left > 0:
        chunk = os.read(fd, min(CHUNK, left))
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    data = b"".join(parts)
    if len(data) <= limits.max_bytes:
        return Content(data, False)
    if not limits.truncate:
        raise Refused(f"is larger than {limits.max_bytes:,} bytes")
    return Content(data[: limits.max_bytes], True)


def read_untrusted(path: str | os.PathLike[str], limits: Limits,
                   owner_uid: int | None = None, others_may_write: bool = True) -> Content:
    fd = open_untrusted(path, owner_uid, others_may_write)
    try:
        return read_fd(fd, limits)
    finally:
        os.close(fd)


def fd_lines(fd: int, limits: Limits) -> Iterator[bytes]:
    """The lines of fd without their newlines, read a chunk at a time: memory stays within a
    chunk plus one line whatever the file holds (a 400 MB line is skipped as it streams)."""
    budget = limits.max_bytes
    lines = 0
    pending = b""
    skipping = False  # inside a line already longer than max_line
    while budget > 0:
        chunk = os.read(fd, min(CHUNK, budget))
        if not chunk:
            break
        budget -= len(chunk)
        *complete, rest = (pending + chunk).split(b"\n")
        for line in complete:
            if skipping:
                skipping = False
                continue
            if len(line) <= limits.max_line:
                yield line
                lines += 1
                if limits.max_lines is not None and lines >= limits.max_lines:
                    return
        pending = b"" if skipping else rest
        if len(pending) > limits.max_line:
            pending, skipping = b"", True
    if pending and not skipping and budget > 0:  # a last line without a newline, if whole
        yield pending


def read_proc(pid: int, name: str, max_bytes: int) -> Content | None:
    """/proc/PID/NAME (cmdline, comm, stat, status, maps), at most max_bytes of it (the
    process chooses how long its command line is); None when the process is gone or hidden."""
    try:
        fd = os.open(f"/proc/{pid}/{name}", _OPEN_FLAGS)
    except OSError:
        return None
    try:
        return read_fd(fd, Limits(max_bytes, truncate=True))
    except OSError:  # exited while being read
        return None
    finally:
        os.close(fd)


@contextlib.contextmanager
def proc_file(pid: int, name: str) -> Iterator[int | None]:
    """A descriptor of /proc/PID/NAME for fd_lines, closed after; None when unreadable."""
    try:
        fd = os.open(f"/proc/{pid}/{name}", _OPEN_FLAGS)
    except OSError:
        yield None
        return
    try:
        yield fd
    finally:
        os.close(fd)
