"""Where tracefs is, mounting it when it is missing, and reading tracepoint formats.

bcc reads tracepoint formats from tracefs when it compiles TRACEPOINT_PROBEs, so the engine
makes sure it is mounted first.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from pathlib import Path

CANDIDATES = (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))


def find_root(candidates: tuple[Path, ...] = CANDIDATES) -> Path | None:
    """The mounted tracefs (a directory with an `events` folder), if any."""
    for root in candidates:
        if (root / "events").is_dir():
            return root
    return None


def mount(target: Path = CANDIDATES[0]) -> str | None:
    """Mount tracefs at target; returns None on success, else why it failed."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.mount(b"nodev", str(target).encode(), b"tracefs", 0, None) != 0:
        return os.strerror(ctypes.get_errno())
    return None


def ensure_mounted() -> Path | None:
    """The tracefs root, mounting it first when missing and we may (root)."""
    root = find_root()
    if root is None and os.geteuid() == 0 and CANDIDATES[0].is_dir() and mount() is None:
        root = find_root()
    return root


@functools.cache
def has_field(system: str, event: str, name: str) -> bool:
    """Whether a tracepoint's format has a field (formats differ between kernels)."""
    root = find_root()
    if root is None:
        return False
    try:
        text = (root / "events" / system / event / "format").read_text()
    except OSError:
        return False
    return any(
        line.strip().startswith("field:") and line.split(";")[0].split()[-1] == name
        for line in text.splitlines()
    )


def has_event(system: str, event: str) -> bool:
    """Whether the kernel has this tracepoint."""
    root = find_root()
    return root is not None and (root / "events" / system / event / "format").exists()
