"""TCP connection tracing: bpf/tcp.bpf.c on the real kernel through tracing/net/tcp_monitor.py.

Loopback servers on 127.0.0.1 and ::1, a traced client process that connects an exact number
of times, and the other way round (a traced server accepting); each test checks the exact
number of rows, their ports, direction and result. The tests at the end feed the monitor
events by hand (no kernel) and check the BTF reader on a synthetic BTF blob."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import platform
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from syscall_tables import canonical_arch
from tests.cgroup_helpers import made_cgroup
from tracing.engine import tracefs
from tracing.model.connections import INBOUND, OUTBOUND, TCP_STATES, Connection, ConnectionSet
from tracing.net.containers import ContainerInfo, ContainerResolver
from tracing.query.connection_filter import TCP_STATE_NAMES

N = 7

# A traced client: waits for a line on stdin (by then it is a target, and maybe in its
# cgroup), runs the plan, prints what it saw as JSON.
CLIENT = r"""
import json, socket, sys
plan = json.loads(sys.argv[1])
sys.stdin.readline()
out = {"ports": [], "refused": 0, "reset": 0, "timeout": 0,
       "comm": open("/proc/self/comm").read().strip()}
def talk(host, port):
    s = socket.create_connection((host, port))
    out["ports"].append([host, s.getsockname()[1]])
    s.shutdown(socket.SHUT_WR)  # FIN; the server closes at EOF; then this side is done
    while s.recv(100):
        pass
    s.close()
for host, port, n in plan.get("connect", []):
    for _ in range(n):
        talk(host, port)
for host, port in plan.get("refused", []):
    try:
        socket.create_connection((host, port))
    except ConnectionRefusedError:
        out["refused"] += 1
for host, port in plan.get("reset", []):
    s = socket.create_connection((host, port))
    try:
        s.recv(1)
    except ConnectionResetError:
        out["reset"] += 1
for host, port in plan.get("timeout", []):
    keep = socket.create_connection((host, port))  # fills the accept queue (backlog 0)
    s = socket.socket()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT, 1)  # give up after ~3 s
    try:
        s.connect((host, port))
    except TimeoutError:
        out["timeout"] += 1
print(json.dumps(out), flush=True)
"""

# A traced server: waits for a line, listens (listen() is where its ownership is remembered)
# on every IPv4 address (a wildcard listener) and on ::1 (an exact one), prints its ports,
# serves n connections on each, then exits.
SERVER = r"""
import socket, sys, threading
n = int(sys.argv[1])
sys.stdin.readline()
listeners = []
for family, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::1")):
    s = socket.socket(family)
    s.bind((host, 0))
    s.listen()
    listeners.append(s)
print(" ".join(str(s.getsockname()[1]) for s in listeners), flush=True)
def serve(s):
    for _ in range(n):
        c, _ = s.accept()
        while c.recv(100):
            pass
        c.close()
threads = [threading.Thread(target=serve, args=(s,)) for s in listeners]
[t.start() for t in threads]
[t.join() for t in threads]
"""


# -- helpers ---------------------------------------------------------------------------------


class Loopback:
    """An untraced server (in this process) on one address: each connection is read to EOF
    and closed, or with `reset`, closed at once with a RST; `backlog=0` and no accepting
    makes a full accept queue."""

    def __init__(self, host: str, reset: bool = False, accept: bool = True,
                 backlog: int = 16) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family)
        self.sock.bind((host, 0))
        self.sock.listen(backlog)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self._reset = reset
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        if accept:
            self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            if self._reset:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                conn.settimeout(5)
                with contextlib.suppress(OSError):
                    while conn.recv(100):
                        pass
            conn.close()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.sock.close()


def closed_port(host: str = "127.0.0.1") -> int:
    s = socket.socket()
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_held(code: str, *args: str) -> subprocess.Popen:
    """A Python process that waits for a line on stdin before it does anything."""
    return subprocess.Popen([sys.executable, "-c", code, *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)


def release(proc: subprocess.Popen) -> None:
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()


class Traced:
    """The loaded program with tcp.bpf.c and its TcpMonitor, shared by the tests."""

    def __init__(self) -> None:
        from tracing.engine.program import EngineOptions, SyscallProgram
        from tracing.model.selection import EventSelection

        self.resolver = ContainerResolver(docker=False)
        self.program = SyscallProgram(
            EngineOptions(tcp=True, sample_hz=0, events=EventSelection(failed=False)),
            canonical_arch(platform.machine()), containers=self.resolver)
        assert self.program.tcp is not None  # the engine made the TcpMonitor
        self.monitor = self.program.tcp
        assert self.monitor.resolver is self.resolver

    def collect(self, done: Callable[[list[Connection]], bool],
                timeout: float = 15.0) -> list[Connection]:
        """Every connection seen until `done` says so (then a moment more, so that extra
        rows would show), at its newest state."""
        seen = ConnectionSet()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not done(list(seen)):
            self.program.poll_until(time.monotonic() + 0.05)
            seen.update(self.program.read_connections())
        self.program.poll_until(time.monotonic() + 0.3)
        seen.update(self.program.read_connections())
        self.program.take_events()  # the syscall side's, not looked at here
        self.program.take_proc_events()
        return sorted(seen, key=lambda c: c.conn_id)


@pytest.fixture(scope="module")
def traced() -> Iterator[Traced]:
    t = Traced()
    yield t
    t.program.close()


def ended(count: int) -> Callable[[list[Connection]], bool]:
    return lambda rows: len(rows) >= count and all(c.ended for c in rows)


def finish(proc: subprocess.Popen) -> dict:
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    return json.loads(out) if out.strip().startswith("{") else {"raw": out}


# -- the kernel ------------------------------------------------------------------------------


@pytest.mark.ebpf
def test_state_names_are_the_kernels() -> None:
    """The numbers and names the views and filters use, against the tracepoint's own."""
    root = tracefs.ensure_mounted()
    assert root is not None
    text = (root / "events/sock/inet_sock_set_state/format").read_text()
    kernel = {int(n): name for n, name in re.findall(r'\{ (\d+), "TCP_([A-Z_0-9]+)" \}', text)}
    assert kernel == TCP_STATES
    assert frozenset(kernel.values()) == TCP_STATE_NAMES


@pytest.mark.ebpf
def test_outbound_connects_and_a_refused_one(traced: Traced) -> None:
    v4, v6 = Loopback("127.0.0.1"), Loopback("::1")
    refused_port = closed_port()
    plan = {"connect": [["127.0.0.1", v4.port, N], ["::1", v6.port, N]],
            "refused": [["127.0.0.1", refused_port]]}
    client = start_held(CLIENT, json.dumps(plan))
    try:
        traced.program.set_target(client.pid)
        release(client)
        out = finish(client)
        rows = traced.collect(ended(2 * N + 1))
    finally:
        traced.program.set_target(client.pid, False)
        v4.close()
        v6.close()
    assert out["refused"] == 1
    assert {c.pid for c in rows} == {client.pid}  # the untraced servers' sides are not here
    assert {(c.direction, c.comm) for c in rows} == {(OUTBOUND, out["comm"])}
    assert [c for c in rows if not c.ended] == []
    for family, host, server in ((4, "127.0.0.1", v4), (6, "::1", v6)):
        ok = [c for c in rows if c.family == family and c.result == "ok"]
        assert len(ok) == N
        assert {c.dport for c in ok} == {server.port}
        assert {c.daddr for c in ok} == {host} and {c.saddr for c in ok} == {host}
        assert sorted(c.sport for c in ok) == sorted(p for h, p in out["ports"] if h == host)
        assert {c.state for c in ok} == {"CLOSE"}
        assert all(c.end_ts_ns > c.ts_ns for c in ok)
    refused = [c for c in rows if c.result == "refused"]
    assert len(refused) == 1
    assert (refused[0].dport, refused[0].family, refused[0].error) == (
        refused_port, 4, "ECONNREFUSED")
    assert len(rows) == 2 * N + 1
    assert traced.monitor.drops() == 0


@pytest.mark.ebpf
def test_accepted_connections_are_inbound_to_the_traced_server(traced: Traced) -> None:
    server = start_held(SERVER, str(N))
    try:
        traced.program.set_target(server.pid)  # before listen(): that is when it is seen
        release(server)
        assert server.stdout is not None
        v4_port, v6_port = map(int, server.stdout.readline().split())
        local_ports: dict[int, list[int]] = {4: [], 6: []}
        for family, host, port in ((4, "127.0.0.1", v4_port), (6, "::1", v6_port)):
            for _ in range(N):
                with socket.create_connection((host, port)) as s:
                    local_ports[family].append(s.getsockname()[1])
                    s.shutdown(socket.SHUT_WR)
                    while s.recv(100):
                        pass
        assert server.wait(timeout=30) == 0
        rows = traced.collect(ended(2 * N))
    finally:
        traced.program.set_target(server.pid, False)
        if server.poll() is None:
            server.kill()
            server.wait()
    assert {c.pid for c in rows} == {server.pid}  # this (untraced) client's side is not
    assert len(rows) == 2 * N
    for family, host, port in ((4, "127.0.0.1", v4_port), (6, "::1", v6_port)):
        mine = [c for c in rows if c.family == family]
        assert len(mine) == N
        assert {c.direction for c in mine} == {INBOUND}
        assert {c.sport for c in mine} == {port}
        assert sorted(c.dport for c in mine) == sorted(local_ports[family])
        assert {c.daddr for c in mine} == {host}
        assert {(c.result, c.state) for c in mine} == {("ok", "CLOSE")}


@pytest.mark.ebpf
def test_reset_and_timeout_have_their_reasons(traced: Traced) -> None:
    resetting = Loopback("127.0.0.1", reset=True)
    full = Loopback("127.0.0.1", accept=False, backlog=0)
    plan = {"reset": [["127.0.0.1", resetting.port]], "timeout": [["127.0.0.1", full.port]]}
    client = start_held(CLIENT, json.dumps(plan))
    try:
        traced.program.set_target(client.pid)
        release(client)
        out = finish(client)
        # The connection left in the accept queue ends (reset) when the listener closes.
        resetting.close()
        full.close()
        rows = traced.collect(ended(3))
    finally:
        traced.program.set_target(client.pid, False)
        resetting.close()
        full.close()
    assert (out["reset"], out["timeout"]) == (1, 1)
    assert len(rows) == 3  # the reset one, the one in the queue, the timed out one
    reset = [c for c in rows if c.dport == resetting.port]
    assert [(c.result, c.error, c.state) for c in reset] == [("reset", "ECONNRESET", "CLOSE")]
    timed_out = [c for c in rows if c.result == "timeout"]
    assert [(c.dport, c.error) for c in timed_out] == [(full.port, "ETIMEDOUT")]
    # ~3 s of SYN retries (1 s, then 2 s) with TCP_SYNCNT=1.
    assert timed_out[0].end_ts_ns - timed_out[0].ts_ns >= 2_500_000_000


@pytest.fixture
def cgroup_dir() -> Iterator[Path]:
    with made_cgroup(f"sikte-test-tcp-{os.getpid()}") as path:
        yield path


@pytest.mark.ebpf
def test_rows_carry_the_owner_cgroup(traced: Traced, cgroup_dir: Path) -> None:
    server = Loopback("127.0.0.1")
    client = start_held(CLIENT, json.dumps({"connect": [["127.0.0.1", server.port, 3]]}))
    try:
        (cgroup_dir / "cgroup.procs").write_text(str(client.pid))
        traced.program.set_target(client.pid)
        relative = "/" + cgroup_dir.name
        assert traced.resolver.for_pid(client.pid).path == relative
        release(client)
        finish(client)
        # A cgroup newer than the resolver's last walk of the tree is found at its next
        # walk (at most one a second): the rows come again then.
        rows = traced.collect(lambda rows: ended(3)(rows) and all(c.cgroup_path for c in rows))
    finally:
        traced.program.set_target(client.pid, False)
        server.close()
    cgroup_id = os.stat(cgroup_dir).st_ino
    assert len(rows) == 3
    assert {c.cgroup_id for c in rows} == {cgroup_id}
    assert {(c.cgroup_path, c.container_id, c.container_runtime) for c in rows} == {
        (relative, "", "")}
    assert traced.resolver.lookup(cgroup_id).path == relative


# -- the monitor without a kernel ------------------------------------------------------------


class FakeTable:
    """Enough of a bcc table for TcpMonitor: counters, the config array, a ring buffer."""

    class Key(int):
        pass

    def __init__(self) -> None:
        self.values: dict[int, object] = {}
        self.callback = None

    def Leaf(self, value: int) -> int:  # bcc's name
        return value

    def __getitem__(self, key: int) -> object:
        return self.values.get(key, [0, 0])

    def __setitem__(self, key: int, value: object) -> None:
        self.values[key] = value

    def open_ring_buffer(self, callback) -> None:
        self.callback = callback


def fake_monitor(btf: Path, **kwargs) -> tuple[object, dict[bytes, FakeTable]]:
    from tracing.net.tcp_monitor import TcpMonitor

    tables = {name: FakeTable() for name in (b"tcp_counters", b"tcp_config", b"tcp_events")}
    return TcpMonitor(tables, btf=btf, **kwargs), tables


def event(sk: int, old: int, new: int, *, ts: int, sport: int = 0, dport: int = 80,
          err: int = 0, family: int = 2, direction: int = 1, cgroup_id: int = 5):
    from tracing.net.tcp_monitor import _TcpEventC

    e = _TcpEventC(ts=ts, sk=sk, start_ts=100, cgroup_id=cgroup_id, pid=42, tid=43, comm=b"curl",
                   oldstate=old, newstate=new, sk_err=err, family=family, sport=sport,
                   dport=dport, direction=direction)
    addr = bytes([10, 0, 0, 1]) + bytes(12) if family == 2 else socket.inet_pton(
        socket.AF_INET6, "::1")
    e.saddr[:] = list(addr)
    e.daddr[:] = list(addr)
    return e


def btf_blob(member_offset_bits: int) -> bytes:
    """A BTF blob with an int, a struct "other" and struct "sock" { int a; int sk_err; }."""
    strings = b"\0int\0other\0sock\0a\0sk_err\0"
    off = {name: strings.index(b"\0" + name.encode() + b"\0") + 1
           for name in ("int", "other", "sock", "a", "sk_err")}
    types = struct.pack("<III", off["int"], 1 << 24, 4) + struct.pack("<I", 32)
    types += struct.pack("<III", off["other"], (4 << 24) | 1, 4)
    types += struct.pack("<III", off["sk_err"], 1, 0)  # a member named sk_err elsewhere
    types += struct.pack("<III", off["sock"], (4 << 24) | 2, 8)
    types += struct.pack("<III", off["a"], 1, 0)
    types += struct.pack("<III", off["sk_err"], 1, member_offset_bits)
    header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    return header + types + strings


def test_btf_member_offset_reads_the_struct_layout(tmp_path: Path) -> None:
    from tracing.net.tcp_monitor import btf_member_offset

    blob = tmp_path / "vmlinux"
    blob.write_bytes(btf_blob(284 * 8))
    assert btf_member_offset("sock", "sk_err", blob) == 284
    assert btf_member_offset("sock", "missing", blob) is None
    assert btf_member_offset("nosuch", "sk_err", blob) is None
    assert btf_member_offset("sock", "sk_err", tmp_path / "absent") is None
    (tmp_path / "junk").write_bytes(b"\0" * 40)
    assert btf_member_offset("sock", "sk_err", tmp_path / "junk") is None


def test_monitor_follows_a_socket_through_its_states(tmp_path: Path) -> None:
    blob = tmp_path / "vmlinux"
    blob.write_bytes(btf_blob(300 * 8))
    monitor, tables = fake_monitor(blob)
    assert tables[b"tcp_config"].values == {0: 300}  # the kernel reads sk_err there
    monitor.add_event(event(0xA, 7, 2, ts=100))  # CLOSE -> SYN_SENT: no local port yet
    first = monitor.take_changed()
    assert [(c.state, c.sport, c.dport, c.direction, c.comm) for c in first] == [
        ("SYN_SENT", 0, 80, OUTBOUND, "curl")]
    monitor.add_event(event(0xA, 2, 1, ts=200, sport=5000))
    monitor.add_event(event(0xA, 1, 4, ts=300, sport=5000))
    (c,) = monitor.take_changed()  # two changes, one row at its newest state
    assert (c.conn_id, c.state, c.sport, c.saddr, c.ended) == (
        first[0].conn_id, "FIN_WAIT1", 5000, "10.0.0.1", False)
    monitor.add_event(event(0xA, 4, 7, ts=400, sport=5000))
    (c,) = monitor.take_changed()
    assert (c.state, c.result, c.error, c.end_ts_ns, c.ts_ns) == ("CLOSE", "ok", "", 400, 100)
    assert monitor.take_changed() == () and monitor.live == 0
    # The same socket address again is a new connection; refused, on IPv6.
    monitor.add_event(event(0xA, 7, 2, ts=500, family=10))
    monitor.add_event(event(0xA, 2, 7, ts=600, family=10, err=errno.ECONNREFUSED))
    (c,) = monitor.take_changed()
    assert (c.conn_id, c.family, c.daddr, c.result, c.error) == (
        first[0].conn_id + 1, 6, "::1", "refused", "ECONNREFUSED")
    assert c.remote == "[::1]:80"


def test_monitor_ring_buffer_callback_and_inbound_without_a_start(tmp_path: Path) -> None:
    import ctypes

    monitor, tables = fake_monitor(tmp_path / "no-btf")
    assert tables[b"tcp_config"].values == {}  # no BTF: the kernel reports no reasons
    # Its start event was lost: the first event seen still makes the row.
    e = event(0xB, 1, 8, ts=900, sport=8080, dport=41000, direction=2)
    tables[b"tcp_events"].callback(0, ctypes.addressof(e), ctypes.sizeof(e))
    (c,) = monitor.take_changed()
    assert (c.direction, c.state, c.sport, c.dport, c.ts_ns) == (INBOUND, "CLOSE_WAIT", 8080,
                                                                 41000, 100)
    tables[b"tcp_counters"].values = {0: [2, 3], 1: [10, 0]}  # per-CPU values
    assert (monitor.drops(), monitor.sent()) == (5, 10)


@pytest.mark.parametrize(("err", "established", "expected"), [
    (0, True, ("ok", "")),
    (0, False, ("failed", "")),  # given up in SYN_SENT
    (-1, True, ("ok", "")),  # reason unknown (no BTF)
    (errno.ECONNREFUSED, False, ("refused", "ECONNREFUSED")),
    (errno.ETIMEDOUT, False, ("timeout", "ETIMEDOUT")),
    (errno.ETIMEDOUT, True, ("timeout", "ETIMEDOUT")),
    (errno.ECONNRESET, True, ("reset", "ECONNRESET")),
    (errno.EPIPE, True, ("reset", "EPIPE")),
    (errno.EHOSTUNREACH, False, ("unreachable", "EHOSTUNREACH")),
    (errno.ENETUNREACH, False, ("unreachable", "ENETUNREACH")),
    (errno.EPROTO, False, ("failed", "EPROTO")),
])
def test_close_result(err: int, established: bool, expected: tuple[str, str]) -> None:
    from tracing.net.tcp_monitor import close_result

    assert close_result(err, established) == expected


class LateResolver:
    """Knows cgroup 5 only once told (a cgroup made after the last walk of the tree)."""

    def __init__(self) -> None:
        self.known: dict[int, ContainerInfo] = {}
        self.lookups = 0

    def lookup(self, cgroup_id: int) -> ContainerInfo:
        self.lookups += 1
        return self.known.get(cgroup_id, ContainerInfo())


def test_monitor_sends_a_connection_again_once_its_cgroup_is_known(tmp_path: Path) -> None:
    resolver, now = LateResolver(), [0.0]
    monitor, _ = fake_monitor(tmp_path / "no-btf", resolver=resolver, clock=lambda: now[0])
    monitor.add_event(event(0xC, 7, 2, ts=100))
    monitor.add_event(event(0xC, 2, 7, ts=200, err=errno.ECONNREFUSED))
    (c,) = monitor.take_changed()
    assert (c.cgroup_path, c.result) == ("", "refused")
    assert monitor.take_changed() == ()  # still unknown: nothing new to say
    resolver.known[5] = ContainerInfo(f"/system.slice/docker-{'a' * 64}.scope", "a" * 64, "web",
                                      "docker")
    (again,) = monitor.take_changed()
    assert (again.conn_id, again.result, again.container_name, again.container_runtime) == (
        c.conn_id, "refused", "web", "docker")
    assert monitor.take_changed() == ()
    # A cgroup that never shows up is given up after RESOLVE_RETRY_S.
    from tracing.net.tcp_monitor import RESOLVE_RETRY_S

    monitor.add_event(event(0xD, 7, 2, ts=300, cgroup_id=6))
    assert [x.cgroup_path for x in monitor.take_changed()] == [""]
    now[0] += RESOLVE_RETRY_S + 1
    assert monitor.take_changed() == ()
    lookups = resolver.lookups
    assert monitor.take_changed() == ()
    assert resolver.lookups == lookups  # not tried any more
