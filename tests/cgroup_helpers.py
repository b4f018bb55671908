"""A cgroup v2 made for a test (needs root): the ebpf tests place a workload in it to check
what the tracer reads of cgroups and containers."""

from __future__ import annotations

import contextlib
import errno
import time
from collections.abc import Iterator
from pathlib import Path

from tracing.net.cgroups import cgroup2_mount

# A process that just exited may keep its cgroup busy for a moment.
RMDIR_DEADLINE_S = 10.0


@contextlib.contextmanager
def made_cgroup(name: str) -> Iterator[Path]:
    """A new cgroup `name` right under the cgroup2 mount, removed when done."""
    mount = cgroup2_mount()
    assert mount is not None, "no cgroup2 mount in /proc/self/mounts"
    path = mount / name
    path.mkdir()
    try:
        yield path
    finally:
        _remove(path)


def _remove(path: Path) -> None:
    deadline = time.monotonic() + RMDIR_DEADLINE_S
    while True:
        try:
            path.rmdir()
            return
        except OSError as err:
            if err.errno != errno.EBUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
