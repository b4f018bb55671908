"""The system's processes for the picker, read with psutil."""

from __future__ import annotations

from dataclasses import dataclass

import psutil

_ATTRS = ["pid", "ppid", "username", "name", "cmdline", "cpu_percent", "memory_info",
          "num_threads", "create_time"]


@dataclass(frozen=True, slots=True)
class ProcessEntry:
    pid: int
    user: str
    name: str
    cmdline: tuple[str, ...]
    cpu_pct: float
    rss: int
    threads: int
    create_time: float


def list_processes() -> list[ProcessEntry]:
    """User-space processes (kernel threads cannot be traced and are left out).

    psutil keeps the Process objects between calls, so CPU% is measured since the last call.
    """
    entries = []
    for proc in psutil.process_iter(_ATTRS):
        info = proc.info
        if info["pid"] == 2 or info["ppid"] == 2 or info["pid"] == 0:
            continue
        memory = info["memory_info"]
        entries.append(ProcessEntry(
            pid=info["pid"],
            user=info["username"] or "?",
            name=info["name"] or "?",
            cmdline=tuple(info["cmdline"] or ()),
            cpu_pct=info["cpu_percent"] or 0.0,
            rss=memory.rss if memory else 0,
            threads=info["num_threads"] or 0,
            create_time=info["create_time"] or 0.0,
        ))
    return entries
