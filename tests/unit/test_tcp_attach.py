"""TCP sockets found at attach, without a kernel: the sock_diag parser, which of a namespace's
sockets are the targets' (and in which direction), and how TcpMonitor shows a batch of them
(once each, bound to the kernel's events by socket cookie)."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import pytest

from tracing.model.connections import INBOUND, OUTBOUND
from tracing.net import sockdiag
from tracing.net.sockdiag import CLOSE_WAIT, ESTABLISHED, LISTEN, SYN_SENT, DiagError, DiagSocket
from tracing.net.tcp_attach import (
    FoundConnection,
    FoundListener,
    Owner,
    connections_of,
    listeners_of,
    socket_inode,
)
from tracing.net.tcp_monitor import TcpMonitor, _TcpEventC
from tracing.net.tcp_seed import Batch

LO = bytes([127, 0, 0, 1])
ANY = bytes(4)
SERVER = Owner(10, b"server", 7)
WORKER = Owner(11, b"worker", 7)


def sock(state: int, sport: int, dport: int = 0, inode: int = 0, cookie: int = 0,
         saddr: bytes = LO, daddr: bytes = LO) -> DiagSocket:
    return DiagSocket(4, state, saddr, sport, daddr, dport, inode, cookie, 0)


# -- sock_diag messages ----------------------------------------------------------------------


def diag_message(seq: int, s: DiagSocket) -> bytes:
    body = struct.pack("=BBBB", 2, s.state, 0, 0) + s.sport.to_bytes(2, "big")
    body += s.dport.to_bytes(2, "big") + s.saddr.ljust(16, b"\0") + s.daddr.ljust(16, b"\0")
    body += struct.pack("=IIIIIIII", 0, s.cookie & 0xFFFFFFFF, s.cookie >> 32, 0, 0, 0,
                        s.uid, s.inode)
    return struct.pack("=IHHII", 16 + len(body), 20, 2, seq, 0) + body


def test_a_dump_is_parsed_to_its_end() -> None:
    a = sock(LISTEN, 80, inode=5, cookie=(3 << 32) | 9, saddr=ANY, daddr=ANY)
    b = sock(ESTABLISHED, 80, 5000, inode=6, cookie=10)
    found: list[DiagSocket] = []
    data = diag_message(7, a) + diag_message(99, b) + diag_message(7, b)  # 99: not ours
    assert not sockdiag._parse(data, 7, 4, found, limit=10)
    assert found == [a, b]
    assert sockdiag._parse(struct.pack("=IHHII", 16, 3, 2, 7, 0), 7, 4, found, limit=10)


def test_a_dump_error_and_a_malformed_message_raise() -> None:
    error = struct.pack("=IHHII", 20, 2, 0, 7, 0) + struct.pack("=i", -1)
    with pytest.raises(DiagError):
        sockdiag._parse(error, 7, 4, [], limit=10)
    with pytest.raises(DiagError):
        sockdiag._parse(struct.pack("=IHHII", 4, 20, 2, 7, 0), 7, 4, [], limit=10)


def test_a_dump_keeps_at_most_the_limit() -> None:
    found: list[DiagSocket] = []
    data = b"".join(diag_message(7, sock(ESTABLISHED, 80, p, inode=p)) for p in range(5))
    sockdiag._parse(data, 7, 4, found, limit=3)
    assert [s.dport for s in found] == [0, 1, 2]


# -- whose sockets ---------------------------------------------------------------------------


def test_socket_links() -> None:
    assert socket_inode(b"socket:[1234]") == 1234
    for link in (b"pipe:[1234]", b"socket:[]", b"socket:[12a]", b"/tmp/socket:[1]",
                 b"socket:[" + b"9" * 30 + b"]"):
        assert socket_inode(link) is None


def test_listeners_and_connections_are_told_apart_by_owner_and_direction() -> None:
    owners = {5: SERVER, 6: SERVER, 8: WORKER}
    sockets = [
        sock(LISTEN, 80, inode=5, saddr=ANY, daddr=ANY),  # the server's, on every address
        sock(LISTEN, 443, inode=99, daddr=ANY),  # someone else's
        sock(ESTABLISHED, 80, 5000, inode=6),  # accepted by the server
        sock(ESTABLISHED, 443, 5001, inode=8),  # accepted from another's listener: inbound
        sock(ESTABLISHED, 5002, 3306, inode=8),  # the worker's own connection
        sock(ESTABLISHED, 5003, 3306, inode=77),  # not a target's
        sock(ESTABLISHED, 80, 5004),  # in the server's accept queue
        sock(CLOSE_WAIT, 80, 5005),  # likewise, its client already gone
        sock(ESTABLISHED, 443, 5006),  # in another's accept queue
        sock(5, 80, 5007),  # FIN_WAIT2 with no descriptor: closed by its owner, not queued
    ]
    listeners = listeners_of(sockets, owners)
    assert listeners == [FoundListener(sockets[0], SERVER)]
    found = connections_of(sockets, owners, [s for s in sockets if s.state == LISTEN],
                           listeners)
    assert [(f.sock.dport, f.owner.pid, f.inbound) for f in found] == [
        (5000, 10, True), (5001, 11, True), (3306, 11, False), (5004, 10, True),
        (5005, 10, True)]


# -- the monitor -----------------------------------------------------------------------------


class Table:
    class Key(int):
        pass

    def __init__(self) -> None:
        self.values: dict[int, object] = {}

    def Leaf(self, value: int) -> int:
        return value

    def __getitem__(self, key: int) -> object:
        return self.values.get(key, [0, 0])

    def __setitem__(self, key: int, value: object) -> None:
        self.values[key] = value

    def open_ring_buffer(self, callback: object) -> None:
        pass


class FakeSeeder:
    def __init__(self, batches: list[Batch]) -> None:
        self.batches = batches

    def take_ready(self) -> list[Batch]:
        out, self.batches = self.batches, []
        return out


def monitor_with(batch: Batch) -> TcpMonitor:
    tables = {n: Table() for n in (b"tcp_counters", b"tcp_config", b"tcp_events")}
    monitor = TcpMonitor(tables, btf=Path("/nonexistent"))
    monitor._seeder = FakeSeeder([batch])  # type: ignore[assignment]
    return monitor


def event(sk: int, old: int, new: int, s: DiagSocket, cookie: int = 0, direction: int = 2,
          ts: int = 500) -> _TcpEventC:
    e = _TcpEventC(ts=ts, sk=sk, start_ts=ts, pid=10, tid=12, comm=b"server", oldstate=old,
                   newstate=new, family=2, sport=s.sport, dport=s.dport, direction=direction,
                   cookie=cookie)
    e.saddr[:] = list(s.saddr.ljust(16, b"\0"))
    e.daddr[:] = list(s.daddr.ljust(16, b"\0"))
    return e


def test_a_batch_shows_each_connection_once_and_follows_it_by_cookie() -> None:
    held = sock(ESTABLISHED, 80, 5000, inode=6, cookie=41)
    followed = sock(ESTABLISHED, 80, 5001, inode=7, cookie=42)  # the kernel's since its start
    connecting = sock(SYN_SENT, 5002, 3306, inode=8, cookie=43)  # likewise, no port seen yet
    taken_up = sock(ESTABLISHED, 5003, 3306, inode=9, cookie=44)  # changed before the batch
    batch = Batch(300, 0, tuple(FoundConnection(s, SERVER, s.sport == 80)
                                for s in (held, followed, connecting, taken_up)), True)
    monitor = monitor_with(batch)
    monitor.add_event(event(1, 10, 3, followed))  # accepted after the listener was told
    monitor.add_event(event(2, 7, SYN_SENT, sock(SYN_SENT, 0, 3306), direction=1))
    monitor.add_event(event(3, 1, 4, taken_up, cookie=44, direction=1))  # FIN_WAIT1
    first = monitor.take_changed()
    assert [(c.dport, c.direction, c.state) for c in first] == [
        (5001, INBOUND, "SYN_RECV"), (3306, OUTBOUND, "SYN_SENT"),
        (3306, OUTBOUND, "FIN_WAIT1"), (5000, INBOUND, "ESTABLISHED")]
    found = first[-1]
    assert (found.ts_ns, found.pid, found.tid, found.comm, found.cgroup_id) == (
        300, 10, 10, "server", 7)
    assert monitor.live == 4
    # Its first change: the kernel took it up by its cookie; the same row goes on.
    monitor.add_event(event(9, 1, 8, held, cookie=41))
    monitor.add_event(event(9, 8, 7, held, cookie=41, ts=900))
    (closed,) = monitor.take_changed()
    assert (closed.conn_id, closed.state, closed.result, closed.end_ts_ns, closed.ts_ns) == (
        found.conn_id, "CLOSE", "ok", 900, 300)
    assert monitor.live == 3


def test_a_batch_not_followed_is_shown_all_the_same() -> None:
    held = sock(ESTABLISHED, 80, 5000, inode=6, cookie=41)
    monitor = monitor_with(Batch(300, 0, (FoundConnection(held, SERVER, True),), False))
    (c,) = monitor.take_changed()
    assert (c.daddr, c.dport, c.direction) == (socket.inet_ntoa(LO), 5000, INBOUND)
    assert monitor.live == 0  # nothing more will come of it
