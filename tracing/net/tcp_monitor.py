"""TCP connections of the traced processes, from bpf/tcp.bpf.c's state changes.

The kernel sends one event per state change of a traced process's socket (tcp_events ring
buffer); TcpMonitor follows each socket from its start (connect, or accepted) to CLOSE and
hands out tracing.model.connections.Connection objects. The sockets targets already held when
the trace attached (--pid) are looked up by tracing.net.tcp_seed and join in: their listeners'
connections come as any others, their connections as found at attach, then followed.
It works on the bcc BPF object it is given and does not import bcc (tracing/engine/ is the
one folder that does): the ring buffer it opens is drained by the engine's own polling
(SyscallProgram.poll_until / drain).
"""

from __future__ import annotations

import ctypes
import dataclasses
import errno
import functools
import socket
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syscall_tables import errno_name
from tracing.model.connections import (
    INBOUND,
    OUTBOUND,
    RESULT_FAILED,
    RESULT_OK,
    RESULT_REFUSED,
    RESULT_RESET,
    RESULT_TIMEOUT,
    RESULT_UNREACHABLE,
    TCP_STATES,
    Connection,
    with_container,
)
from tracing.net.containers import ContainerLookup
from tracing.net.tcp_attach import FoundConnection
from tracing.net.tcp_seed import Batch, Seeder

VMLINUX_BTF = Path("/sys/kernel/btf/vmlinux")

_ESTABLISHED, _SYN_SENT, _SYN_RECV, _CLOSE, _LISTEN = 1, 2, 3, 7, 10
_AF_INET6 = 10
_CFG_COOKIE = 1  # tcp_config slot of the socket cookie's offset
_DIRECTIONS = {1: OUTBOUND, 2: INBOUND}

# The socket error at CLOSE -> the result. Other errors are RESULT_FAILED.
_RESULTS = {
    errno.ECONNREFUSED: RESULT_REFUSED,
    errno.ETIMEDOUT: RESULT_TIMEOUT,
    errno.ECONNRESET: RESULT_RESET,
    errno.EPIPE: RESULT_RESET,  # a RST in CLOSE_WAIT
    errno.EHOSTUNREACH: RESULT_UNREACHABLE,
    errno.ENETUNREACH: RESULT_UNREACHABLE,
}

# Connections followed at once; as bpf/tcp.bpf.c's TCP_SOCKETS. Bounds what lost CLOSE
# events (ring buffer drops) could otherwise leave behind.
MAX_LIVE = 65536
_SLOT_DROPS, _SLOT_SENT = 0, 1
# How long a connection's cgroup is tried again when the resolver does not know it yet.
RESOLVE_RETRY_S = 10.0


class _TcpEventC(ctypes.Structure):
    """struct tcp_event of bpf/tcp.bpf.c."""

    _fields_ = [
        ("ts", ctypes.c_uint64),
        ("sk", ctypes.c_uint64),
        ("start_ts", ctypes.c_uint64),
        ("cgroup_id", ctypes.c_uint64),
        ("pid", ctypes.c_uint32),
        ("tid", ctypes.c_uint32),
        ("comm", ctypes.c_char * 16),
        ("oldstate", ctypes.c_int32),
        ("newstate", ctypes.c_int32),
        ("sk_err", ctypes.c_int32),
        ("family", ctypes.c_uint16),
        ("sport", ctypes.c_uint16),
        ("dport", ctypes.c_uint16),
        ("direction", ctypes.c_uint8),
        ("pad", ctypes.c_uint8),
        ("saddr", ctypes.c_uint8 * 16),
        ("daddr", ctypes.c_uint8 * 16),
        ("pad2", ctypes.c_uint32),
        ("cookie", ctypes.c_uint64),
    ]


assert ctypes.sizeof(_TcpEventC) == 120


# -- the kernel's struct layout, from BTF ----------------------------------------------------

# BTF kinds -> bytes that follow a type's 12-byte header: fixed, and per vlen entry.
_BTF_EXTRA = {1: 4, 3: 12, 14: 4, 17: 4}
_BTF_PER_ENTRY = {4: 12, 5: 12, 6: 8, 13: 8, 15: 12, 19: 12}
_BTF_STRUCT, _BTF_LAST_KIND = 4, 19


@functools.cache
def btf_member_offset(struct_name: str, member: str, path: Path = VMLINUX_BTF) -> int | None:
    """The byte offset of a direct member of a kernel struct in the running kernel, from its
    BTF; None when there is no BTF or no such member (bit fields are not supported)."""
    try:
        data = path.read_bytes()
        return _find_member(data, struct_name.encode(), member.encode())
    except (OSError, struct.error, ValueError):
        return None


def _find_member(data: bytes, struct_name: bytes, member: bytes) -> int | None:
    order = "<" if data[:2] == b"\x9f\xeb" else ">"
    magic, _version, _flags, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(
        order + "HBBIIIII", data, 0)
    if magic != 0xEB9F:
        raise ValueError("not BTF")
    strings = data[hdr_len + str_off: hdr_len + str_off + str_len]

    def name(offset: int) -> bytes:
        return strings[offset: strings.index(b"\0", offset)]

    pos, end = hdr_len + type_off, hdr_len + type_off + type_len
    while pos < end:
        name_off, info, _size = struct.unpack_from(order + "III", data, pos)
        kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
        pos += 12
        if kind == _BTF_STRUCT and name(name_off) == struct_name:
            return _member_in(data, order, pos, vlen, info >> 31, member, name)
        if kind < 1 or kind > _BTF_LAST_KIND:
            return None  # a kind this reader does not know: its size is unknown
        pos += _BTF_EXTRA.get(kind, 0) + _BTF_PER_ENTRY.get(kind, 0) * vlen
    return None


def _member_in(data: bytes, order: str, pos: int, vlen: int, kind_flag: int, member: bytes,
               name: object) -> int | None:
    for i in range(vlen):
        name_off, _type, offset = struct.unpack_from(order + "III", data, pos + 12 * i)
        if name(name_off) == member:  # type: ignore[operator]
            bits = offset & 0xFFFFFF if kind_flag else offset
            bitfield = kind_flag and offset >> 24
            return None if bitfield or bits % 8 else bits // 8
    return None


def cookie_offset(btf: Path = VMLINUX_BTF) -> int | None:
    """offsetof(struct sock, __sk_common.skc_cookie) in the running kernel, from its BTF."""
    common = btf_member_offset("sock", "__sk_common", btf)
    cookie = btf_member_offset("sock_common", "skc_cookie", btf)
    return None if common is None or cookie is None else common + cookie


# -- events -> connections -------------------------------------------------------------------


def _address(raw: ctypes.Array[ctypes.c_ubyte], family: int) -> str:
    data = bytes(raw)
    if family == 6:
        return socket.inet_ntop(socket.AF_INET6, data)
    return socket.inet_ntop(socket.AF_INET, data[:4])


def _text_address(raw: bytes, family: int) -> str:
    return socket.inet_ntop(socket.AF_INET6 if family == 6 else socket.AF_INET, raw)


def _endpoints_of(f: FoundConnection) -> set[tuple[object, ...]]:
    """What a followed connection would be known by (see _live_endpoints)."""
    s = f.sock
    saddr, daddr = _text_address(s.saddr, s.family), _text_address(s.daddr, s.family)
    out: set[tuple[object, ...]] = {(s.family, saddr, s.sport, daddr, s.dport)}
    if s.state == _SYN_SENT:
        out.add((s.family, daddr, s.dport))
    return out


def close_result(err: int, established: bool) -> tuple[str, str]:
    """(result, errno name) of a connection that reached CLOSE with socket error `err`
    (-1: unknown), having been established or not."""
    if err > 0:
        return _RESULTS.get(err, RESULT_FAILED), errno_name(err)
    # No error: a normal close, or a connect given up before an answer (closed while in
    # SYN_SENT, or failed inside connect() before any packet).
    return (RESULT_OK if established else RESULT_FAILED), ""


@dataclass(slots=True)
class _Live:
    """A socket being followed: its newest Connection and what the result depends on."""

    conn: Connection
    established: bool = False


class TcpMonitor:
    """Follows the traced processes' TCP connections from bpf/tcp.bpf.c's events.

    `bpf` is the loaded bcc BPF object with tcp.bpf.c compiled in (SyscallProgram._bpf);
    `resolver` (the tracer's tracing.net.containers.BackgroundResolver), when given, fills the
    cgroup path and container fields: a connection whose cgroup it does not know yet comes
    again once it does."""

    def __init__(self, bpf: object, resolver: ContainerLookup | None = None,
                 btf: Path = VMLINUX_BTF,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.resolver = resolver
        self._counters = bpf[b"tcp_counters"]  # type: ignore[index]
        self._bpf = bpf
        self.sk_err_offset = btf_member_offset("sock", "sk_err", btf)
        config = bpf[b"tcp_config"]  # type: ignore[index]
        if self.sk_err_offset:  # else failures get no reason (RESULT_FAILED)
            config[config.Key(0)] = config.Leaf(self.sk_err_offset)
        self.cookie_offset = cookie_offset(btf)
        if self.cookie_offset:  # else sockets found at attach are shown but not followed
            config[config.Key(_CFG_COOKIE)] = config.Leaf(self.cookie_offset)
        self._seeder: Seeder | None = None
        # Connections found at attach whose first change has not come yet, by socket cookie,
        # and the cookies already seen in events (the kernel took those up before the
        # batch that found them came here: that batch leaves them out).
        self._by_cookie: dict[int, _Live] = {}
        self._cookies_seen: set[int] = set()
        self._live: dict[int, _Live] = {}  # by socket address
        self._changed: dict[int, Connection] = {}  # by conn_id
        # conn_id -> (first tried, newest state): connections whose cgroup is not known yet.
        self._unresolved: dict[int, tuple[float, Connection]] = {}
        self._clock = clock
        self._next_id = 1
        self.deadline = float("inf")  # set by each consume pass (SyscallProgram._consume)
        self._taken = 0
        bpf[b"tcp_events"].open_ring_buffer(self._on_event)  # type: ignore[index]

    # -- ring buffer -----------------------------------------------------------------------

    def _on_event(self, _ctx: int, data: int, _size: int) -> int:
        self.add_event(ctypes.cast(data, ctypes.POINTER(_TcpEventC)).contents)
        # libbpf's consume returns only once the ring is empty: a target connecting and
        # closing in a loop must not hold the engine thread there. Stopped at the pass's
        # deadline (this record is taken), the rest waits in the ring.
        self._taken += 1
        if not self._taken & 0xFF and time.monotonic() >= self.deadline:
            return -1
        return 0

    def add_event(self, e: _TcpEventC) -> None:
        """One state change (public for tests that feed events without a kernel)."""
        live = self._live.get(e.sk)
        starts = e.newstate == _SYN_SENT or e.oldstate == _LISTEN
        if e.cookie and live is None and not starts:  # one found at attach: its first change
            live = self._by_cookie.pop(e.cookie, None)
            if live is not None:
                self._keep_live(e.sk, live)
        if e.cookie and len(self._cookies_seen) < MAX_LIVE:
            self._cookies_seen.add(e.cookie)
        if live is None or starts:
            live = self._start(e)
        else:
            live.conn = self._updated(live.conn, e)
        if e.newstate == _ESTABLISHED:
            live.established = True
        if e.newstate == _CLOSE:
            result, error = close_result(e.sk_err, live.established)
            live.conn = dataclasses.replace(live.conn, end_ts_ns=e.ts, result=result,
                                            error=error)
            del self._live[e.sk]
        self._changed[live.conn.conn_id] = live.conn

    def _start(self, e: _TcpEventC) -> _Live:
        """A new connection on this socket (or the first event seen of one)."""
        family = 6 if e.family == _AF_INET6 else 4
        conn = Connection(
            conn_id=self._next_id, ts_ns=e.start_ts or e.ts, pid=e.pid, tid=e.tid,
            comm=e.comm.decode(errors="replace"), cgroup_id=e.cgroup_id, family=family,
            saddr=_address(e.saddr, family), sport=e.sport, daddr=_address(e.daddr, family),
            dport=e.dport, direction=_DIRECTIONS.get(e.direction, OUTBOUND),
            state=TCP_STATES.get(e.newstate, str(e.newstate)))
        self._next_id += 1
        live = _Live(conn)
        self._keep_live(e.sk, live)
        return live

    def _keep_live(self, sk: int, live: _Live) -> None:
        self._live.pop(sk, None)
        self._live[sk] = live
        if len(self._live) > MAX_LIVE:  # the oldest, most likely one whose CLOSE was lost
            del self._live[next(iter(self._live))]

    # -- sockets found at attach -----------------------------------------------------------

    def attach_existing(self, pids: Iterable[int]) -> None:
        """Look up the TCP sockets these targets hold now, on a thread of its own: their
        listeners' connections are theirs from then on, and their connections come out of
        take_changed as existing at attach (tracing.net.tcp_seed), then are followed."""
        if self._seeder is None:
            self._seeder = Seeder(self._bpf, bool(self.cookie_offset))
        self._seeder.start(pids)

    @property
    def seeder(self) -> Seeder | None:
        """The look-up of sockets found at attach (its .errors, .listeners), if started."""
        return self._seeder

    def _take_seeded(self) -> None:
        if self._seeder is None:
            return
        for batch in self._seeder.take_ready():
            self._add_batch(batch)

    def _add_batch(self, batch: Batch) -> None:
        known = self._live_endpoints()
        for f in batch.connections:
            if f.sock.cookie in self._cookies_seen or _endpoints_of(f) & known:
                continue  # already followed, from its start or since the kernel took it up
            live = _Live(self._found_connection(f, batch.ts_ns),
                         established=f.sock.state not in (_SYN_SENT, _SYN_RECV))
            if batch.followed and f.sock.cookie:
                self._by_cookie[f.sock.cookie] = live
                if len(self._by_cookie) > MAX_LIVE:
                    del self._by_cookie[next(iter(self._by_cookie))]
            self._changed[live.conn.conn_id] = live.conn

    def _found_connection(self, f: FoundConnection, ts_ns: int) -> Connection:
        s, family = f.sock, f.sock.family
        conn = Connection(
            conn_id=self._next_id, ts_ns=ts_ns, pid=f.owner.pid, tid=f.owner.pid,
            comm=f.owner.comm.decode(errors="replace"), cgroup_id=f.owner.cgroup_id,
            family=family, saddr=_text_address(s.saddr, family), sport=s.sport,
            daddr=_text_address(s.daddr, family), dport=s.dport,
            direction=INBOUND if f.inbound else OUTBOUND,
            state=TCP_STATES.get(s.state, str(s.state)))
        self._next_id += 1
        return conn

    def _live_endpoints(self) -> set[tuple[object, ...]]:
        """The followed connections' endpoints; a connect in progress (no local port yet)
        by its remote end only."""
        out: set[tuple[object, ...]] = set()
        for live in self._live.values():
            c = live.conn
            if c.sport:
                out.add((c.family, c.saddr, c.sport, c.daddr, c.dport))
            else:
                out.add((c.family, c.daddr, c.dport))
        return out

    @staticmethod
    def _updated(c: Connection, e: _TcpEventC) -> Connection:
        """The connection at a later state. A connect's first event has no local port yet
        (it is picked after SYN_SENT), so ports and addresses are taken when known."""
        changes: dict[str, Any] = {"state": TCP_STATES.get(e.newstate, str(e.newstate))}
        if e.sport:
            changes.update(sport=e.sport, saddr=_address(e.saddr, c.family))
        if e.dport:
            changes.update(dport=e.dport, daddr=_address(e.daddr, c.family))
        return dataclasses.replace(c, **changes)

    # -- reading ---------------------------------------------------------------------------

    def take_changed(self) -> tuple[Connection, ...]:
        """The connections that are new or changed since the last call, at their newest
        state, oldest first. One whose cgroup the resolver did not know yet (a cgroup newer
        than its last walk of the tree) comes again once it does, for RESOLVE_RETRY_S."""
        self._take_seeded()
        changed, self._changed = self._changed, {}
        out = {conn_id: self._with_container(c) for conn_id, c in changed.items()}
        for conn_id, (_, c) in list(self._unresolved.items()):
            if conn_id not in changed:
                resolved = self._with_container(c)
                if resolved is not c:
                    out[conn_id] = resolved
        return tuple(c for _, c in sorted(out.items()))

    def _with_container(self, c: Connection) -> Connection:
        """c with its container fields, or c itself (then kept to be tried again)."""
        # The tracer's resolver answers from its cache and looks a miss up on its own thread:
        # this runs on the engine thread, which must not wait on cgroup walks or Docker.
        if self.resolver is None or not c.cgroup_id:
            return c
        info = self.resolver.lookup(c.cgroup_id)
        if info.path:
            self._unresolved.pop(c.conn_id, None)
            return with_container(c, info.path, info.container_id, info.name, info.runtime)
        now = self._clock()
        since = self._unresolved.get(c.conn_id, (now, c))[0]
        if now - since < RESOLVE_RETRY_S:
            self._unresolved[c.conn_id] = (since, c)
        else:  # its cgroup is gone, or never was: give up
            self._unresolved.pop(c.conn_id, None)
        return c

    @property
    def live(self) -> int:
        """Connections that have not reached CLOSE."""
        return len(self._live) + len(self._by_cookie)

    def drops(self) -> int:
        """State changes lost because the ring buffer was full (Drops.tcp_events)."""
        return self._slot(_SLOT_DROPS)

    def sent(self) -> int:
        """State changes the kernel submitted."""
        return self._slot(_SLOT_SENT)

    def _slot(self, slot: int) -> int:
        return int(sum(self._counters[self._counters.Key(slot)]))
