"""TCP sockets held before the trace attaches (`--pid` on a running server), on the real kernel
through the engine's Tracer: bpf/tcp.bpf.c with tracing/net/tcp_attach.py and tcp_seed.py.

A server (/usr/bin/python3) listens on 127.0.0.1 and ::1, has accepted one connection and
made one of its own, all before the trace attaches by pid. Then N clients connect to each
listener: exactly N inbound connections per family are the server's, and the two connections
from before the trace appear as existing at attach and their closes are seen."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tests.helpers import wait_until
from tracing.engine import tracefs
from tracing.engine.tracer import TraceConfig, Tracer
from tracing.model.connections import INBOUND, OUTBOUND, RESULT_OK, Connection, ConnectionSet
from tracing.model.stats import Snapshot
from tracing.net import tcp_seed

pytestmark = pytest.mark.ebpf

N = 20
PYTHON = "/usr/bin/python3"

# Listens on both families, connects to the test's upstream, accepts the test's first
# connection (all before the trace), prints its ports; then serves n connections on each
# listener (each read to EOF and closed), holds the first one until the test closes it, and
# closes its own connection when told (a line on stdin).
SERVER = r"""
import socket, sys, threading
n, upstream = int(sys.argv[1]), int(sys.argv[2])
listeners = []
for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    s = socket.socket(family)
    s.bind((host, 0))
    s.listen(64)
    listeners.append(s)
out = socket.create_connection(("127.0.0.1", upstream))
print(listeners[0].getsockname()[1], listeners[1].getsockname()[1], out.getsockname()[1],
      flush=True)
old, _ = listeners[0].accept()
print("accepted", flush=True)
def drain(c):
    while c.recv(100):
        pass
    c.close()
def serve(s):
    for _ in range(n):
        drain(s.accept()[0])
threads = [threading.Thread(target=serve, args=(s,)) for s in listeners]
threads.append(threading.Thread(target=drain, args=(old,)))
[t.start() for t in threads]
sys.stdin.readline()
out.close()
[t.join() for t in threads]
sys.stdin.readline()
"""


class Collected:
    """The connections of every snapshot, at their newest state (from the worker thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._set = ConnectionSet()

    def on_snapshot(self, snapshot: Snapshot) -> None:
        with self._lock:
            self._set.update(snapshot.connections)

    def rows(self) -> list[Connection]:
        with self._lock:
            return sorted(self._set, key=lambda c: c.conn_id)

    def wait(self, done: Callable[[list[Connection]], bool], timeout: float = 30.0
             ) -> list[Connection]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done(self.rows()):
                return self.rows()
            time.sleep(0.05)
        pytest.fail(f"not seen in {timeout} s: {self.rows()}")


def talk(host: str, port: int) -> None:
    c = socket.create_connection((host, port))
    c.shutdown(socket.SHUT_WR)
    while c.recv(100):
        pass
    c.close()


class Upstream:
    """An untraced listener (in this process) that holds the one connection it accepts
    until the other side closes it, however long the trace takes to load."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._thread = threading.Thread(target=self._hold, daemon=True)
        self._thread.start()

    def _hold(self) -> None:
        conn, _ = self.sock.accept()
        while conn.recv(100):
            pass
        conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    up = Upstream()
    yield up
    up.close()


def test_a_server_attached_by_pid_has_its_inbound_and_earlier_connections(
        upstream: Upstream) -> None:
    if tracefs.ensure_mounted() is None or not tracefs.has_event("sock", "inet_sock_set_state"):
        pytest.skip("no sock:inet_sock_set_state tracepoint")
    server = subprocess.Popen([PYTHON, "-c", SERVER, str(N), str(upstream.port)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert server.stdin is not None and server.stdout is not None
    collected = Collected()
    tracer: Tracer | None = None
    try:
        port4, port6, out_port = map(int, server.stdout.readline().split())
        before = socket.create_connection(("127.0.0.1", port4))
        assert server.stdout.readline().strip() == "accepted"
        before_port = before.getsockname()[1]

        tracer = Tracer(TraceConfig(pids=(server.pid,), sample_hz=0, docker=False),
                        on_snapshot=collected.on_snapshot)
        tracer.start()

        # Both connections from before the trace, as they are now.
        def earlier(rows: list[Connection]) -> bool:
            return len(rows) == 2
        rows = collected.wait(earlier)
        by_direction = {c.direction: c for c in rows}
        held, own = by_direction[INBOUND], by_direction[OUTBOUND]
        assert (held.pid, held.family, held.sport, held.dport, held.state, held.ended) == (
            server.pid, 4, port4, before_port, "ESTABLISHED", False)
        assert (own.pid, own.family, own.sport, own.dport, own.state, own.ended) == (
            server.pid, 4, out_port, upstream.port, "ESTABLISHED", False)
        assert held.comm == own.comm == "python3"

        for host, port in (("127.0.0.1", port4), ("::1", port6)):
            for _ in range(N):
                talk(host, port)
        before.close()  # the server reads EOF and closes the connection it had accepted
        server.stdin.write("close\n")  # and its own
        server.stdin.flush()

        rows = collected.wait(lambda rows: len(rows) >= 2 + 2 * N and all(
            c.ended for c in rows))
        tracer.stop()
        assert tracer.join(30)
        assert tracer.error is None
        rows = collected.rows()
        server.stdin.close()
        assert server.wait(30) == 0
    finally:
        if tracer is not None:
            tracer.stop()
            tracer.join(30)
        if server.poll() is None:  # a failed test: it may wait for clients that never came
            server.kill()
            server.wait()
        server.stdout.close()

    assert len(rows) == 2 + 2 * N
    assert {c.pid for c in rows} == {server.pid}
    assert all(c.ended and c.result == RESULT_OK and c.state == "CLOSE" for c in rows)
    inbound4 = [c for c in rows if c.direction == INBOUND and c.family == 4
                and c.conn_id != held.conn_id]
    inbound6 = [c for c in rows if c.direction == INBOUND and c.family == 6]
    assert len(inbound4) == N and len(inbound6) == N
    assert {(c.saddr, c.sport, c.daddr) for c in inbound4} == {
        ("127.0.0.1", port4, "127.0.0.1")}
    assert {(c.saddr, c.sport, c.daddr) for c in inbound6} == {("::1", port6, "::1")}
    assert len({c.dport for c in inbound4}) == N and len({c.dport for c in inbound6}) == N
    # The two from before the trace: the same rows, now closed, started before the others.
    final = {c.conn_id: c for c in rows}
    assert (final[held.conn_id].direction, final[held.conn_id].dport) == (INBOUND, before_port)
    assert (final[own.conn_id].direction, final[own.conn_id].dport) == (OUTBOUND,
                                                                       upstream.port)
    assert max(held.ts_ns, own.ts_ns) <= min(c.ts_ns for c in inbound4 + inbound6)


def test_a_failed_lookup_at_attach_is_said_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the sockets of a --pid target cannot be looked up, the user is told, once."""
    if tracefs.ensure_mounted() is None or not tracefs.has_event("sock", "inet_sock_set_state"):
        pytest.skip("no sock:inet_sock_set_state tracepoint")

    def refused(_pids: object) -> object:
        raise OSError(13, "sock_diag refused")

    monkeypatch.setattr(tcp_seed, "find_listeners", refused)
    notices: list[str] = []
    sleeper = subprocess.Popen(["/bin/sleep", "60"])
    tracer = Tracer(TraceConfig(pids=(sleeper.pid,), sample_hz=0, docker=False),
                    on_snapshot=lambda s: notices.extend(s.notices))
    try:
        tracer.start()
        wait_until(lambda: notices, "the notice")
        # Later snapshots do not say it again.
        seq = tracer.last_snapshot.seq if tracer.last_snapshot else 0
        wait_until(lambda: tracer.last_snapshot and tracer.last_snapshot.seq >= seq + 3,
                   "three more snapshots")
    finally:
        tracer.stop()
        tracer.join(30)
        sleeper.kill()
        sleeper.wait()
    assert notices == ["TCP sockets at attach: [Errno 13] sock_diag refused"]
