"""Which container (or systemd unit) a process or a cgroup id belongs to, with caches.

ContainerResolver puts the cgroup tree (tracing.net.cgroups) and the Docker Engine API
(tracing.net.docker_api) together, with caches; it blocks. BackgroundResolver runs it on a
thread of its own, so that the tracer's engine thread only reads a cache (a miss is answered
on a later tick).

/proc/PID/cgroup is read size-bounded without following symbolic links; the Docker client
keeps its own deadlines and trusts only root's socket.

No bcc, no Textual. Nothing is read at import time or construction: the first look-up does.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tracing.boundary.untrusted_files import Limits, Refused, read_untrusted
from tracing.net.cgroups import (
    CgroupPaths,
    cgroup_of_pid,
    container_in_proc_cgroup,
    parse_container,
)
from tracing.net.docker_api import DockerClient

PROC_CGROUP_MAX = 64 << 10  # of /proc/PID/cgroup: a line per hierarchy, paths users may name

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

    def _remember(self, cache: dict[Any, ContainerInfo], key: object, info: ContainerInfo) -> None:
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
            answers: dict[_Key, tuple[ContainerInfo | None, bool]] = {
                key: (info, r.complete(info))}
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
