"""The TCP sockets of a network namespace, from the kernel's sock_diag netlink interface
(inet_diag, NETLINK_SOCK_DIAG): what `ss -tan` lists, with each socket's inode and cookie.

The inode ties a socket to the processes holding it (their /proc/PID/fd links read
`socket:[INODE]`); the cookie is a number the kernel gives the socket for its lifetime (the
dump makes one for each socket it reports), which bpf/tcp.bpf.c reads back to recognise the
socket at its next state change. The dump has a deadline and a bound on the sockets kept.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from dataclasses import dataclass

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST, _NLM_F_DUMP = 0x1, 0x300
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_NLMSG_HDR = struct.Struct("=IHHII")
_REQ = struct.Struct("=BBBBI2H16s16sI8s")  # inet_diag_req_v2
_MSG = struct.Struct("=BBBB2s2s16s16sIIIIIIII")  # inet_diag_msg (port fields big-endian)
assert _REQ.size == 56 and _MSG.size == 72

# include/net/tcp_states.h
ESTABLISHED, SYN_SENT, SYN_RECV, FIN_WAIT1, FIN_WAIT2 = 1, 2, 3, 4, 5
TIME_WAIT, CLOSE, CLOSE_WAIT, LAST_ACK, LISTEN, CLOSING = 6, 7, 8, 9, 10, 11
# Every state a socket with an owner can be in: not TIME_WAIT (a leftover with no owner and
# no state changes ahead), CLOSE (never connected, or gone) or the request mini-sockets.
OWNED_STATES = (ESTABLISHED, SYN_SENT, SYN_RECV, FIN_WAIT1, FIN_WAIT2, CLOSE_WAIT, LAST_ACK,
                LISTEN, CLOSING)

MAX_SOCKETS = 1_000_000  # per namespace and family: beyond, the rest is not looked at
DUMP_SECONDS = 5.0
_RECV_BYTES = 1 << 16


@dataclass(frozen=True, slots=True)
class DiagSocket:
    """One TCP socket as sock_diag reports it."""

    family: int  # 4 or 6
    state: int  # include/net/tcp_states.h
    saddr: bytes  # 4 bytes (IPv4) or 16
    sport: int  # host order
    daddr: bytes
    dport: int
    inode: int  # 0: held by no descriptor (in an accept queue, or closed by its owner)
    cookie: int  # 0: none
    uid: int


class DiagError(OSError):
    """The kernel refused the dump (no sock_diag, not permitted) or it took too long."""


def dump_tcp(family: int, *, sock: socket.socket | None = None,
             states: tuple[int, ...] = OWNED_STATES, seconds: float = DUMP_SECONDS,
             limit: int = MAX_SOCKETS) -> list[DiagSocket]:
    """Every TCP socket of `family` (4 or 6) in the namespace of `sock` (a NETLINK_SOCK_DIAG
    socket; None: a new one in ours) in one of `states`. Raises DiagError."""
    own = sock is None
    if sock is None:
        sock = open_diag_socket()
    try:
        return _dump(sock, family, states, time.monotonic() + seconds, limit)
    finally:
        if own:
            sock.close()


def open_diag_socket() -> socket.socket:
    try:
        return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                             NETLINK_SOCK_DIAG)
    except OSError as err:
        raise DiagError(err.errno, f"sock_diag: {err.strerror}") from err


def _dump(sock: socket.socket, family: int, states: tuple[int, ...], deadline: float,
          limit: int) -> list[DiagSocket]:
    af = socket.AF_INET6 if family == 6 else socket.AF_INET
    mask = sum(1 << s for s in states)
    req = _REQ.pack(af, socket.IPPROTO_TCP, 0, 0, mask, 0, 0, b"", b"", 0, b"")
    seq = int(time.monotonic_ns() & 0x7FFFFFFF)
    header = _NLMSG_HDR.pack(_NLMSG_HDR.size + _REQ.size, SOCK_DIAG_BY_FAMILY,
                             _NLM_F_REQUEST | _NLM_F_DUMP, seq, 0)
    sock.sendto(header + req, (0, 0))
    found: list[DiagSocket] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise DiagError(0, "sock_diag: no answer in time")
        sock.settimeout(left)
        try:
            data = sock.recv(_RECV_BYTES)
        except TimeoutError as err:
            raise DiagError(0, "sock_diag: no answer in time") from err
        except OSError as err:
            raise DiagError(err.errno, f"sock_diag: {err.strerror}") from err
        if not data:
            raise DiagError(0, "sock_diag: the dump ended early")
        if _parse(data, seq, family, found, limit):
            return found


def _parse(data: bytes, seq: int, family: int, found: list[DiagSocket], limit: int) -> bool:
    """The messages of one datagram into `found`; True at the end of the dump."""
    pos = 0
    while pos + _NLMSG_HDR.size <= len(data):
        length, kind, _flags, msg_seq, _pid = _NLMSG_HDR.unpack_from(data, pos)
        if length < _NLMSG_HDR.size or pos + length > len(data):
            raise DiagError(0, "sock_diag: a malformed message")
        body = pos + _NLMSG_HDR.size
        if msg_seq == seq:
            if kind == _NLMSG_DONE:
                return True
            if kind == _NLMSG_ERROR:
                (code,) = struct.unpack_from("=i", data, body)
                raise DiagError(-code, f"sock_diag: {_strerror(-code)}")
            if kind == SOCK_DIAG_BY_FAMILY and length - _NLMSG_HDR.size >= _MSG.size \
                    and len(found) < limit:
                found.append(_socket(data, body, family))
        pos += (length + 3) & ~3
    return False


def _socket(data: bytes, pos: int, family: int) -> DiagSocket:
    (_af, state, _timer, _retrans, sport, dport, src, dst, _ifindex, cookie_lo, cookie_hi,
     _expires, _rqueue, _wqueue, uid, inode) = _MSG.unpack_from(data, pos)
    size = 16 if family == 6 else 4
    return DiagSocket(family=family, state=state, saddr=src[:size],
                      sport=int.from_bytes(sport, "big"), daddr=dst[:size],
                      dport=int.from_bytes(dport, "big"), inode=inode,
                      cookie=cookie_lo | cookie_hi << 32, uid=uid)


def _strerror(code: int) -> str:
    try:
        return os.strerror(code)
    except ValueError:
        return f"error {code}"
