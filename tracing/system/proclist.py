"""The system's processes for the picker, read with psutil; the name and command line, which
the process chooses, are read bounded (tracing.system.processes.read_cmdline), not through psutil,
which reads a command line whole."""

from __future__ import annotations

import os
from dataclasses import dataclass

import psutil

from tracing.boundary.untrusted_files import read_proc
from tracing.system.processes import read_cmdline

_ATTRS = ["pid", "ppid", "username", "cpu_percent", "memory_info", "num_threads",
          "create_time"]
COMM_MAX = 64  # the kernel keeps 16 bytes


def process_name(pid: int, cmdline: tuple[str, ...]) -> str:
    """The comm, or, as ps shows it, the program's file name when the comm (cut at 15
    characters) is its start."""
    comm = read_proc(pid, "comm", COMM_MAX)
    name = comm.data.decode(errors="replace").rstrip("\n") if comm else ""
    if len(name) >= 15 and cmdline:
        program = os.path.basename(cmdline[0])
        if program.startswith(name):
            return program
    return name


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
        cmdline = read_cmdline(info["pid"]) or ()
        entries.append(ProcessEntry(
            pid=info["pid"],
            user=info["username"] or "?",
            name=process_name(info["pid"], cmdline) or "?",
            cmdline=cmdline,
            cpu_pct=info["cpu_percent"] or 0.0,
            rss=memory.rss if memory else 0,
            threads=info["num_threads"] or 0,
            create_time=info["create_time"] or 0.0,
        ))
    return entries
