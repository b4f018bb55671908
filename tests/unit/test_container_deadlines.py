"""Talking to the outside with deadlines (issue 12 item 6, issue 13 item 5): the Docker client
gives up by its total deadline whatever the socket does, bounds what it reads, backs off
after failures and trusts only root's socket; container look-ups for the engine thread
answer at once from a cache while a worker thread does the slow part; the process tracker
fills in labels that arrive late.

Timing assertions are generous bounds (the machines are shared): a deadline of 1 s is
checked as "< 3 s", a non-blocking call against a worker held for 30 s."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docker_helpers import FakeDockerServer, docker_item
from tests.helpers import wait_until
from tracing.model.stats import ProcEvent, ProcKind
from tracing.net.cgroups import CgroupPaths
from tracing.net.containers import BackgroundResolver, ContainerInfo, ContainerResolver
from tracing.net.docker_api import DOCKER_BACKOFF_S, DockerClient
from tracing.system.processes import LABEL_RETRY_S, ProcessTracker

ID = "9ec39b91f3d70e1beff50a308f77067065ea6be0d91a3378375056cd4422cf3d"
NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (a file of uid 65534)")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def serve(tmp_path: Path) -> Iterator:
    servers: list[FakeDockerServer] = []

    def start(mode: str, name: str = "docker.sock", containers: list | None = None):
        server = FakeDockerServer(str(tmp_path / name), mode, containers)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


# -- the Docker client -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["trickle-body", "trickle-head"])
def test_a_trickling_socket_is_given_up_by_the_total_deadline(serve, mode: str) -> None:
    server = serve(mode)
    client = DockerClient(server.path)  # a 1 s deadline
    started = time.monotonic()
    assert client.get(ID) is None
    elapsed = time.monotonic() - started
    assert elapsed < 3, f"took {elapsed:.1f} s"
    assert client.error == f"{server.path}: no complete answer within 1 s"
    assert (client.fetches, server.accepted) == (1, 1)
    assert server.trickled >= 1  # it was answering, slowly: a per-read timeout never fires


def test_a_flood_is_cut_at_the_size_bound(serve) -> None:
    server = serve("flood")
    client = DockerClient(server.path, max_response=1 << 20)
    assert client.get(ID) is None
    assert client.error == f"{server.path}: answer larger than 1,048,576 bytes"


def test_a_promised_length_over_the_bound_is_refused_before_reading(serve) -> None:
    server = serve("trickle-body")  # promises 100,000 bytes
    client = DockerClient(server.path, max_response=50_000)
    assert client.get(ID) is None
    assert client.error == f"{server.path}: answer larger than 50,000 bytes"
    assert server.trickled <= 1  # the body was not waited for


def test_failures_back_off_and_a_success_resets_it(serve) -> None:
    server = serve("hangup")
    clock = Clock()
    client = DockerClient(server.path, clock=clock)
    assert client.get(ID) is None and client.error.endswith("answer cut short")
    clock.now += 2.5  # past the 2 s between fetches on a miss, not past the back-off
    assert client.get(ID) is None
    assert (client.fetches, server.accepted) == (1, 1)
    clock.now += DOCKER_BACKOFF_S
    client.get(ID)
    assert (client.fetches, server.accepted) == (2, 2)
    clock.now += DOCKER_BACKOFF_S + 0.5  # the back-off doubled
    client.get(ID)
    assert client.fetches == 2
    clock.now += DOCKER_BACKOFF_S
    server.mode, server.containers = "ok", [docker_item(ID, "web", "nginx")]
    assert client.get(ID).name == "web"
    assert (client.fetches, client.error) == (3, "")
    server.mode = "hangup"
    clock.now += 31  # too old: fetched again, fails, and backs off from the start
    assert client.get(ID).name == "web"  # the last list is kept
    clock.now += DOCKER_BACKOFF_S
    assert client.get("other") is None  # a miss after the (reset) back-off: asked
    assert client.fetches == 5


def test_the_socket_path_is_read_when_the_client_is_made(serve, monkeypatch) -> None:
    server = serve("ok", containers=[docker_item(ID, "web", "nginx")])
    monkeypatch.setattr("tracing.net.docker_api.DOCKER_SOCKET", server.path)
    assert DockerClient().get(ID).name == "web"


@needs_root
def test_a_socket_of_another_user_is_not_asked(serve) -> None:
    server = serve("ok", containers=[docker_item(ID, "evil", "x")])
    os.chown(server.path, NOBODY, NOBODY)
    client = DockerClient(server.path)
    assert client.get(ID) is None
    assert client.error == f"{server.path}: belongs to uid {NOBODY}, not root; not trusted"
    assert server.accepted == 0


def test_a_symbolic_link_to_a_socket_is_not_followed(serve, tmp_path: Path) -> None:
    server = serve("ok", containers=[docker_item(ID, "web", "nginx")])
    link = tmp_path / "link.sock"
    link.symlink_to(server.path)
    client = DockerClient(str(link))
    assert client.get(ID) is None
    assert client.error == f"{link}: is a symbolic link; only root's own socket is trusted"
    assert server.accepted == 0


def test_a_file_that_is_not_a_socket_is_not_asked(tmp_path: Path) -> None:
    plain = tmp_path / "docker.sock"
    plain.write_text("")
    client = DockerClient(str(plain))
    assert client.get(ID) is None
    assert client.error == f"{plain}: is not a socket"


# A server run as nobody: listens, tells it is ready, prints how many bytes it was sent.
PEER = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(1)
s.settimeout(20)
print("ready", flush=True)
conn, _ = s.accept()
conn.settimeout(20)
got = b""
while True:
    chunk = conn.recv(4096)
    if not chunk:
        break
    got += chunk
print(len(got), flush=True)
"""


@needs_root
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
def test_a_socket_served_by_another_user_gets_no_request() -> None:
    """The name is root's (it could have been swapped after the check), the listener is
    nobody's: the client connects, sees the peer's uid, and sends nothing."""
    directory = Path(tempfile.mkdtemp(prefix="sikte-peer-"))
    try:
        os.chown(directory, NOBODY, NOBODY)
        path = directory / "docker.sock"
        server = subprocess.Popen(
            ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
             "/usr/bin/python3", "-c", PEER, str(path)],
            stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout is not None
            assert server.stdout.readline() == "ready\n"
            os.chown(path, 0, 0)
            client = DockerClient(str(path))
            assert client.get(ID) is None
            assert client.error == f"{path}: is served by uid {NOBODY}, not root; not trusted"
            out, _ = server.communicate(timeout=20)
        finally:
            server.kill()
            server.wait()
        assert out == "0\n"  # not one byte of a request
    finally:
        shutil.rmtree(directory)


# -- the resolver off the engine thread ------------------------------------------------------


def cgroup_tree(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    root = tmp_path / "cg"
    dirs = {"docker": f"system.slice/docker-{ID}.scope", "unit": "system.slice/cron.service"}
    for d in dirs.values():
        (root / d).mkdir(parents=True)
    return root, {k: os.stat(root / d).st_ino for k, d in dirs.items()}


def fake_proc(tmp_path: Path, cgroups: dict[int, str]) -> Path:
    proc = tmp_path / "proc"
    for pid, path in cgroups.items():
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / "cgroup").write_text(f"0::{path}\n")
    return proc


def background(tmp_path: Path, socket_path: str, deadline: float = 1.0,
               max_pending: int = BackgroundResolver.MAX_PENDING) -> tuple[BackgroundResolver,
                                                                            dict[str, int]]:
    root, ids = cgroup_tree(tmp_path)
    proc = fake_proc(tmp_path, {10: "/system.slice/cron.service",
                                11: f"/system.slice/docker-{ID}.scope"})
    resolver = ContainerResolver(paths=CgroupPaths(root, min_interval=0), proc=proc,
                                 docker_client=DockerClient(socket_path, deadline=deadline))
    return BackgroundResolver(resolver, max_pending=max_pending), ids


def test_lookups_answer_at_once_while_the_worker_waits_on_docker(serve, tmp_path: Path):
    server = serve("trickle-body")
    # A 30 s deadline: a look-up that waited on the worker would take that long.
    resolver, ids = background(tmp_path, server.path, deadline=30)
    try:
        assert resolver.lookup(ids["docker"]) == ContainerInfo()  # asked
        wait_until(lambda: server.trickled,
                   "the worker to be inside the Docker request", timeout=10)
        started = time.monotonic()
        for _ in range(100):
            assert resolver.lookup(ids["docker"]) == ContainerInfo()
            assert resolver.lookup(ids["unit"]) == ContainerInfo()
            assert resolver.for_pid(10) is None
            assert resolver.label_of_pid(11) is None
        elapsed = time.monotonic() - started
        assert elapsed < 3, f"400 look-ups took {elapsed:.1f} s"
        assert server.open == 1  # the worker is still stuck in the request
        # Waiting questions, oldest first, each once however often it was asked.
        assert resolver.pending() == [("cgroup", ids["unit"]), ("pid", 10), ("pid", 11)]
        started = time.monotonic()
        resolver.close()
        assert time.monotonic() - started < 3
        assert resolver.join(5), "the worker did not end after close()"
        assert resolver.resolver.docker.error.endswith("answer cut short")  # aborted
    finally:
        resolver.close()


def test_answers_arrive_later_once_docker_gave_up(serve, tmp_path: Path) -> None:
    server = serve("trickle-body")
    resolver, ids = background(tmp_path, server.path)
    try:
        assert resolver.lookup(ids["docker"]) == ContainerInfo()
        assert resolver.lookup(ids["unit"]) == ContainerInfo()
        docker = f"/system.slice/docker-{ID}.scope"
        found = wait_until(lambda: resolver.lookup(ids["docker"]).path, "the container", timeout=10)
        assert found == docker
        # Unnamed: Docker did not answer in time. Asked again later, after its back-off.
        assert resolver.lookup(ids["docker"]) == ContainerInfo(docker, ID, "", "docker")
        assert resolver.resolver.docker.error.endswith("no complete answer within 1 s")
        wait_until(lambda: resolver.lookup(ids["unit"]).path, "the unit", timeout=10)
        assert resolver.lookup(ids["unit"]) == ContainerInfo("/system.slice/cron.service",
                                                             "cron.service", "", "systemd")
        assert resolver.error == ""
    finally:
        resolver.close()


def test_a_named_container_and_a_pid_fill_the_cgroup_id_too(serve, tmp_path: Path) -> None:
    server = serve("ok", containers=[docker_item(ID, "web", "nginx:1.27")])
    resolver, ids = background(tmp_path, server.path)
    try:
        assert resolver.label_of_pid(11) is None
        assert wait_until(lambda: resolver.label_of_pid(11), "the label", timeout=10) == "web"
        # The process's cgroup id was answered with it: its connections find it at once.
        assert resolver.lookup(ids["docker"]) == ContainerInfo(
            f"/system.slice/docker-{ID}.scope", ID, "web", "docker", "nginx:1.27")
        assert wait_until(lambda: resolver.label_of_pid(10),
                          "the unit", timeout=10) == "cron.service"
        assert resolver.label_of_pid(12) is None  # no such process: asked, answered empty
        wait_until(lambda: resolver.label_of_pid(12) is not None, "pid 12", timeout=10)
        assert resolver.label_of_pid(12) == ""
        assert server.accepted == 1  # one list for all
        assert resolver.pending() == []
    finally:
        resolver.close()


def test_the_queue_is_bounded_and_the_newest_questions_win(serve, tmp_path: Path) -> None:
    server = serve("trickle-body")
    resolver, ids = background(tmp_path, server.path, deadline=30, max_pending=4)
    try:
        resolver.lookup(ids["docker"])
        wait_until(lambda: server.trickled,
                   "the worker to be inside the Docker request", timeout=10)
        for pid in range(100, 110):
            assert resolver.for_pid(pid) is None
        assert resolver.pending() == [("pid", p) for p in range(106, 110)]
        assert resolver.dropped == 6
    finally:
        resolver.close()
    assert resolver.join(5)


def test_nothing_runs_before_the_first_question(tmp_path: Path) -> None:
    resolver, _ = background(tmp_path, str(tmp_path / "none.sock"))
    assert resolver.join(0)  # no thread yet
    resolver.close()
    assert resolver.for_pid(10) is None  # closed: not asked any more
    assert resolver.pending() == []


# -- labels that arrive on a later tick ------------------------------------------------------


def test_the_process_tracker_fills_in_late_labels() -> None:
    known: dict[int, str] = {}
    clock = Clock()
    tracker = ProcessTracker(known.get, clock=clock)
    me = os.getpid()
    tracker.add_root(me, 0)
    first = tracker.snapshot()
    assert first[me].container == ""
    assert tracker.snapshot() is first  # nothing new
    child = subprocess.Popen(["/bin/sleep", "30"])
    try:
        # Forked while the parent's label is not known: it takes the parent's once it is.
        tracker.apply([ProcEvent(1, ProcKind.FORK, child.pid, child.pid, me, -1, False,
                                 "sleep", "")], follow=True)
        assert tracker.snapshot()[child.pid].container == ""
        known[me] = "web"
        second = tracker.snapshot()
        assert second[me].container == "web"
        third = tracker.snapshot()  # the child follows its parent one snapshot later
        assert third[child.pid].container == "web"
        assert tracker.snapshot() is third
    finally:
        child.kill()
        child.wait()


def test_a_label_that_never_comes_is_given_up() -> None:
    asked: list[int] = []
    clock = Clock()
    tracker = ProcessTracker(lambda pid: asked.append(pid), clock=clock)
    tracker.add_root(os.getpid(), 0)
    tracker.snapshot()
    clock.now += LABEL_RETRY_S + 1
    tracker.snapshot()
    count = len(asked)
    tracker.snapshot()
    assert len(asked) == count  # not asked any more
    assert tracker.snapshot()[os.getpid()].container == ""
