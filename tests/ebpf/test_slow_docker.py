"""A slow Docker socket on the real kernel (issue 12 item 6): a traced process in a Docker
container's cgroup while /var/run/docker.sock (here a fake one, through
tracing.net.docker_api.DOCKER_SOCKET) sends one byte every 0.3 s forever. Starting does not wait
for it, stopping (SIGTERM to `record`, the TUI's quit through LiveSource.stop) completes in
time, and the counts are exact. With a Docker that answers, the container's name reaches the
saved session: the journal's processes and connections, and the Parquet export.

Timing bounds are generous (the requirement is 2 s; the machines are shared)."""

from __future__ import annotations

import os
import secrets
import select
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.cgroup_helpers import made_cgroup
from tests.docker_helpers import FakeDockerServer, docker_item
from tests.helpers import wait_until
from tracing.engine.tracer import TraceConfig, Tracer
from tracing.model.report import syscall_rows
from tracing.model.stats import Snapshot
from tracing.record import record
from tracing.session.export import export_parquet
from tracing.session.journal import JournalOptions
from tracing.session.stored import open_session
from tracing.sources import LiveSource

pytestmark = [pytest.mark.ebpf, pytest.mark.timeout(120)]

N = 5
STOP_BOUND_S = 5.0  # the requirement is 2 s

# Waits for a line, connects N times to the port given, says so, waits for a line, exits.
CLIENT = r"""
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
sys.stdin.readline()
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.close()
print("connected", flush=True)
sys.stdin.readline()
"""


class Listener:
    """An untraced server on 127.0.0.1 that accepts and closes every connection."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed
                return
            conn.close()

    def close(self) -> None:
        self.sock.close()


class HeldClient:
    """The CLIENT program, moved into a cgroup before it does anything."""

    def __init__(self, port: int, cgroup: Path) -> None:
        self.proc = subprocess.Popen(["/usr/bin/python3", "-c", CLIENT, str(port), str(N)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        (cgroup / "cgroup.procs").write_text(str(self.proc.pid))
        self.pid = self.proc.pid

    def tell(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.flush()

    def wait_connected(self, timeout: float = 20) -> None:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        assert ready, f"the client did not connect within {timeout} s"
        assert self.proc.stdout.readline() == b"connected\n"

    def finish(self) -> None:
        if self.proc.poll() is None:
            self.tell()
        try:
            self.proc.wait(timeout=10)
        finally:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def container_cgroup() -> Iterator[tuple[Path, str]]:
    """A cgroup named as Docker's systemd driver names a container's: (its dir, the id)."""
    cid = secrets.token_hex(32)
    with made_cgroup(f"docker-{cid}.scope") as path:
        yield path, cid


def docker_at(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str,
              containers: list | None = None) -> FakeDockerServer:
    server = FakeDockerServer(str(tmp_path / "docker.sock"), mode, containers)
    monkeypatch.setattr("tracing.net.docker_api.DOCKER_SOCKET", server.path)
    return server


def connects(snapshot: Snapshot | None, pid: int) -> int:
    if snapshot is None:
        return 0
    return sum(r.stats.count for r in syscall_rows(snapshot, pid) if r.name == "connect")


def outbound(snapshot: Snapshot, pid: int, port: int) -> list:
    return [c for c in snapshot.connections if c.pid == pid and c.dport == port]


def test_record_stops_in_time_with_a_trickling_docker_socket(tmp_path, monkeypatch,
                                                            container_cgroup) -> None:
    cgroup, cid = container_cgroup
    docker = docker_at(tmp_path, monkeypatch, "trickle-body")
    listener = Listener()
    client = HeldClient(listener.port, cgroup)
    connections: dict[int, object] = {}  # conn_id -> the newest row
    stopped_at: list[float] = []

    def collect(snapshot: Snapshot) -> None:
        connections.update((c.conn_id, c) for c in snapshot.connections)

    def drive(tracer: Tracer) -> None:
        # Started while the container look-up waits on the socket (the old code hung here).
        wait_until(lambda: docker.accepted, "the container look-up to ask Docker", timeout=10)
        client.tell()
        client.wait_connected()
        wait_until(lambda: connects(tracer.last_snapshot, client.pid) == N,
                   f"{N} connects in a snapshot", timeout=20)
        stopped_at.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGTERM)  # as `kill` would stop `record`

    try:
        tracer, last = record(TraceConfig(pids=(client.pid,), sample_hz=0), on_started=drive,
                              on_snapshot=collect)
        took = time.monotonic() - stopped_at[0]
    finally:
        client.finish()
        listener.close()
        docker.close()
    assert took < STOP_BOUND_S, f"stopping took {took:.1f} s"
    assert tracer.error is None
    assert connects(last, client.pid) == N
    rows = [c for c in connections.values() if c.pid == client.pid]
    assert [(c.dport, c.direction, c.result) for c in rows] == [(listener.port, "out", "ok")] * N
    # Named or not depends on when the look-up gave up; never a name Docker did not give.
    assert {c.container_id for c in rows} <= {cid, ""}
    assert {c.container_name for c in rows} == {""}
    assert docker.trickled >= 1


def test_live_source_starts_and_quits_in_time_with_a_trickling_socket(
        tmp_path, monkeypatch, container_cgroup) -> None:
    """LiveSource is what the TUI starts (off the UI thread) and stops on quit."""
    cgroup, _cid = container_cgroup
    docker = docker_at(tmp_path, monkeypatch, "trickle-body")
    listener = Listener()
    client = HeldClient(listener.port, cgroup)
    source = LiveSource(TraceConfig(pids=(client.pid,), sample_hz=0),
                        JournalOptions(db_path=tmp_path / "s.sikte.db"))
    snapshots: list[Snapshot] = []
    try:
        source.start(snapshots.append, lambda _text: None)
        wait_until(lambda: docker.open, "a Docker request in flight", timeout=10)
        client.tell()
        client.wait_connected()
        wait_until(lambda: snapshots and connects(snapshots[-1], client.pid) == N,
                   f"{N} connects in a snapshot", timeout=20)
        started = time.monotonic()
        source.stop()
        took = time.monotonic() - started
    finally:
        client.finish()
        listener.close()
        docker.close()
    assert took < STOP_BOUND_S, f"quitting took {took:.1f} s"
    assert source.tracer is not None and not source.tracer.running
    assert connects(snapshots[-1], client.pid) == N
    with sqlite3.connect(tmp_path / "s.sikte.db") as db:
        assert db.execute("SELECT pid FROM processes").fetchall() == [(client.pid,)]


def test_container_names_reach_the_saved_session(tmp_path, monkeypatch,
                                                 container_cgroup) -> None:
    cgroup, cid = container_cgroup
    docker = docker_at(tmp_path, monkeypatch, "ok", [docker_item(cid, "web", "nginx:1.27")])
    listener = Listener()
    client = HeldClient(listener.port, cgroup)
    db_path = tmp_path / "s.sikte.db"
    source = LiveSource(TraceConfig(pids=(client.pid,), sample_hz=0),
                        JournalOptions(db_path=db_path))
    snapshots: list[Snapshot] = []
    try:
        source.start(snapshots.append, lambda _text: None)
        # The label is looked up off the engine thread and arrives on a later tick.
        wait_until(lambda: snapshots and snapshots[-1].processes[client.pid].container == "web",
                   "the container's name on the process", timeout=10)
        client.tell()
        client.wait_connected()
        client.finish()  # the target exits: the trace ends by itself
        assert source.tracer is not None and source.tracer.join(20)
    finally:
        source.stop()
        client.finish()
        listener.close()
        docker.close()
    assert len({c.conn_id for s in snapshots for c in outbound(s, client.pid, listener.port)}) == N
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT pid, container FROM processes").fetchall() == [
            (client.pid, "web")]
        named = db.execute("SELECT container_id, container_name, container_runtime, count(*) "
                           "FROM connections WHERE dport = ? GROUP BY 1, 2, 3",
                           (listener.port,)).fetchall()
    assert named == [(cid, "web", "docker", N)]
    out = export_parquet(open_session(db_path), tmp_path / "pq")
    processes = pd.read_parquet(out / "processes.parquet")
    assert list(processes.container) == ["web"]
    conns = pd.read_parquet(out / "connections.parquet")
    conns = conns[conns.dport == listener.port]
    assert len(conns) == N and set(conns.container_name) == {"web"}
    assert set(conns.container_id) == {cid}
    assert docker.accepted >= 1
