"""cgroup v2 ids and paths: which container or systemd unit a cgroup path names, and where
a cgroup with a given id is.

bpf_get_current_cgroup_id() gives a cgroup v2 id: the inode number of the cgroup's directory
under the cgroup2 mount. CgroupPaths maps ids back to paths by walking that tree (bounded:
the walk stops at MAX_CGROUPS); parse_container() reads a container id and runtime out of a
path, and the /proc/PID/cgroup helpers read one out of that file's text (pure, no I/O).

No bcc, no Textual. Nothing is read at import time or construction: the first look-up does.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path

PROC_MOUNTS = Path("/proc/self/mounts")
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
