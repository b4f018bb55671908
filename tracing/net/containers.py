"""Which container (or systemd unit) a process or a cgroup id belongs to.

bpf_get_current_cgroup_id() gives a cgroup v2 id: the inode number of the cgroup's directory
under the cgroup2 mount. CgroupPaths maps ids back to paths by walking that tree;
parse_container() reads a container id and runtime out of a path (pure, no I/O); DockerClient
asks the Docker Engine API for names and images; ContainerResolver puts them together, with
caches; BackgroundResolver runs it on a thread of its own, so that the tracer's engine thread
only reads a cache (a miss is answered on a later tick).

Everything here that talks to the outside is bounded: a Docker request has a total deadline,
a size bound, a back-off after failures, and is made only to a socket root owns and serves;
/proc/PID/cgroup is read size-bounded without following symbolic links; the cgroup walk
stops at MAX_CGROUPS.

No bcc, no Textual. Nothing is read at import time or construction: the first look-up does.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import stat
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tracing.boundary.untrusted_files import Limits, Refused, read_untrusted

DOCKER_SOCKET = "/var/run/docker.sock"
PROC_MOUNTS = Path("/proc/self/mounts")
PROC_CGROUP_MAX = 64 << 10  # of /proc/PID/cgroup: a line per hierarchy, paths users may name
# The cgroup tree walked for id -> path: users with a delegated subtree choose its size.
MAX_CGROUPS = 200_000

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
                if len(paths) >= MAX_CGROUPS:  # the rest stays unknown
                    return paths
        return paths


# -- Docker ----------------------------------------------------------------------------------

# A request's whole life (connect, send, the complete answer) fits in DOCKER_DEADLINE_S: a
# per-read timeout alone would let a socket that sends a byte every 0.3 s keep it forever.
DOCKER_DEADLINE_S = 1.0
# The largest answer read: /containers/json of a thousand containers is a few megabytes.
DOCKER_MAX_RESPONSE = 16 << 20
_MAX_HEAD = 64 << 10  # the status line and headers
# After a failed request the next waits this long, doubling up to the maximum: a broken or
# hostile socket is not asked at every look-up.
DOCKER_BACKOFF_S = 5.0
DOCKER_MAX_BACKOFF_S = 120.0


class DockerError(Exception):
    """Why a request to the Docker socket failed or was not made, in a few words."""


@dataclass(frozen=True, slots=True)
class DockerContainer:
    id: str
    name: str
    image: str


def check_docker_socket(path: str) -> None:
    """DockerError unless `path` is a unix socket owned by root, itself and not through a
    symbolic link: anyone can make a socket, and its answers name the containers the views
    show. The peer's credentials are checked again once connected (check_docker_peer)."""
    st = os.lstat(path)  # FileNotFoundError and the like are the caller's OSError
    if stat.S_ISLNK(st.st_mode):
        raise DockerError("is a symbolic link; only root's own socket is trusted")
    if not stat.S_ISSOCK(st.st_mode):
        raise DockerError("is not a socket")
    if st.st_uid != 0:
        raise DockerError(f"belongs to uid {st.st_uid}, not root; not trusted")


def check_docker_peer(sock: socket.socket) -> None:
    """DockerError unless the process that listens on the connected socket runs as root: the
    name may have been replaced between check_docker_socket and connect()."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    if uid != 0:
        raise DockerError(f"is served by uid {uid}, not root; not trusted")


class _Reader:
    """Reads an HTTP answer from a socket within a total deadline and a size bound (of the
    body; the head may add _MAX_HEAD)."""

    def __init__(self, sock: socket.socket, deadline: float, max_bytes: int) -> None:
        self._sock = sock
        self._deadline = deadline
        self._left = max_bytes + _MAX_HEAD  # bytes that may still be received
        self._max_bytes = max_bytes
        self.buf = bytearray()
        self.eof = False

    def fill(self) -> None:
        """At least one more byte in buf, or eof; TimeoutError past the deadline."""
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        if self._left <= 0:
            raise DockerError(f"answer larger than {self._max_bytes:,} bytes")
        self._sock.settimeout(remaining)
        chunk = self._sock.recv(min(65536, self._left))
        if not chunk:
            self.eof = True
        self._left -= len(chunk)
        self.buf += chunk

    def until(self, marker: bytes, limit: int) -> bytes:
        """Everything up to and without `marker`, taken out of buf."""
        while (end := self.buf.find(marker)) < 0:
            if len(self.buf) > limit:
                raise DockerError("malformed answer (a line too long)")
            self.fill()
            if self.eof:
                raise DockerError("answer cut short")
        found = bytes(self.buf[:end])
        del self.buf[: end + len(marker)]
        return found

    def exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            self.fill()
            if self.eof:
                raise DockerError("answer cut short")
        found = bytes(self.buf[:n])
        del self.buf[:n]
        return found

    def to_eof(self) -> bytes:
        while not self.eof:
            self.fill()
        found = bytes(self.buf)
        self.buf.clear()
        return found


def _read_answer(reader: _Reader, max_bytes: int) -> tuple[int, bytes]:
    """(status, body) of an HTTP/1.x answer: Content-Length, chunked, or up to the close."""
    head = reader.until(b"\r\n\r\n", _MAX_HEAD).decode("latin-1").split("\r\n")
    parts = head[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise DockerError("not an HTTP answer")
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return int(parts[1]), _read_chunked(reader)
    length = headers.get("content-length")
    if length is None:
        return int(parts[1]), reader.to_eof()
    if not length.isdigit():
        raise DockerError("malformed Content-Length")
    if int(length) > max_bytes:
        raise DockerError(f"answer larger than {max_bytes:,} bytes")
    return int(parts[1]), reader.exactly(int(length))


def _read_chunked(reader: _Reader) -> bytes:
    body = bytearray()
    while True:
        size_text = reader.until(b"\r\n", 1024).split(b";")[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise DockerError("malformed chunk size") from None
        if size == 0:
            return bytes(body)  # trailers, if any, are not needed
        body += reader.exactly(size)
        reader.exactly(2)  # the CRLF after each chunk


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
        name = names[0] if isinstance(names, list) and names and isinstance(names[0], str) else ""
        image = item.get("Image")
        found[item["Id"]] = DockerContainer(item["Id"], name.lstrip("/"),
                                            image if isinstance(image, str) else "")
    return found


class DockerClient:
    """Container names and images from the Docker Engine API (GET /containers/json?all=1).

    Silently absent when there is no socket. The list is cached: asked for an id it does not
    hold, it fetches again, but at most once per `min_interval` seconds, and it never uses a
    list older than `max_age` seconds while it could fetch. Each request has a total
    `deadline` and a size bound; a failed one leaves the last list, the reason in `error`,
    and no new request before a back-off (DOCKER_BACKOFF_S, doubling) has passed. The socket
    must be root's (check_docker_socket, check_docker_peer).

    Blocking: call it from a worker thread (BackgroundResolver), never the engine's."""

    def __init__(self, socket_path: str | None = None, deadline: float = DOCKER_DEADLINE_S,
                 min_interval: float = 2.0, max_age: float = 30.0,
                 max_response: int = DOCKER_MAX_RESPONSE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        # Read here, not as a default argument: tests point the module's DOCKER_SOCKET at
        # a fake daemon.
        self.socket_path = socket_path if socket_path is not None else DOCKER_SOCKET
        self.deadline = deadline
        self.max_response = max_response
        self._min_interval = min_interval
        self._max_age = max_age
        self._clock = clock
        self._containers: dict[str, DockerContainer] = {}
        self._fetched_at: float | None = None
        self._retry_at: float | None = None  # set after a failure
        self._backoff = 0.0
        self._lock = threading.Lock()  # the socket of the request in flight, for abort()
        self._sock: socket.socket | None = None
        self._aborted = False
        self.fetches = 0  # requests made
        self.error = ""  # why the last request failed, "" when it did not

    @property
    def available(self) -> bool:
        return os.path.lexists(self.socket_path)

    def get(self, container_id: str) -> DockerContainer | None:
        found = self._containers.get(container_id)
        if self._due(stale_only=found is not None):
            self.refresh()
            found = self._containers.get(container_id)
        return found

    def _due(self, stale_only: bool) -> bool:
        now = self._clock()
        if self._retry_at is not None and now < self._retry_at:
            return False
        if self._fetched_at is None:
            return True
        age = now - self._fetched_at
        return age >= self._max_age if stale_only else age >= self._min_interval

    def refresh(self) -> None:
        self._fetched_at = self._clock()
        if not self.available or self._aborted:
            self._containers, self.error = {}, ""
            return
        self.fetches += 1
        try:
            self._containers = parse_containers_json(self._request("/containers/json?all=1"))
        except (OSError, DockerError, ValueError) as err:
            self._failed(f"{self.socket_path}: {err or type(err).__name__}")
        else:
            self.error, self._retry_at, self._backoff = "", None, 0.0

    def _failed(self, reason: str) -> None:
        self.error = reason
        self._backoff = min(DOCKER_MAX_BACKOFF_S, max(DOCKER_BACKOFF_S, 2 * self._backoff))
        self._retry_at = self._clock() + self._backoff

    def _request(self, path: str) -> bytes:
        deadline = time.monotonic() + self.deadline
        check_docker_socket(self.socket_path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with self._lock:
            self._sock = sock
            aborted = self._aborted  # abort() came before this socket was there to shut
        try:
            if aborted:
                raise DockerError("stopped")
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            sock.connect(self.socket_path)
            check_docker_peer(sock)
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n"
                         "Accept: application/json\r\n\r\n".encode())
            status, body = _read_answer(_Reader(sock, deadline, self.max_response),
                                        self.max_response)
        except TimeoutError:  # the socket's timeout is what was left of the deadline
            raise DockerError(f"no complete answer within {self.deadline:g} s") from None
        finally:
            with self._lock:
                self._sock = None
            sock.close()
        if status != 200:
            raise DockerError(f"HTTP {status} for {path}")
        return body

    def abort(self) -> None:
        """End the request in flight now (from another thread) and make no more."""
        with self._lock:
            self._aborted = True
            if self._sock is not None:
                with contextlib.suppress(OSError):  # already closed: nothing to end
                    self._sock.shutdown(socket.SHUT_RDWR)


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


class ContainerLookup(Protocol):
    """What the connections need: cgroup id -> ContainerInfo, ContainerInfo() when unknown
    (yet). BackgroundResolver answers at once from its cache; ContainerResolver blocks."""

    def lookup(self, cgroup_id: int) -> ContainerInfo: ...


class ContainerResolver:
    """cgroup id (or pid) -> ContainerInfo, cached per cgroup.

    With `docker` (--disable-docker-mon turns it off), Docker containers get their names and
    images from the Docker Engine API; a container Docker does not know yet is asked about
    again on later look-ups (the client limits how often it asks).

    Blocking (it walks the cgroup tree, reads /proc and asks Docker): the tracer uses it
    through a BackgroundResolver."""

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
        if self.complete(info):
            self._remember(self._by_id, cgroup_id, info)
        return info

    def for_pid(self, pid: int) -> ContainerInfo:
        """The process's cgroup (its /proc/PID/cgroup); ContainerInfo() when it is gone."""
        return self.placed(pid)[0]

    def placed(self, pid: int) -> tuple[ContainerInfo, str]:
        """for_pid, and the cgroup v2 path that info is of ("" when it comes from a v1
        hierarchy or is unknown): the id of that path may be looked up the same."""
        try:
            text = read_untrusted(self._proc / str(pid) / "cgroup",
                                  Limits(PROC_CGROUP_MAX, truncate=True)).data.decode(
                                      errors="replace")
        except (OSError, Refused):
            return ContainerInfo(), ""
        path = cgroup_of_pid(text)
        info = self.for_path(path) if path else ContainerInfo()
        if not info.container_id or info.runtime == "systemd":
            cid, runtime = container_in_proc_cgroup(text)  # a container in v1 hierarchies
            if cid and runtime != "systemd":
                return self._named(ContainerInfo(path, cid, "", runtime)), ""
        return info, path

    def for_path(self, path: str) -> ContainerInfo:
        cached = self._by_path.get(path)
        if cached is not None:
            return cached
        cid, runtime = parse_container(path)
        info = self._named(ContainerInfo(path, cid, "", runtime))
        if self.complete(info):
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

    def complete(self, info: ContainerInfo) -> bool:
        """Nothing more to learn: not a Docker container, or named, or Docker is off."""
        return (info.runtime != "docker" or bool(info.name) or self._docker is None
                or not self._docker.available)

    def _remember(self, cache: dict, key: object, info: ContainerInfo) -> None:
        if len(cache) >= self.MAX_CACHED:
            del cache[next(iter(cache))]
        cache[key] = info


_Key = tuple[str, int]  # ("cgroup", cgroup id) or ("pid", pid)


class BackgroundResolver:
    """A ContainerResolver on a thread of its own, for the engine thread, which must never
    wait on a cgroup walk, a /proc read or the Docker socket.

    `lookup(cgroup_id)` and `for_pid(pid)` answer at once from a cache; a miss asks the
    worker, and the answer is there on a later call (a later tick). The queue of questions is
    bounded: past `max_pending` the oldest are dropped (asked again at their next miss), and
    the newest are answered first. `close()` returns at once; a Docker request in flight is
    cut short."""

    MAX_PENDING = 1024
    MAX_CACHED = 4096
    # A question whose answer was incomplete (a cgroup not found yet, a Docker container not
    # named yet) is asked again at most this often.
    RETRY_S = 1.0

    def __init__(self, resolver: ContainerResolver, max_pending: int = MAX_PENDING,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.resolver = resolver
        self._max_pending = max_pending
        self._clock = clock
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending: OrderedDict[_Key, None] = OrderedDict()
        self._answers: dict[_Key, ContainerInfo] = {}
        self._retry_at: dict[_Key, float] = {}  # incomplete answers: when to ask again
        self._in_flight: _Key | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self.dropped = 0  # questions pushed out of the queue by newer ones
        self.error = ""  # the last unexpected failure of the worker, "" when none

    def lookup(self, cgroup_id: int) -> ContainerInfo:
        """The cgroup's info if known, else ContainerInfo() (asked; known on a later call)."""
        return self._answer(("cgroup", cgroup_id)) or ContainerInfo()

    def for_pid(self, pid: int) -> ContainerInfo | None:
        """The process's info if known, else None (asked; known on a later call)."""
        return self._answer(("pid", pid))

    def label_of_pid(self, pid: int) -> str | None:
        """label() of the process's info, None while it is not known (ProcessTracker)."""
        info = self.for_pid(pid)
        return None if info is None else label(info)

    def pending(self) -> list[_Key]:
        """The questions waiting, oldest first (for tests and diagnostics)."""
        with self._lock:
            return list(self._pending)

    def close(self) -> None:
        """Stop the worker without waiting for it; a request in flight ends at once."""
        with self._lock:
            self._closed = True
            self._pending.clear()
            self._wake.notify()
        if self.resolver.docker is not None:
            self.resolver.docker.abort()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker to end (tests); True when it has."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self._thread is None or not self._thread.is_alive()

    # -- the engine's side: a dict look-up and maybe a question ----------------------------

    def _answer(self, key: _Key) -> ContainerInfo | None:
        with self._lock:
            found = self._answers.get(key)
            retry_at = self._retry_at.get(key)
            never_asked = found is None and retry_at is None
            if never_asked or (retry_at is not None and self._clock() >= retry_at):
                self._ask(key)
            return found

    def _ask(self, key: _Key) -> None:
        """Queue a question (the lock is held)."""
        if self._closed or key in self._pending or key == self._in_flight:
            return
        self._pending[key] = None
        while len(self._pending) > self._max_pending:
            self._pending.popitem(last=False)
            self.dropped += 1
        if self._thread is None:  # started by the first question, not at construction
            self._thread = threading.Thread(target=self._run, name="sikte-containers",
                                            daemon=True)
            self._thread.start()
        self._wake.notify()

    # -- the worker ------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                key, _ = self._pending.popitem(last=True)  # the newest first
                self._in_flight = key
            answers = self._resolve(key)
            with self._lock:
                self._in_flight = None
                for k, (info, complete) in answers.items():
                    self._publish(k, info, complete)

    def _resolve(self, key: _Key) -> dict[_Key, tuple[ContainerInfo | None, bool]]:
        """Answers to publish: key -> (info or None when not found, complete)."""
        r = self.resolver
        try:
            if key[0] == "cgroup":
                info = r.lookup(key[1])
                return {key: (info if info.path else None, r.complete(info))}
            info, v2_path = r.placed(key[1])
            answers = {key: (info, r.complete(info))}
            cgroup_id = r.paths.id_of(v2_path) if v2_path else None
            if cgroup_id is not None:  # its connections will ask for its cgroup's id
                answers[("cgroup", cgroup_id)] = (info, r.complete(info))
            return answers
        except Exception as err:  # a bug must not end the look-ups for good
            # Kept for diagnostics and answered as unknown (asked again after RETRY_S); a
            # traceback from this thread would land on the TUI's screen.
            self.error = f"container look-up of {key[0]} {key[1]} failed: {err!r}"
            return {key: (None, False)}

    def _publish(self, key: _Key, info: ContainerInfo | None, complete: bool) -> None:
        """Store an answer (the lock is held)."""
        if info is not None:
            if key not in self._answers and len(self._answers) >= self.MAX_CACHED:
                del self._answers[next(iter(self._answers))]
            self._answers[key] = info
        if complete and info is not None:
            self._retry_at.pop(key, None)
        else:
            if key not in self._retry_at and len(self._retry_at) >= self.MAX_CACHED:
                del self._retry_at[next(iter(self._retry_at))]
            self._retry_at[key] = self._clock() + self.RETRY_S
