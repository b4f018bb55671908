"""The descriptors a process has open when tracing begins, from /proc/PID/fd, to seed the
descriptor table (tracing.model.fd_table): later calls keep it current.

Each link is read with readlink on bytes paths (never opened, never followed further):
the names are untrusted bytes as the kernel gives them (`/etc/passwd`, `socket:[1234]`,
`pipe:[5678]`, `anon_inode:[eventfd]`). The count and the time spent are bounded; a
process that is gone, or whose descriptors we may not read, gives {}.
"""

from __future__ import annotations

import os
import time

MAX_FDS = 4096
MAX_SECONDS = 0.25
_FDINFO_MAX = 4096  # /proc/PID/fdinfo/N is a few lines (more for epoll and inotify fds)


def read_fds(pid: int, max_fds: int = MAX_FDS,
             max_seconds: float = MAX_SECONDS) -> dict[int, bytes]:
    """fd -> the name /proc/PID/fd/FD links to (at most max_fds, lowest numbers first;
    what is read until the deadline). {} when the process is gone or unreadable."""
    folder = b"/proc/%d/fd" % pid
    try:
        entries = os.listdir(folder)
    except OSError:
        return {}
    fds = sorted(int(e) for e in entries if e.isdigit())[:max_fds]
    deadline = time.monotonic() + max_seconds
    found: dict[int, bytes] = {}
    for fd in fds:
        if time.monotonic() > deadline:
            break
        try:
            found[fd] = os.readlink(folder + b"/%d" % fd)
        except OSError:
            continue  # closed since the listing
    return found


def read_cloexec(pid: int, fds: list[int] | dict[int, bytes],
                 max_seconds: float = MAX_SECONDS) -> set[int]:
    """Which of the descriptors have O_CLOEXEC (from /proc/PID/fdinfo/FD "flags:", octal):
    an exec closes them. What cannot be read counts as not set."""
    deadline = time.monotonic() + max_seconds
    marked: set[int] = set()
    for fd in fds:
        if time.monotonic() > deadline:
            break
        flags = _fdinfo_flags(b"/proc/%d/fdinfo/%d" % (pid, fd))
        if flags is not None and flags & os.O_CLOEXEC:
            marked.add(fd)
    return marked


def _fdinfo_flags(path: bytes) -> int | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        text = os.read(fd, _FDINFO_MAX)
    except OSError:
        return None
    finally:
        os.close(fd)
    for line in text.splitlines():
        name, _, value = line.partition(b":")
        if name == b"flags":
            try:
                return int(value.strip(), 8)
            except ValueError:
                return None
    return None
