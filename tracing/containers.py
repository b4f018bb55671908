"""Which container (or systemd unit) a process or a cgroup id belongs to.

bpf_get_current_cgroup_id() gives a cgroup v2 id: the inode number of the cgroup's directory
under the cgroup2 mount. CgroupPaths maps ids back to paths by walking that tree;
parse_container() reads a container id and runtime out of a path (pure, no I/O); DockerClient
asks the Docker Engine API for names and images; ContainerResolver puts them together, with
caches, for the connections and the process views.

No bcc, no Textual. Nothing is read at import time or construction: the first look-up does.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

DOCKER_SOCKET = "/var/run/docker.sock"
PROC_MOUNTS = Path("/proc/self/mounts")

# -- parsing cgroup paths --------------------------------------------------------------------

_ID = r"[0-9a-f]{64}"
# A container's own cgroup (systemd driver: "<prefix>-<id>.scope"; podman's cgroupfs driver
# and quadlets leave out ".scope"). Innermost match wins: kind and docker-in-docker nest.
# libpod-conmon / crio-conmon hold the container's monitor process, attributed to it.
_SCOPE_RE = re.compile(
    rf"^(?P<prefix>cri-containerd|nerdctl|docker|crio-conmon|crio|libpod-conmon|"
    rf"libpod-payload|libpod)-(?P<id>{_ID})(?:\.scope)?$")
# cgroup v1 with containerd's systemd driver names it "<slice>:<prefix>:<id>".
_COLON_RE = re.compile(rf"^.*:(?P<prefix>cri-containerd|crio|docker):(?P<id>{_ID})$")
_BARE_RE = re.compile(rf"^{_ID}$")  # cgroupfs drivers: the id alone
_LXC_RE = re.compile(r"^lxc\.payload\.(?P<name>.+)$")
_UNIT_RE = re.compile(r"^.+\.(?:scope|service)$")

_PREFIX_RUNTIMES = {
    "cri-containerd": "containerd", "nerdctl": "containerd", "docker": "docker",
    "crio": "cri-o", "crio-conmon": "cri-o", "libpod": "podman", "libpod-conmon": "podman",
    "libpod-payload": "podman",
}
# A bare id's runtime, from the first of its ancestors that tells.
_PARENT_RUNTIMES = {"docker": "docker", "containerd": "containerd", "libpod_parent": "podman",
                    "ecs": "ecs", "crio": "cri-o"}


def parse_container(cgroup_path: str) -> tuple[str, str]:
    """(container id, runtime) of a cgroup path such as
    "/system.slice/docker-<64 hex>.scope" -> (<id>, "docker"). A systemd unit outside
    containers gives (unit name, "systemd"); anything else ("/", a slice) gives ("", "").

    Runtimes: "docker", "containerd" (CRI, nerdctl), "cri-o", "podman", "kubepods" (a
    Kubernetes cgroupfs path, which does not name the runtime), "ecs", "lxc", "container"
    (an id under no known parent) and "systemd"."""
    parts = [p for p in cgroup_path.strip().split("/") if p]
    for i in range(len(parts) - 1, -1, -1):
        found = _container_in(parts[i], parts[:i])
        if found is not None:
            return found
    unit = next((p for p in reversed(parts) if _UNIT_RE.match(p)), "")
    return (unit, "systemd") if unit else ("", "")


def _container_in(part: str, ancestors: list[str]) -> tuple[str, str] | None:
    m = _SCOPE_RE.match(part) or _COLON_RE.match(part)
    if m:
        return m["id"], _PREFIX_RUNTIMES[m["prefix"]]
    if _BARE_RE.match(part):
        return part, _bare_runtime(ancestors)
    m = _LXC_RE.match(part)
    if m:
        return m["name"], "lxc"
    return None


def _bare_runtime(ancestors: list[str]) -> str:
    for parent in reversed(ancestors):
        if parent in _PARENT_RUNTIMES:
            return _PARENT_RUNTIMES[parent]
        if parent.startswith("kubepods"):
            return "kubepods"
    return "container"


def cgroup_of_pid(text: str) -> str:
    """The cgroup v2 path in a /proc/PID/cgroup text (its "0::" line), "" when none."""
    for line in text.splitlines():
        if line.startswith("0::"):
            return line[3:].strip()
    return ""


def container_in_proc_cgroup(text: str) -> tuple[str, str]:
    """(container id, runtime) from any line of a /proc/PID/cgroup text: on hybrid and v1
    systems a container may show only in the v1 hierarchies. Containers before units."""
    found = ("", "")
    for line in text.splitlines():
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        cid, runtime = parse_container(fields[2])
        if cid and runtime != "systemd":
            return cid, runtime
        if cid and not found[0]:
            found = (cid, runtime)
    return found


# -- the cgroup2 tree ------------------------------------------------------------------------


def _unescape_mount(field: str) -> str:
    """/proc/self/mounts escapes space, tab, newline and backslash as octal."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field)


def cgroup2_mount(mounts_text: str | None = None) -> Path | None:
    """Where cgroup v2 is mounted ("/sys/fs/cgroup", or "/sys/fs/cgroup/unified" on hybrid
    systems), from /proc/self/mounts (or the text given); None when it is not."""
    if mounts_text is None:
        try:
            mounts_text = PROC_MOUNTS.read_text()
        except OSError:
            return None
    for line in mounts_text.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] == "cgroup2":
            return Path(_unescape_mount(fields[1]))
    return None


class CgroupPaths:
    """cgroup v2 id -> path ("/system.slice/x.service"), by walking the cgroup2 tree.

    A miss re-walks the tree, at most once per `min_interval` seconds: a new cgroup appears
    on the next walk, and ids of cgroups that never existed do not make it walk again and
    again."""

    def __init__(self, root: Path | None = None, min_interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._root = root
        self._root_known = root is not None
        self._min_interval = min_interval
        self._clock = clock
        self._paths: dict[int, str] = {}
        self._walked_at: float | None = None
        self.walks = 0  # how many times the tree was walked

    @property
    def root(self) -> Path | None:
        if not self._root_known:
            self._root, self._root_known = cgroup2_mount(), True
        return self._root

    def path(self, cgroup_id: int) -> str | None:
        """The path of the cgroup with this id, None when there is none (now)."""
        found = self._paths.get(cgroup_id)
        if found is not None or self.root is None:
            return found
        now = self._clock()
        if self._walked_at is not None and now - self._walked_at < self._min_interval:
            return None
        self._walked_at = now
        self._paths = self._walk(self.root)
        self.walks += 1
        return self._paths.get(cgroup_id)

    def id_of(self, path: str) -> int | None:
        """The id of the cgroup at this path (relative to the mount), None when none."""
        root = self.root
        if root is None:
            return None
        try:
            return os.stat(root / path.lstrip("/")).st_ino
        except OSError:
            return None

    @staticmethod
    def _walk(root: Path) -> dict[int, str]:
        paths: dict[int, str] = {}
        try:
            paths[os.stat(root).st_ino] = "/"
        except OSError:
            return paths
        pending = [(str(root), "")]
        while pending:
            directory, relative = pending.pop()
            try:
                entries = list(os.scandir(directory))
            except OSError:  # removed while walking
                continue
            for entry in entries:
                try:
                    if not entry.is_dir(follow_symlinks=False):
                        continue
                    ino = entry.stat(follow_symlinks=False).st_ino
                except OSError:
                    continue
                child = f"{relative}/{entry.name}"
                paths[ino] = child
                pending.append((entry.path, child))
        return paths


# -- Docker ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DockerContainer:
    id: str
    name: str
    image: str


class _UnixHTTPConnection(http.client.HTTPConnection):
    """Plain HTTP over a unix socket, as the Docker Engine API speaks it."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def parse_containers_json(body: bytes) -> dict[str, DockerContainer]:
    """GET /containers/json's answer -> containers by full id. ValueError when malformed."""
    items = json.loads(body)
    if not isinstance(items, list):
        raise ValueError("expected a list of containers")
    found = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("Id"), str):
            continue
        names = item.get("Names") or []
        name = names[0] if names and isinstance(names[0], str) else ""
        image = item.get("Image")
        found[item["Id"]] = DockerContainer(item["Id"], name.lstrip("/"),
                                            image if isinstance(image, str) else "")
    return found


class DockerClient:
    """Container names and images from the Docker Engine API (GET /containers/json?all=1).

    Silently absent when there is no socket. The list is cached: asked for an id it does not
    hold, it fetches again, but at most once per `min_interval` seconds, and it never uses a
    list older than `max_age` seconds while it could fetch. A failed request leaves the last
    list and the reason in `error`."""

    def __init__(self, socket_path: str = DOCKER_SOCKET, timeout: float = 0.5,
                 min_interval: float = 2.0, max_age: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        self._min_interval = min_interval
        self._max_age = max_age
        self._clock = clock
        self._containers: dict[str, DockerContainer] = {}
        self._fetched_at: float | None = None
        self.fetches = 0  # requests made
        self.error = ""  # why the last request failed, "" when it did not

    @property
    def available(self) -> bool:
        return os.path.exists(self.socket_path)

    def get(self, container_id: str) -> DockerContainer | None:
        found = self._containers.get(container_id)
        if self._due(stale_only=found is not None):
            self.refresh()
            found = self._containers.get(container_id)
        return found

    def _due(self, stale_only: bool) -> bool:
        if self._fetched_at is None:
            return True
        age = self._clock() - self._fetched_at
        return age >= self._max_age if stale_only else age >= self._min_interval

    def refresh(self) -> None:
        self._fetched_at = self._clock()
        if not self.available:
            self._containers, self.error = {}, ""
            return
        self.fetches += 1
        try:
            self._containers = parse_containers_json(self._request("/containers/json?all=1"))
            self.error = ""
        except (OSError, http.client.HTTPException, ValueError) as err:
            self.error = f"{self.socket_path}: {err}"

    def _request(self, path: str) -> bytes:
        conn = _UnixHTTPConnection(self.socket_path, self.timeout)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                raise ValueError(f"HTTP {response.status} for {path}")
            return body
        finally:
            conn.close()


# -- putting it together ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContainerInfo:
    """Where a process runs: its cgroup v2 path and, inside a container, which one."""

    path: str = ""  # "" when unknown
    container_id: str = ""  # a systemd unit's name for processes of a unit
    name: str = ""  # from the runtime when it can tell (Docker), else ""
    runtime: str = ""  # parse_container's runtimes
    image: str = ""


def label(info: ContainerInfo) -> str:
    """What the views show: the container's name, else its short id, else the unit."""
    if info.name:
        return info.name
    if info.runtime == "systemd":
        return info.container_id
    return info.container_id[:12]


class ContainerResolver:
    """cgroup id (or pid) -> ContainerInfo, cached per cgroup.

    With `docker` (--disable-docker-mon turns it off), Docker containers get their names and
    images from the Docker Engine API; a container Docker does not know yet is asked about
    again on later look-ups (the client limits how often it asks)."""

    MAX_CACHED = 4096

    def __init__(self, docker: bool = True, *, paths: CgroupPaths | None = None,
                 docker_client: DockerClient | None = None,
                 proc: Path = Path("/proc")) -> None:
        self._paths = paths if paths is not None else CgroupPaths()
        self._docker = (docker_client or DockerClient()) if docker else None
        self._proc = proc
        self._by_id: dict[int, ContainerInfo] = {}
        self._by_path: dict[str, ContainerInfo] = {}

    @property
    def paths(self) -> CgroupPaths:
        return self._paths

    @property
    def docker(self) -> DockerClient | None:
        return self._docker

    def lookup(self, cgroup_id: int) -> ContainerInfo:
        """The cgroup with this v2 id; ContainerInfo() when it cannot be found."""
        cached = self._by_id.get(cgroup_id)
        if cached is not None:
            return cached
        path = self._paths.path(cgroup_id)
        if path is None:
            return ContainerInfo()
        info = self.for_path(path)
        if self._complete(info):
            self._remember(self._by_id, cgroup_id, info)
        return info

    def for_pid(self, pid: int) -> ContainerInfo:
        """The process's cgroup (its /proc/PID/cgroup); ContainerInfo() when it is gone."""
        try:
            text = (self._proc / str(pid) / "cgroup").read_text()
        except OSError:
            return ContainerInfo()
        path = cgroup_of_pid(text)
        info = self.for_path(path) if path else ContainerInfo()
        if not info.container_id or info.runtime == "systemd":
            cid, runtime = container_in_proc_cgroup(text)  # a container in v1 hierarchies
            if cid and runtime != "systemd":
                info = self._named(ContainerInfo(path, cid, "", runtime))
        return info

    def for_path(self, path: str) -> ContainerInfo:
        cached = self._by_path.get(path)
        if cached is not None:
            return cached
        cid, runtime = parse_container(path)
        info = self._named(ContainerInfo(path, cid, "", runtime))
        if self._complete(info):
            self._remember(self._by_path, path, info)
        return info

    def _named(self, info: ContainerInfo) -> ContainerInfo:
        if self._docker is None or info.runtime != "docker" or not info.container_id:
            return info
        found = self._docker.get(info.container_id)
        if found is None:
            return info
        return ContainerInfo(info.path, info.container_id, found.name, info.runtime,
                             found.image)

    def _complete(self, info: ContainerInfo) -> bool:
        """Nothing more to learn: not a Docker container, or named, or Docker is off."""
        return (info.runtime != "docker" or bool(info.name) or self._docker is None
                or not self._docker.available)

    def _remember(self, cache: dict, key: object, info: ContainerInfo) -> None:
        if len(cache) >= self.MAX_CACHED:
            del cache[next(iter(cache))]
        cache[key] = info
