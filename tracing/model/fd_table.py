"""Each traced process's descriptors and what they name, kept current from the calls that
create, duplicate and close them, like `strace -y` (and `-yy` for sockets).

Files are named by the path the call opened. A relative path opened through a directory
descriptor (`openat(3, "x")`) is joined with that directory's name when it is known; one
relative to the working directory (AT_FDCWD, open, creat) is kept as given, since the
working directory of the process is not followed. Sockets are `socket:[AF_INET]` until a
connect, bind or accept gives them an endpoint, then `TCP:[127.0.0.1:8080]`; pipes
`pipe:[N]` (N counts the pairs of this trace, both ends the same N); descriptors without a
path `anon_inode:[eventfd2]`, from the call that made them.

The table is keyed by process id: threads share their process's descriptors. A descriptor
dropped without the kernel handing over its I/O totals (exec's O_CLOEXEC, close_range) is
remembered as stale, so the totals that arrive later (when the number is reused, or at exit)
still go to the file they belong to, and calls on it are still named: a process can clear
O_CLOEXEC in ways the table does not see (ioctl FIONCLEX), and a call that proves such a
descriptor open (dup2 from it, fcntl on it) brings it back. Pure: no bcc, no I/O.
"""

from __future__ import annotations

import errno as errno_names
import fcntl
import os
import socket
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from tracing.decode import argspec
from tracing.decode.argspec import SyscallSpec
from tracing.model.captures import _IO as _IO_BODY  # the KIND_IO layout, read in one go
from tracing.model.captures import (
    FIELD_HEADER,
    KIND_FDPAIR,
    KIND_IO,
    KIND_PATH,
    KIND_SOCKADDR,
    Field,
    IoTotals,
    fd_pair,
)
from tracing.model.paths import UNKNOWN_ID, PathTable

# linux/fcntl.h; neither os nor fcntl exports it (the kernel's "current directory" dfd).
AT_FDCWD = -100
# linux/close_range.h: close_range(first, last, CLOSE_RANGE_CLOEXEC) marks instead of closing.
CLOSE_RANGE_CLOEXEC = 1 << 2
_CLOEXEC = os.O_CLOEXEC | socket.SOCK_CLOEXEC  # the same bit on Linux; both for clarity
_SOCK_TYPE_MASK = 0xF  # the type without SOCK_NONBLOCK / SOCK_CLOEXEC (linux/net.h)
_FAMILY_AT: dict[int, str] = {socket.AF_INET: "", socket.AF_INET6: "v6"}
# strace -yy's protocol labels for the two common socket types of the IP families.
_PROTO_OF_TYPE: dict[int, str] = {socket.SOCK_STREAM: "TCP", socket.SOCK_DGRAM: "UDP"}

# The fields each kind of call needs (the rest of a record's data is not parsed).
_WANTS = argspec.OPENS | argspec.FD_PAIR | argspec.NAMES_SOCKET
_NONE: frozenset[int] = frozenset()
_WANTED = {argspec.OPENS: frozenset({KIND_PATH}), argspec.FD_PAIR: frozenset({KIND_FDPAIR}),
           argspec.NAMES_SOCKET: frozenset({KIND_SOCKADDR})}

# A socket address (raw sockaddr bytes) in short form ("127.0.0.1:8080", "/run/x.sock");
# None when it cannot be read. Given by the caller: the model does not decode addresses.
EndpointName = Callable[[bytes], str | None]


class FdEntry(NamedTuple):
    path_id: int
    cloexec: bool = False
    kind: str = "file"  # "file", "socket", "pipe", "anon"
    proto: str = ""  # sockets: "TCP", "UDPv6", "UNIX", "NETLINK"... ("" unknown)


class CallRecord(NamedTuple):
    """The parts of an event record the table reads (plain ints, not numpy scalars)."""

    pid: int
    ret: int
    args: tuple[int, ...]


@dataclass(slots=True)
class Applied:
    """What one call did that the per-file accounting counts."""

    handovers: list[tuple[int, IoTotals]] = field(default_factory=list)  # (path id, totals)
    opened: int | None = None  # the path id of a successful open


def s32(value: int) -> int:
    """A register holding a C int, as the int (descriptors, AT_FDCWD, flags)."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def failed(ret: int) -> bool:
    return -4095 <= ret <= -1


def path_field(fields: Sequence[Field]) -> Field | None:
    return next((f for f in fields if f.kind == KIND_PATH and f.arg < 6), None)


def fields_of(data: bytes, kinds: frozenset[int]
              ) -> tuple[list[tuple[int, IoTotals]], list[Field]]:
    """The handed-over totals (fd, totals) in a record's data, and its fields of those
    kinds (the others are skipped unparsed: closes come by the hundred thousand)."""
    handovers: list[tuple[int, IoTotals]] = []
    found: list[Field] = []
    pos, end, size = 0, len(data), FIELD_HEADER.size
    while pos + size <= end:
        arg, kind, status, length = FIELD_HEADER.unpack_from(data, pos)
        pos += size
        if kind == KIND_IO and length >= _IO_BODY.size and pos + _IO_BODY.size <= end:
            fd, *values = _IO_BODY.unpack_from(data, pos)
            handovers.append((fd, IoTotals._make(values)))
        elif kind in kinds:
            found.append(Field(arg, kind, status, data[pos:pos + length]))
        pos += length
    return handovers, found


def path_in(data: bytes) -> Field | None:
    """path_field of a record's data, without parsing the other fields (failed opens are
    counted by the hundred thousand)."""
    pos, end, size = 0, len(data), FIELD_HEADER.size
    while pos + size <= end:
        arg, kind, status, length = FIELD_HEADER.unpack_from(data, pos)
        pos += size
        if kind == KIND_PATH and arg < 6:
            return Field(arg, kind, status, data[pos:pos + length])
        pos += length
    return None


def kind_of_name(name: bytes) -> str:
    """The kind of a descriptor from the name the kernel gives it in /proc/PID/fd."""
    if name.startswith(b"socket:["):
        return "socket"
    if name.startswith(b"pipe:["):
        return "pipe"
    if name.startswith(b"anon_inode:"):
        return "anon"
    return "file"


def _text_bytes(text: str) -> bytes:
    return text.encode("utf-8", errors="backslashreplace")


class FdTable:
    """(pid, fd) -> FdEntry for every traced process."""

    def __init__(self, paths: PathTable, endpoint: EndpointName | None = None) -> None:
        self.paths = paths
        self.endpoint = endpoint
        self.tables: dict[int, dict[int, FdEntry]] = {}
        self.stale: dict[tuple[int, int], FdEntry] = {}  # dropped, totals not yet reported
        self._pairs = 0

    # -- looking up ------------------------------------------------------------------------

    def get(self, pid: int, fd: int) -> FdEntry | None:
        table = self.tables.get(pid)
        return table.get(fd) if table is not None else None

    def path_of(self, pid: int, fd: int) -> int:
        """The path id of a descriptor open now (0: not known)."""
        entry = self.get(pid, fd)
        return entry.path_id if entry is not None else UNKNOWN_ID

    def owner_of(self, pid: int, fd: int) -> int | None:
        """The path whose I/O a descriptor's kernel totals are: the open one, else the one
        dropped without its totals reported (None: not known)."""
        entry = self.get(pid, fd) or self.stale.get((pid, fd))
        return entry.path_id if entry is not None else None

    def paths_of(self, pids: Sequence[int], fds: Sequence[int]) -> list[int]:
        """The path ids of many descriptors (the hot path of every batch): open ones, else
        stale ones (closed at exec, maybe not)."""
        tables, stale = self.tables, self.stale
        out = []
        for pid, fd in zip(pids, fds, strict=True):
            table = tables.get(pid)
            entry = table.get(fd) if table is not None else None
            if entry is None:
                entry = stale.get((pid, fd))
            out.append(entry.path_id if entry is not None else UNKNOWN_ID)
        return out

    # -- processes -------------------------------------------------------------------------

    def seed(self, pid: int, fds: Mapping[int, bytes], cloexec: Iterable[int] = ()) -> None:
        """The descriptors a process had when tracing began (names as /proc gives them)."""
        marked = set(cloexec)
        table = self.tables.setdefault(pid, {})
        for fd, name in fds.items():
            table[fd] = FdEntry(self.paths.add(name), fd in marked, kind_of_name(name))

    def fork(self, parent: int, child: int) -> None:
        """A new process starts with a copy of its parent's descriptors."""
        table = self.tables.get(parent)
        if table is not None:
            self.tables[child] = dict(table)

    def exec(self, pid: int) -> None:
        """A successful exec closes the O_CLOEXEC descriptors (the kernel keeps their totals
        until the number is reused or the process exits: remembered as stale)."""
        table = self.tables.get(pid)
        if not table:
            return
        for fd in [fd for fd, e in table.items() if e.cloexec]:
            self._drop_unreported(pid, fd, table)

    def exit(self, pid: int) -> dict[int, FdEntry]:
        """Forget a process; its last descriptors (stale ones included) are returned."""
        last = self.tables.pop(pid, {})
        for key in [k for k in self.stale if k[0] == pid]:
            last.setdefault(key[1], self.stale.pop(key))
        return last

    def exit_many(self, pids: Collection[int]) -> dict[int, dict[int, FdEntry]]:
        """exit() of many processes, with one pass over the stale entries."""
        last = {pid: self.tables.pop(pid, {}) for pid in pids}
        if last:
            for key in [k for k in self.stale if k[0] in last]:
                last[key[0]].setdefault(key[1], self.stale.pop(key))
        return last

    def _drop_unreported(self, pid: int, fd: int, table: dict[int, FdEntry]) -> None:
        entry = table.pop(fd, None)
        if entry is not None:
            self.stale[(pid, fd)] = entry

    def _set(self, pid: int, fd: int, entry: FdEntry) -> None:
        if fd < 0:
            return
        self.tables.setdefault(pid, {})[fd] = entry
        self.stale.pop((pid, fd), None)

    # -- calls -----------------------------------------------------------------------------

    def apply(self, call: CallRecord, data: bytes, spec: SyscallSpec) -> Applied:
        """Update the table from one call (`data`: its captured fields); the I/O it handed
        over (attributed to the files as they were before the call) and the file it
        opened."""
        done = Applied()
        effects = spec.effects
        handovers, fields = fields_of(data, _WANTED.get(effects & _WANTS, _NONE)) \
            if data else ((), [])
        for fd, totals in handovers:
            owner = self.owner_of(call.pid, fd)
            done.handovers.append((UNKNOWN_ID if owner is None else owner, totals))
            self.stale.pop((call.pid, fd), None)
        if effects & argspec.FD_CLOSE:
            # Linux releases the number even when close fails (EINTR, EIO); EBADF: no number.
            fd = s32(call.args[0])
            table = self.tables.get(call.pid)
            if table is not None:
                table.pop(fd, None)
            self.stale.pop((call.pid, fd), None)
        elif failed(call.ret):
            if effects & argspec.NAMES_SOCKET and -call.ret == errno_names.EINPROGRESS:
                self._name_socket(call, fields)
        else:
            self._apply_success(call, fields, spec, done)
        return done

    def _apply_success(self, call: CallRecord, fields: Sequence[Field], spec: SyscallSpec,
                       done: Applied) -> None:
        effects = spec.effects
        if effects & argspec.OPENS:
            entry = FdEntry(self.open_path(call, path_field(fields)),
                            self._cloexec(call, spec))
            done.opened = entry.path_id
            self._set(call.pid, call.ret, entry)
        elif effects & argspec.FD_RET:
            self._set(call.pid, call.ret, self._new_descriptor(call, fields, spec))
        elif effects & argspec.FD_DUP_TO:
            old, new = s32(call.args[0]), s32(call.args[1])
            if old != new:
                self._set(call.pid, new, self._copy(call.pid, old, self._cloexec(call, spec)))
        elif effects & argspec.FD_PAIR:
            self._pair(call, fields, spec)
        elif effects & argspec.FD_FCNTL:
            self._fcntl(call)
        elif effects & argspec.FD_CLOSE_RANGE:
            self._close_range(call)
        elif effects & argspec.NAMES_SOCKET:
            self._name_socket(call, fields)

    def open_path(self, call: CallRecord, found: Field | None) -> int:
        """The path id an open call names by its path field (joined with its directory
        descriptor's path)."""
        if found is None or found.faulted:
            return UNKNOWN_ID
        name = found.data
        if found.arg > 0 and not name.startswith(b"/"):
            dfd = s32(call.args[0])
            directory = self.get(call.pid, dfd) if dfd != AT_FDCWD else None
            if directory is not None and directory.kind == "file" and directory.path_id:
                name = self.paths.name(directory.path_id).rstrip(b"/") + b"/" + name
        return self.paths.add(name)

    def _cloexec(self, call: CallRecord, spec: SyscallSpec) -> bool:
        i = spec.cloexec_arg
        return 0 <= i < len(call.args) and bool(call.args[i] & _CLOEXEC)

    def _copy(self, pid: int, fd: int, cloexec: bool) -> FdEntry:
        """The entry of a descriptor a successful call duplicated (one dropped as stale is
        open after all: back in the table)."""
        entry = self._proven_open(pid, fd)
        if entry is None:
            return FdEntry(UNKNOWN_ID, cloexec, "file")
        return entry._replace(cloexec=cloexec)

    def _proven_open(self, pid: int, fd: int) -> FdEntry | None:
        entry = self.get(pid, fd)
        if entry is None:
            entry = self.stale.pop((pid, fd), None)
            if entry is not None:
                self._set(pid, fd, entry)
        return entry

    def _new_descriptor(self, call: CallRecord, fields: Sequence[Field],
                        spec: SyscallSpec) -> FdEntry:
        cloexec = self._cloexec(call, spec)
        if spec.effects & argspec.NAMES_SOCKET:  # accept: a socket connected to its peer
            listener = self.get(call.pid, s32(call.args[0]))
            proto = listener.proto if listener is not None else ""
            entry = FdEntry(UNKNOWN_ID, cloexec, "socket", proto)
            return self._with_endpoint(entry, fields) or entry._replace(
                path_id=listener.path_id if listener is not None else UNKNOWN_ID)
        if spec.name == "socket":
            family, kind = s32(call.args[0]), s32(call.args[1]) & _SOCK_TYPE_MASK
            name = f"socket:[{_family_name(family)}]"
            return FdEntry(self.paths.add(_text_bytes(name)), cloexec, "socket",
                           _proto(family, kind))
        if spec.name == "dup":
            return self._copy(call.pid, s32(call.args[0]), False)
        name = f"anon_inode:[{spec.name}]"
        return FdEntry(self.paths.add(_text_bytes(name)), cloexec, "anon")

    def _pair(self, call: CallRecord, fields: Sequence[Field], spec: SyscallSpec) -> None:
        pair = next((p for f in fields if (p := fd_pair(f)) is not None), None)
        if pair is None:
            return
        self._pairs += 1
        cloexec = self._cloexec(call, spec)
        if spec.name == "socketpair":
            family = s32(call.args[0])
            proto = _proto(family, s32(call.args[1]) & _SOCK_TYPE_MASK)
            name = f"{proto or _family_name(family)}:[socketpair {self._pairs}]"
            entry = FdEntry(self.paths.add(_text_bytes(name)), cloexec, "socket", proto)
        else:
            entry = FdEntry(self.paths.add(b"pipe:[%d]" % self._pairs), cloexec, "pipe")
        for fd in pair:
            self._set(call.pid, fd, entry)

    def _fcntl(self, call: CallRecord) -> None:
        fd, cmd = s32(call.args[0]), s32(call.args[1])
        if cmd in (fcntl.F_DUPFD, fcntl.F_DUPFD_CLOEXEC):
            self._set(call.pid, call.ret,
                      self._copy(call.pid, fd, cmd == fcntl.F_DUPFD_CLOEXEC))
        elif cmd == fcntl.F_SETFD:
            entry = self._proven_open(call.pid, fd)
            if entry is not None:
                self._set(call.pid, fd,
                          entry._replace(cloexec=bool(call.args[2] & fcntl.FD_CLOEXEC)))

    def _close_range(self, call: CallRecord) -> None:
        table = self.tables.get(call.pid)
        if not table:
            return
        first, last = call.args[0] & 0xFFFFFFFF, call.args[1] & 0xFFFFFFFF
        for fd in [fd for fd in table if first <= fd <= last]:
            if call.args[2] & CLOSE_RANGE_CLOEXEC:
                table[fd] = table[fd]._replace(cloexec=True)
            else:
                self._drop_unreported(call.pid, fd, table)

    def _name_socket(self, call: CallRecord, fields: Sequence[Field]) -> None:
        fd = s32(call.args[0])
        entry = self.get(call.pid, fd) or FdEntry(UNKNOWN_ID, False, "socket")
        if entry.kind != "socket":
            return
        named = self._with_endpoint(entry, fields)
        if named is not None:
            self._set(call.pid, fd, named)

    def _with_endpoint(self, entry: FdEntry, fields: Sequence[Field]) -> FdEntry | None:
        addr = next((f for f in fields if f.kind == KIND_SOCKADDR and f.data), None)
        if addr is None or self.endpoint is None:
            return None
        where = self.endpoint(addr.data)
        if where is None:
            return None
        proto = entry.proto or _family_label(addr.data)
        name = f"{proto}:[{where}]" if proto else f"socket:[{where}]"
        return entry._replace(path_id=self.paths.add(_text_bytes(name)), proto=proto)


def _family_name(family: int) -> str:
    try:
        return socket.AddressFamily(family).name
    except ValueError:
        return str(family)


def _proto(family: int, kind: int) -> str:
    """strace -yy's label of a socket: TCP, UDPv6, UNIX, NETLINK..."""
    if family in _FAMILY_AT:
        label = _PROTO_OF_TYPE.get(kind)
        return label + _FAMILY_AT[family] if label else ""
    return _family_name(family).removeprefix("AF_") if family != socket.AF_UNSPEC else ""


def _family_label(addr: bytes) -> str:
    """The label of an address's family alone (an accepted socket whose listener is not
    known): a stream socket, since only those accept."""
    if len(addr) < 2:
        return ""
    family = int.from_bytes(addr[:2], "little")
    return _proto(family, socket.SOCK_STREAM)
