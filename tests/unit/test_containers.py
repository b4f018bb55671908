"""Container correlation without root or Docker: cgroup paths of each runtime (real shapes,
from hosts running them), the cgroup2 mount, the id -> path walk, and a fake Docker Engine
API on a unix socket."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docker_helpers import FakeDockerServer, docker_item
from tracing.net.cgroups import (
    CgroupPaths,
    cgroup2_mount,
    cgroup_of_pid,
    container_in_proc_cgroup,
    parse_container,
)
from tracing.net.containers import ContainerInfo, ContainerResolver
from tracing.net.docker_api import DockerClient, parse_containers_json

ID = "9ec39b91f3d70e1beff50a308f77067065ea6be0d91a3378375056cd4422cf3d"
ID2 = "ec08435e04266c5ba381fccbb829f626d11d8ddf5f8f547263c7a2d79ab4787a"


@pytest.mark.parametrize(("path", "expected"), [
    # Docker, systemd cgroup driver (most distributions with cgroup v2).
    (f"/system.slice/docker-{ID}.scope", (ID, "docker")),
    # Docker, cgroupfs driver.
    (f"/docker/{ID}", (ID, "docker")),
    # Docker in Docker (RancherOS): the inner container.
    (f"/docker/{ID2}/docker/{ID}", (ID, "docker")),
    # Docker with a systemd container inside (cgroupns private): its init.scope is the
    # container's, not a host unit.
    (f"/system.slice/docker-{ID}.scope/init.scope", (ID, "docker")),
    # Kubernetes with containerd, systemd driver (e.g. Bottlerocket, EKS, GKE).
    ("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-poddd1bf9d1_241d_47f5_"
     f"8e25_12de83135812.slice/cri-containerd-{ID}.scope", (ID, "containerd")),
    # Guaranteed pods have no QoS slice.
    (f"/kubepods.slice/kubepods-pod1d2c_aa.slice/cri-containerd-{ID}.scope",
     (ID, "containerd")),
    # kind: a Kubernetes node in a Docker container; the pod's container is innermost.
    (f"/system.slice/docker-{ID2}.scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods"
     f"-besteffort.slice/kubelet-kubepods-besteffort-podeab5a334_93fe.slice/cri-containerd-"
     f"{ID}.scope", (ID, "containerd")),
    # Kubernetes with CRI-O (OpenShift).
    ("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod69349abe_d645_11ea_9c4c"
     f"_08002709c05c.slice/crio-{ID}.scope", (ID, "cri-o")),
    (f"/kubepods.slice/kubepods-burstable.slice/crio-conmon-{ID}.scope", (ID, "cri-o")),
    # Kubernetes with dockershim / cri-dockerd.
    ("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod045b1e35_7f13_11e7_"
     f"ac42_0050568ffca0.slice/docker-{ID}.scope", (ID, "docker")),
    # Kubernetes, cgroupfs driver (k3s): the path does not name the runtime.
    (f"/kubepods/besteffort/pod74ba62da-1a3d-11e7-bb11-080027cb0e22/{ID}", (ID, "kubepods")),
    (f"/kubepods/podf8a694f2-7c08-11e9-98da-000c29077430/{ID}/kube-proxy", (ID, "kubepods")),
    # cgroup v1 with containerd's systemd driver.
    ("/system.slice/containerd.service/kubepods-burstable-poda3b200c9_db51_40b4_9d2d_"
     f"53f8fdf80d7f.slice:cri-containerd:{ID}", (ID, "containerd")),
    # containerd without Kubernetes.
    (f"/system.slice/nerdctl-{ID}.scope", (ID, "containerd")),
    (f"/containerd/{ID}", (ID, "containerd")),
    # Podman rootful, systemd driver; with --systemd its payload is in a "container" child.
    (f"/machine.slice/libpod-{ID}.scope", (ID, "podman")),
    (f"/machine.slice/libpod-{ID}.scope/container", (ID, "podman")),
    # Podman rootless.
    (f"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope/container",
     (ID, "podman")),
    # Podman's monitor (conmon) of that container, and the cgroupfs driver, and quadlets.
    (f"/machine.slice/libpod-conmon-{ID}.scope", (ID, "podman")),
    (f"/libpod_parent/libpod-{ID}", (ID, "podman")),
    (f"/system.slice/web.service/libpod-payload-{ID}", (ID, "podman")),
    # Amazon ECS on EC2.
    (f"/ecs/5a081c13b3f7496f9ab1d3b4af3ac1e0/{ID}", (ID, "ecs")),
    # LXC.
    ("/lxc.payload.web1", ("web1", "lxc")),
    # An id under no parent that tells (old Debian Docker).
    (f"/{ID}", (ID, "container")),
    # systemd units outside containers: the unit is the id.
    ("/system.slice/nginx.service", ("nginx.service", "systemd")),
    ("/system.slice/docker.service", ("docker.service", "systemd")),  # the daemon itself
    ("/user.slice/user-1000.slice/session-3.scope", ("session-3.scope", "systemd")),
    ("/user.slice/user-1000.slice/user@1000.service/app.slice/app-org.gnome.Terminal.slice/"
     "vte-spawn-1b2c.scope", ("vte-spawn-1b2c.scope", "systemd")),
    ("/init.scope", ("init.scope", "systemd")),
    ("/machine.slice/systemd-nspawn@web.service/payload", ("systemd-nspawn@web.service",
                                                          "systemd")),
    # Nothing.
    ("/", ("", "")),
    ("", ("", "")),
    ("/user.slice", ("", "")),
    ("/sikte-test-tcp-123", ("", "")),
    # Almost ids (too short, none, not hex) are no containers; a scope is still a unit.
    (f"/system.slice/docker-{ID[1:]}.scope", (f"docker-{ID[1:]}.scope", "systemd")),
    ("/system.slice/docker-.scope", ("docker-.scope", "systemd")),
    (f"/docker/{ID[:-1]}x", ("", "")),
])
def test_parse_container(path: str, expected: tuple[str, str]) -> None:
    assert parse_container(path) == expected


def test_proc_cgroup_texts() -> None:
    hybrid = f"12:memory:/docker/{ID}\n1:name=systemd:/docker/{ID}\n0::/\n"
    assert cgroup_of_pid(hybrid) == "/"
    assert container_in_proc_cgroup(hybrid) == (ID, "docker")
    v2 = "0::/system.slice/cron.service\n"
    assert cgroup_of_pid(v2) == "/system.slice/cron.service"
    assert container_in_proc_cgroup(v2) == ("cron.service", "systemd")
    assert cgroup_of_pid("4:memory:/x\n") == ""


def test_cgroup2_mount() -> None:
    hybrid = ("tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0\n"
              "cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0\n"
              "cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n")
    assert cgroup2_mount(hybrid) == Path("/sys/fs/cgroup/unified")
    unified = "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime 0 0\n"
    assert cgroup2_mount(unified) == Path("/sys/fs/cgroup")
    assert cgroup2_mount("none /mnt/my\\040cgroups cgroup2 rw 0 0\n") == Path("/mnt/my cgroups")
    v1_only = "cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n"
    assert cgroup2_mount(v1_only) is None
    assert cgroup2_mount("") is None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_cgroup_paths_walk_the_tree_and_rewalk_at_most_once_a_second(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    (root / "system.slice" / "a.service").mkdir(parents=True)
    clock = Clock()
    paths = CgroupPaths(root, clock=clock)
    ino = os.stat(root / "system.slice" / "a.service").st_ino
    assert paths.path(ino) == "/system.slice/a.service"
    assert paths.path(os.stat(root).st_ino) == "/"
    assert paths.walks == 1  # the second was cached
    (root / "b.scope").mkdir()
    new = os.stat(root / "b.scope").st_ino
    clock.now += 0.5
    assert paths.path(new) is None  # walked half a second ago: not again yet
    assert paths.walks == 1
    clock.now += 0.6
    assert paths.path(new) == "/b.scope"
    assert paths.walks == 2
    assert paths.id_of("/b.scope") == new
    assert paths.id_of("/nope") is None
    assert CgroupPaths(tmp_path / "absent").path(5) is None


# -- a fake Docker Engine API ----------------------------------------------------------------


@pytest.fixture
def docker(tmp_path: Path) -> Iterator[FakeDockerServer]:
    server = FakeDockerServer(str(tmp_path / "docker.sock"), "ok",
                              [docker_item(ID, "web", "nginx:1.27")])
    yield server
    server.close()


def test_docker_client_caches_and_refreshes_on_a_miss(docker: FakeDockerServer) -> None:
    clock = Clock()
    client = DockerClient(docker.sock.getsockname(), clock=clock)
    found = client.get(ID)
    assert (found.name, found.image) == ("web", "nginx:1.27")
    assert docker.requests == ["GET /containers/json?all=1 HTTP/1.1"]
    assert client.get(ID) == found and client.fetches == 1  # cached
    docker.containers.append(docker_item(ID2, "db", "postgres:16"))
    assert client.get(ID2) is None  # a miss right after a fetch does not fetch again
    clock.now += 2.5
    assert client.get(ID2).name == "db"
    assert client.fetches == 2
    clock.now += 31  # too old to trust while the daemon is there
    client.get(ID)
    assert client.fetches == 3


def test_docker_client_without_a_daemon(tmp_path: Path, docker: FakeDockerServer) -> None:
    absent = DockerClient(str(tmp_path / "none.sock"))
    assert absent.get(ID) is None
    assert (absent.available, absent.fetches, absent.error) == (False, 0, "")
    docker.status = "500 Internal Server Error"
    failing = DockerClient(docker.sock.getsockname())
    assert failing.get(ID) is None
    assert "HTTP 500" in failing.error
    # A socket nobody answers on: refused, kept as the reason, no exception.
    dead = tmp_path / "dead.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(dead))
    s.close()
    gone = DockerClient(str(dead))
    assert gone.get(ID) is None and gone.error


def test_parse_containers_json() -> None:
    body = json.dumps([docker_item(ID, "web", "nginx"), {"Id": ID2}, "junk"]).encode()
    found = parse_containers_json(body)
    assert found[ID].name == "web"
    assert (found[ID2].name, found[ID2].image) == ("", "")
    with pytest.raises(ValueError):
        parse_containers_json(b'{"message": "page not found"}')


def make_tree(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    root = tmp_path / "cg"
    dirs = {"docker": f"system.slice/docker-{ID}.scope", "unknown": f"system.slice/docker-{ID2}"
            ".scope", "unit": "system.slice/cron.service", "pod": "machine.slice/libpod-"
            f"{ID}.scope"}
    for d in dirs.values():
        (root / d).mkdir(parents=True)
    return root, {k: os.stat(root / d).st_ino for k, d in dirs.items()}


def test_container_resolver(tmp_path: Path, docker: FakeDockerServer) -> None:
    root, ids = make_tree(tmp_path)
    client = DockerClient(docker.sock.getsockname(), min_interval=0)
    resolver = ContainerResolver(paths=CgroupPaths(root, min_interval=0), docker_client=client)
    assert resolver.lookup(ids["docker"]) == ContainerInfo(
        f"/system.slice/docker-{ID}.scope", ID, "web", "docker", "nginx:1.27")
    assert resolver.lookup(ids["unit"]) == ContainerInfo("/system.slice/cron.service",
                                                         "cron.service", "", "systemd")
    assert resolver.lookup(ids["pod"]).runtime == "podman"  # Docker is not asked
    fetches = client.fetches
    assert resolver.lookup(ids["docker"]).name == "web"
    assert client.fetches == fetches  # cached
    # A container Docker does not know yet is asked about again, and named once it is.
    assert resolver.lookup(ids["unknown"]).name == ""
    docker.containers.append(docker_item(ID2, "late", "redis"))
    assert resolver.lookup(ids["unknown"]).name == "late"
    assert resolver.lookup(123456789) == ContainerInfo()


def test_container_resolver_with_docker_disabled(tmp_path: Path, docker: FakeDockerServer) -> None:
    root, ids = make_tree(tmp_path)
    resolver = ContainerResolver(docker=False, paths=CgroupPaths(root),
                                 docker_client=DockerClient(docker.sock.getsockname()))
    assert resolver.docker is None
    assert resolver.lookup(ids["docker"]) == ContainerInfo(
        f"/system.slice/docker-{ID}.scope", ID, "", "docker")
    assert docker.requests == []


def test_container_resolver_for_pid(tmp_path: Path, docker: FakeDockerServer) -> None:
    proc = tmp_path / "proc"
    (proc / "10").mkdir(parents=True)
    (proc / "10" / "cgroup").write_text(f"0::/system.slice/docker-{ID}.scope\n")
    (proc / "11").mkdir()
    (proc / "11" / "cgroup").write_text(f"4:memory:/docker/{ID}\n0::/\n")  # hybrid
    resolver = ContainerResolver(paths=CgroupPaths(tmp_path / "cg"), proc=proc,
                                 docker_client=DockerClient(docker.sock.getsockname()))
    assert resolver.for_pid(10) == ContainerInfo(f"/system.slice/docker-{ID}.scope", ID, "web",
                                                 "docker", "nginx:1.27")
    assert resolver.for_pid(11) == ContainerInfo("/", ID, "web", "docker", "nginx:1.27")
    assert resolver.for_pid(12) == ContainerInfo()  # gone
    own = ContainerResolver(docker=False).for_pid(os.getpid())  # this process, for real
    mount = cgroup2_mount()
    if mount is not None:
        assert (mount / own.path.lstrip("/")).is_dir()
