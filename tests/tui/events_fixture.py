"""Decoded events and per-file totals on top of the recorded replay fixture, for the event log,
the Files view and a syscall's details: three more processes (app, curl, cat) whose events
carry captured fields made as the kernel makes them (tracing.model.captures.pack_field), a
path table, and per-file totals. The recorded events are replaced by these (the recorded
data in tests/tui/data is not changed).

Events, by snapshot (times in ms from the trace's start):

  0  10 app  openat(AT_FDCWD, "/etc/app.conf", O_RDONLY|O_CLOEXEC) = -1 ENOENT
     11 app  openat(AT_FDCWD, "/etc/app.d/local.conf", O_RDONLY) = -1 EACCES
     12 app  openat(AT_FDCWD, "/etc/passwd", O_RDONLY|O_CLOEXEC) = 3
     13 app  read(3</etc/passwd>, ..., 4096) = 120
  1  (none)
  2  20 app  close(3</etc/passwd>) = 0
     21 curl connect(5, {AF_INET 127.0.0.1:443}, 16) = -1 ECONNREFUSED
  3  30 app  openat(AT_FDCWD, "/etc/app.conf", O_RDONLY|O_CLOEXEC) = -1 ENOENT
     31 cat  openat(AT_FDCWD, "/etc/passwd", O_RDONLY) = 3
"""

from __future__ import annotations

import dataclasses
import errno
import socket
import struct
from collections.abc import Sequence
from types import MappingProxyType

import numpy as np

from tracing.model.captures import (
    EVF_SELECTED,
    KIND_BUF,
    KIND_PATH,
    KIND_SOCKADDR,
    pack_field,
)
from tracing.model.files import FileKey, FileStats
from tracing.model.paths import PathTable
from tracing.model.selection import EventSelection
from tracing.model.stats import EVENT_DTYPE, ProcessInfo, Snapshot, StatKey, SyscallStats

APP, CURL, CAT = 7100, 7200, 7300
READ, CLOSE, CONNECT, OPENAT = 0, 3, 42, 257  # x86_64
AT_FDCWD = (1 << 64) - 100  # -100 in a 64-bit register
O_CLOEXEC = 0o2000000
MS = 1_000_000
_COMMS = {APP: "app", CURL: "curl", CAT: "cat"}
_STATS = {
    StatKey(APP, APP, OPENAT): SyscallStats(3, 2, 90_000, 20_000, 40_000, ()),
    StatKey(APP, APP, READ): SyscallStats(1, 0, 5_000, 5_000, 5_000, ()),
    StatKey(APP, APP, CLOSE): SyscallStats(1, 0, 1_000, 1_000, 1_000, ()),
    StatKey(CURL, CURL, CONNECT): SyscallStats(1, 1, 30_000, 30_000, 30_000, ()),
    StatKey(CAT, CAT, OPENAT): SyscallStats(1, 0, 9_000, 9_000, 9_000, ()),
}

PATHS = PathTable()
APP_CONF = PATHS.add(b"/etc/app.conf")
LOCAL_CONF = PATHS.add(b"/etc/app.d/local.conf")
PASSWD = PATHS.add(b"/etc/passwd")
APP_LOG = PATHS.add(b"/var/log/app.log")

FILES_EARLY = {
    FileKey(APP, APP_CONF): FileStats(open_errors=((errno.ENOENT, 1),)),
    FileKey(APP, LOCAL_CONF): FileStats(open_errors=((errno.EACCES, 1),)),
    FileKey(APP, PASSWD): FileStats(opens=1, calls=1, reads=1, bytes_read=120, io_ns=5_000),
}
FILES = {
    FileKey(APP, APP_CONF): FileStats(open_errors=((errno.ENOENT, 2),)),
    FileKey(APP, LOCAL_CONF): FileStats(open_errors=((errno.EACCES, 1), (errno.ENOENT, 1))),
    FileKey(APP, PASSWD): FileStats(opens=1, calls=2, reads=1, bytes_read=120, io_ns=6_000),
    FileKey(CAT, PASSWD): FileStats(opens=1, calls=4, reads=3, bytes_read=5_000,
                                    io_ns=22_000),
    FileKey(APP, APP_LOG): FileStats(opens=1, calls=10, writes=10, bytes_written=1_000_000,
                                     io_ns=2_000_000),
}


def _sockaddr_in(host: str, port: int) -> bytes:
    return struct.pack("<H", socket.AF_INET) + struct.pack(">H", port) + \
        socket.inet_aton(host) + bytes(8)


def _event(start_ns: int, ms: int, pid: int, nr: int, ret: int, duration_ns: int,
           args: Sequence[int], data: bytes = b"", fd_path: int = 0
           ) -> tuple[tuple[object, ...], bytes]:
    record = (start_ns + ms * MS, pid, pid, nr, ret, duration_ns,
              tuple(args) + (0,) * (6 - len(args)), 0, EVF_SELECTED, len(data), fd_path)
    return record, data


def _open(start_ns: int, ms: int, pid: int, path: bytes, flags: int, ret: int
          ) -> tuple[tuple[object, ...], bytes]:
    return _event(start_ns, ms, pid, OPENAT, ret, 12_000, (AT_FDCWD, 0x55B9D3B43660, flags),
                  pack_field(1, KIND_PATH, path))


def _batches(start_ns: int) -> list[list[tuple[tuple[object, ...], bytes]]]:
    s = start_ns
    return [
        [_open(s, 10, APP, b"/etc/app.conf", O_CLOEXEC, -errno.ENOENT),
         _open(s, 11, APP, b"/etc/app.d/local.conf", 0, -errno.EACCES),
         _open(s, 12, APP, b"/etc/passwd", O_CLOEXEC, 3),
         _event(s, 13, APP, READ, 120, 5_000, (3, 0x7FFD0000, 4096),
                pack_field(1, KIND_BUF, b"root:x:0:0:root:/root:/bin/bash\n"), PASSWD)],
        [],
        [_event(s, 20, APP, CLOSE, 0, 1_000, (3,), b"", PASSWD),
         _event(s, 21, CURL, CONNECT, -errno.ECONNREFUSED, 30_000, (5, 0x7FFD1000, 16),
                pack_field(1, KIND_SOCKADDR, _sockaddr_in("127.0.0.1", 443)))],
        [_open(s, 30, APP, b"/etc/app.conf", O_CLOEXEC, -errno.ENOENT),
         _open(s, 31, CAT, b"/etc/passwd", 0, 3)],
    ]


def _records(items: list[tuple[tuple[object, ...], bytes]]) -> np.ndarray:
    out = np.array([r for r, _ in items], dtype=EVENT_DTYPE)
    out.setflags(write=False)
    return out


def _processes(snapshot: Snapshot) -> dict[int, ProcessInfo]:
    extra = {pid: ProcessInfo(pid, 1, comm, f"/usr/bin/{comm}", (comm,), "x86_64",
                              snapshot.start_ts_ns) for pid, comm in _COMMS.items()}
    return {**snapshot.processes, **extra}


def with_events(snapshots: list[Snapshot], selection: str = "failed") -> list[Snapshot]:
    """The recorded snapshots (four) with the synthetic processes, syscalls, events (in
    place of the recorded ones), path names and file totals listed above."""
    batches = _batches(snapshots[0].start_ts_ns)
    chosen = EventSelection.parse(selection)
    out = []
    for i, s in enumerate(snapshots):
        stats = {**s.stats, **_STATS}
        interval = {**s.interval, **_STATS} if i == 0 else dict(s.interval)
        out.append(dataclasses.replace(
            s, stats=MappingProxyType(stats), interval=MappingProxyType(interval),
            processes=MappingProxyType(_processes(s)), events=_records(batches[i]),
            event_data=tuple(d for _, d in batches[i]), paths=PATHS,
            files=MappingProxyType(FILES_EARLY if i < 2 else FILES), selection=chosen))
    return out
