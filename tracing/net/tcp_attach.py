"""The TCP sockets the targets already hold when the trace attaches (a server given by --pid):
its listeners, so that the connections they accept from now on are its own, and its
connections, which appear as existing at attach and are followed from then on.

Sockets come from sock_diag (tracing.net.sockdiag), dumped in each target's network
namespace; a socket is a target's when its inode is among the target's descriptors
(/proc/PID/fd links read with readlink, never followed, bounded in number and time). A
connection held by no descriptor whose local address is a target's listener's is waiting in
that listener's accept queue: it is the listener owner's, inbound. Everything read here comes
from other users' processes: it is kept as data (numbers, and comm as bytes for the kernel).

Pure parts (classify) are apart from the reading (find_sockets) so they can be tested alone.
"""

from __future__ import annotations

import ctypes
import os
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from tracing.net.cgroups import CgroupPaths, cgroup_of_pid
from tracing.net.sockdiag import (
    CLOSE_WAIT,
    ESTABLISHED,
    LISTEN,
    SYN_RECV,
    DiagError,
    DiagSocket,
    dump_tcp,
    open_diag_socket,
)

MAX_FDS = 1 << 20  # descriptors looked at per target
FDS_SECONDS = 2.0  # per target
_READ_MAX = 4096  # /proc/PID/comm and /proc/PID/cgroup: what is read of each
_CLONE_NEWNET = 0x40000000
_SOCKET_PREFIX, _SOCKET_SUFFIX = b"socket:[", b"]"
# A connection in a listener's accept queue: not accepted yet, so held by no descriptor.
_QUEUED_STATES = (ESTABLISHED, SYN_RECV, CLOSE_WAIT)


@dataclass(frozen=True, slots=True)
class Owner:
    pid: int
    comm: bytes  # at most 15 bytes, as the kernel's task comm
    cgroup_id: int  # cgroup v2 id, 0: unknown


@dataclass(frozen=True, slots=True)
class FoundListener:
    sock: DiagSocket
    owner: Owner


@dataclass(frozen=True, slots=True)
class FoundConnection:
    sock: DiagSocket
    owner: Owner
    inbound: bool


@dataclass
class Found:
    """What find_sockets found: the targets' listeners and connections."""

    listeners: list[FoundListener] = field(default_factory=list)
    connections: list[FoundConnection] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # namespaces that could not be read


# -- pure ------------------------------------------------------------------------------------


def _listen_key(family: int, addr: bytes, port: int) -> tuple[int, bytes, int]:
    return family, addr, port


def listeners_of(sockets: Iterable[DiagSocket], owner_of_inode: dict[int, Owner]
                 ) -> list[FoundListener]:
    """The listening sockets held by a target."""
    return [FoundListener(s, owner_of_inode[s.inode]) for s in sockets
            if s.state == LISTEN and s.inode in owner_of_inode]


def connections_of(sockets: Iterable[DiagSocket], owner_of_inode: dict[int, Owner],
                   all_listeners: Iterable[DiagSocket],
                   target_listeners: Iterable[FoundListener]) -> list[FoundConnection]:
    """The targets' connections (not listeners): those held by a target (inbound when their
    local address and port are a listener's, any listener of the namespace: a connection
    accepted there), and those queued on a target's listener."""
    listening = {_listen_key(s.family, s.saddr, s.sport) for s in all_listeners}
    ours = {_listen_key(f.sock.family, f.sock.saddr, f.sock.sport): f.owner
            for f in target_listeners}
    out: list[FoundConnection] = []
    for s in sockets:
        if s.state == LISTEN:
            continue
        exact = _listen_key(s.family, s.saddr, s.sport)
        wildcard = _listen_key(s.family, bytes(len(s.saddr)), s.sport)
        owner = owner_of_inode.get(s.inode) if s.inode else None
        if owner is not None:
            out.append(FoundConnection(s, owner, exact in listening or wildcard in listening))
        elif not s.inode and s.state in _QUEUED_STATES:
            queued_on = ours.get(exact) or ours.get(wildcard)
            if queued_on is not None:
                out.append(FoundConnection(s, queued_on, True))
    return out


def socket_inode(link: bytes) -> int | None:
    """N of a `socket:[N]` descriptor link, else None."""
    if not (link.startswith(_SOCKET_PREFIX) and link.endswith(_SOCKET_SUFFIX)):
        return None
    digits = link[len(_SOCKET_PREFIX):-len(_SOCKET_SUFFIX)]
    return int(digits) if digits.isdigit() and len(digits) <= 20 else None


# -- reading /proc ---------------------------------------------------------------------------


def socket_inodes(pid: int, max_fds: int = MAX_FDS, seconds: float = FDS_SECONDS) -> set[int]:
    """The inodes of the sockets among the process's descriptors (what can be read of them
    until the deadline); empty when it is gone or unreadable."""
    folder = b"/proc/%d/fd" % pid
    deadline = time.monotonic() + seconds
    found: set[int] = set()
    try:
        with os.scandir(folder) as entries:
            for n, entry in enumerate(entries):
                if n >= max_fds or time.monotonic() > deadline:
                    break
                try:
                    inode = socket_inode(os.readlink(entry.path))
                except OSError:
                    continue  # closed since the listing
                if inode is not None:
                    found.add(inode)
    except OSError:
        pass  # gone, or not ours to read: nothing found
    return found


def _read_small(path: str) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return b""
    try:
        return os.read(fd, _READ_MAX)
    except OSError:
        return b""
    finally:
        os.close(fd)


def owner_of(pid: int, cgroups: CgroupPaths) -> Owner:
    comm = _read_small(f"/proc/{pid}/comm").rstrip(b"\n")[:15]
    path = cgroup_of_pid(_read_small(f"/proc/{pid}/cgroup").decode(errors="replace"))
    cgroup_id = cgroups.id_of(path) if path else None
    return Owner(pid, comm, cgroup_id or 0)


def _netns(pid: int | str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


# -- the dump --------------------------------------------------------------------------------


_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def diag_socket_in(pid: int) -> socket.socket:
    """A sock_diag socket in the network namespace of `pid` (a socket stays in the namespace
    it was made in). The calling thread enters the namespace for that moment and goes back:
    call it on a thread of its own, never the engine's."""
    if _netns(pid) == _netns("thread-self"):
        return open_diag_socket()
    back = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            return open_diag_socket()
        finally:
            _setns(back)  # raises if it cannot: the thread is then left to end
    finally:
        os.close(back)


def dump_namespace(pid: int) -> list[DiagSocket]:
    """Every owned TCP socket, both families, of the namespace `pid` is in."""
    sock = diag_socket_in(pid)
    try:
        return dump_tcp(4, sock=sock) + dump_tcp(6, sock=sock)
    finally:
        sock.close()


def find_sockets(pids: Iterable[int], cgroups: CgroupPaths | None = None) -> Found:
    """The targets' listeners and connections, now (see the module's docstring)."""
    return find_connections(find_listeners(pids, cgroups))


@dataclass
class Listening:
    """Step one of find_sockets: the targets' listeners (to be told to the kernel before
    step two looks for connections, so that none accepted in between is missed)."""

    found: Found
    owners: dict[int, Owner]  # by pid
    by_netns: dict[int, list[int]]  # namespace -> its targets
    inodes: dict[int, Owner]  # socket inode -> owner, as read in step one


def find_listeners(pids: Iterable[int], cgroups: CgroupPaths | None = None) -> Listening:
    cgroups = cgroups or CgroupPaths()
    by_netns: dict[int, list[int]] = {}
    owners: dict[int, Owner] = {}
    for pid in sorted(set(pids)):
        ns = _netns(pid)
        if ns is None:
            continue  # gone
        by_netns.setdefault(ns, []).append(pid)
        owners[pid] = owner_of(pid, cgroups)
    found = Found()
    inodes = _owners_by_inode(owners)
    for ns_pids in by_netns.values():
        try:
            sockets = dump_namespace(ns_pids[0])
        except (DiagError, OSError) as err:
            found.errors.append(f"pid {ns_pids[0]}: {err}")
            continue
        found.listeners += listeners_of(sockets, inodes)
    return Listening(found, owners, by_netns, inodes)


def find_connections(step: Listening) -> Found:
    found = step.found
    inodes = {**step.inodes, **_owners_by_inode(step.owners)}  # accepted since step one
    for ns_pids in step.by_netns.values():
        try:
            sockets = dump_namespace(ns_pids[0])
        except (DiagError, OSError) as err:
            found.errors.append(f"pid {ns_pids[0]}: {err}")
            continue
        pids = set(ns_pids)
        mine = [f for f in found.listeners if f.owner.pid in pids]
        found.connections += connections_of(
            sockets, inodes, [s for s in sockets if s.state == LISTEN], mine)
    return found


def _owners_by_inode(owners: dict[int, Owner]) -> dict[int, Owner]:
    """Socket inode -> its owner; a socket several targets hold (inherited) is the lowest
    pid's, most often the parent that made it."""
    by_inode: dict[int, Owner] = {}
    for pid in sorted(owners, reverse=True):
        for inode in socket_inodes(pid):
            by_inode[inode] = owners[pid]
    return by_inode
