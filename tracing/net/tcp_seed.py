"""Telling bpf/tcp.bpf.c about the sockets the targets held before the trace attached.

On a thread of its own (sock_diag dumps and /proc reads take time on a busy server; the
engine thread must not wait for them): (1) the targets' listeners are found and written to
tcp_listeners, so that every connection accepted from then on is attributed to them by the
kernel; (2) their connections are found (after (1): one accepted in between is in this dump)
and written to tcp_seeded by socket cookie, where the kernel picks each up at its next state
change; (3) they are handed to TcpMonitor as a batch, together with the tcp_events ring
buffer's producer position at that moment.

A connection the kernel followed from its start between (1) and (2) is in the dump as well.
Its start event was reserved in the ring buffer before the dump saw the socket, so once the
ring's consumer has passed the recorded position, TcpMonitor knows every such connection and
leaves it out of the batch: each connection is shown once.
"""

from __future__ import annotations

import mmap
import struct
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from tracing.net.tcp_attach import (
    FoundConnection,
    FoundListener,
    find_connections,
    find_listeners,
)

SEED_SECONDS = 30.0  # the whole look-up; what is found after is not seeded
_INBOUND, _OUTBOUND = 2, 1  # enum tcp_direction
_CFG_COOKIE, _CFG_SEEDED = 1, 2  # enum tcp_config_slot


@dataclass(frozen=True, slots=True)
class Batch:
    """Connections found at attach, ready once the ring's consumer reaches `position`."""

    ts_ns: int  # when they were found (CLOCK_MONOTONIC, as bpf_ktime_get_ns)
    position: int
    connections: tuple[FoundConnection, ...]
    followed: bool  # written to tcp_seeded: the kernel will send their changes


class RingPositions:
    """The producer and consumer positions of a BPF ring buffer, read from its mapping
    (read-only; the consumer is whoever drains it)."""

    def __init__(self, map_fd: int) -> None:
        page = mmap.PAGESIZE
        self._consumer = mmap.mmap(map_fd, page, mmap.MAP_SHARED, mmap.PROT_READ, offset=0)
        try:
            self._producer = mmap.mmap(map_fd, page, mmap.MAP_SHARED, mmap.PROT_READ,
                                       offset=page)
        except OSError:
            self._consumer.close()
            raise

    def producer(self) -> int:
        return int(struct.unpack_from("=Q", self._producer, 0)[0])

    def consumer(self) -> int:
        return int(struct.unpack_from("=Q", self._consumer, 0)[0])

    def close(self) -> None:
        self._consumer.close()
        self._producer.close()


class Seeder:
    """Finds the targets' sockets at attach (see the module docstring). `bpf` is the bcc
    object with tcp.bpf.c; `cookies` says whether the kernel can read socket cookies (the
    offset is in tcp_config): without, connections are shown but not followed."""

    def __init__(self, bpf: object, cookies: bool) -> None:
        self._bpf = bpf
        self._cookies = cookies
        self._lock = threading.Lock()
        self._batches: list[Batch] = []
        self._threads: list[threading.Thread] = []
        self._ring: RingPositions | None = None
        self.errors: list[str] = []  # what could not be looked up, for the user
        self.listeners = 0  # listeners told to the kernel

    def start(self, pids: Iterable[int]) -> threading.Thread:
        if self._ring is None:
            try:
                self._ring = RingPositions(self._bpf[b"tcp_events"].map_fd)  # type: ignore[index]
            except (OSError, ValueError) as err:  # then batches are taken as they come
                self.errors.append(f"tcp_events ring positions: {err}")
        thread = threading.Thread(target=self._run, args=(tuple(pids),), daemon=True,
                                  name="sikte-tcp-attach")
        self._threads.append(thread)
        thread.start()
        return thread

    def _run(self, pids: tuple[int, ...]) -> None:
        try:
            deadline = time.monotonic() + SEED_SECONDS
            step = find_listeners(pids)
            self._tell_listeners(step.found.listeners)
            found = find_connections(step) if time.monotonic() < deadline else step.found
            followed = self._tell_connections(found.connections, time.monotonic_ns())
            position = self._ring.producer() if self._ring is not None else 0
            batch = Batch(time.monotonic_ns(), position, tuple(found.connections), followed)
            with self._lock:
                self._batches.append(batch)
                self.errors += found.errors
        except Exception as err:  # bcc raises bare Exception: kept for the user, not raised
            with self._lock:        # on a thread nobody joins
                self.errors.append(f"TCP sockets at attach: {err}")

    def _tell_listeners(self, listeners: list[FoundListener]) -> None:
        table = self._bpf[b"tcp_listeners"]  # type: ignore[index]
        for f in listeners:
            key = table.Key()
            key.family = 10 if f.sock.family == 6 else 2
            key.port = f.sock.sport
            for i, b in enumerate(f.sock.saddr):
                key.addr[i] = b
            leaf = table.Leaf()
            _fill_owner(leaf.owner, f)
            leaf.sk = 0
            leaf.cookie = f.sock.cookie if self._cookies else 0
            table[key] = leaf
            self.listeners += 1

    def _tell_connections(self, connections: list[FoundConnection], ts_ns: int) -> bool:
        if not self._cookies:
            return False
        table = self._bpf[b"tcp_seeded"]  # type: ignore[index]
        for f in connections:
            if not f.sock.cookie:
                continue
            leaf = table.Leaf()
            _fill_owner(leaf.owner, f)
            leaf.start_ts = ts_ns
            leaf.direction = _INBOUND if f.inbound else _OUTBOUND
            leaf.cookie = f.sock.cookie
            table[table.Key(f.sock.cookie)] = leaf
        config = self._bpf[b"tcp_config"]  # type: ignore[index]
        config[config.Key(_CFG_SEEDED)] = config.Leaf(1)
        return True

    def take_ready(self) -> list[Batch]:
        """The batches whose ring position the consumer has passed (all of them when the
        positions cannot be read)."""
        with self._lock:
            if not self._batches:
                return []
            consumed = self._ring.consumer() if self._ring is not None else None
            ready = [b for b in self._batches if consumed is None or consumed >= b.position]
            self._batches = [b for b in self._batches if b not in ready]
            return ready

    def wait(self, timeout: float) -> bool:
        """Wait for the look-ups started so far; True when they are done (tests)."""
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def close(self) -> None:
        if self._ring is not None:
            self._ring.close()
            self._ring = None


def _fill_owner(owner: object, f: FoundListener | FoundConnection) -> None:
    o = f.owner
    owner.cgroup_id = o.cgroup_id  # type: ignore[attr-defined]
    owner.pid = o.pid  # type: ignore[attr-defined]
    owner.tid = o.pid  # type: ignore[attr-defined]  # which thread is not known: the main one
    owner.comm = o.comm  # type: ignore[attr-defined]
