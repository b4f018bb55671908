"""Text from outside that tries to act instead of being shown: terminal control sequences,
Textual/Rich markup and a bidi override, put into every field of the replay fixture that the
TUI shows (process names, command lines, executables, containers, connections' processes and
containers, stack frames, modules, a probe's name, the session's title) and into a fake
process list for the picker.

The recorded data (tests/tui/data) is not changed; this builds on it, like
connections_fixture.py.
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

from tracing.model.connections import Connection
from tracing.model.probes import PROBE_NR_BASE
from tracing.model.samples import StackSample
from tracing.model.stats import ProcessInfo, Snapshot, StatKey, SyscallStats
from tracing.system.proclist import ProcessEntry

from .connections_fixture import with_connections

ESC = "\x1b[2J\x1b]0;X\x07"  # clear the screen, retitle the terminal, bell
MARKUP = "[/b]x[red"  # closes a tag never opened: Rich raises MarkupError
BIDI = "\u202eexe.txt"  # right-to-left override: reads as "txt.exe"
# What each looks like once shown (tracing.boundary.display_text.sanitize)
ESC_SHOWN = "\\x1b[2J\\x1b]0;X\\x07"
BIDI_SHOWN = "\\u202eexe.txt"

COMM = ESC  # a comm is at most 15 bytes in the kernel; ESC is 11
CMDLINE = (f"/tmp/{MARKUP}", ESC, BIDI)
CONTAINER = f"{MARKUP}{ESC}"
FRAME = f"{MARKUP}{ESC}"
MODULE = f"/tmp/{BIDI}"
PROBE_NR = PROBE_NR_BASE  # the first function probe's entry (tracing.model.probes)
PROBE = f"uprobe:{MARKUP}:{ESC}"
TITLE = f"{ESC} {MARKUP} {BIDI}"
HOSTILE_PID = 4242  # the synthetic curl of connections_fixture, renamed
MARKUP_NAMED = frozenset({19949, 19953})  # a workload and the python of the recording


def _process(info: ProcessInfo) -> ProcessInfo:
    # Some processes are named with markup: the tree shows both kinds of name.
    comm = MARKUP if info.pid in MARKUP_NAMED else COMM
    return info.replace(comm=comm, exe=f"/tmp/{ESC}", cmdline=CMDLINE, container=CONTAINER)


def _connection(c: Connection) -> Connection:
    return dataclasses.replace(c, comm=COMM, container_name=CONTAINER)


def _samples(pid: int, count: int) -> tuple[StackSample, ...]:
    frames = ("main", FRAME, f"{BIDI}()")
    return (StackSample(pid, pid, COMM, frames, (MODULE, MODULE, MODULE), 0, count),
            StackSample(pid, pid, COMM, ("main", MARKUP), (MODULE, "[kernel]"), 1, count))


def hostile(snapshots: list[Snapshot]) -> list[Snapshot]:
    """The recorded snapshots with the synthetic connections, every process, connection and
    stack named with the hostile strings, and a function probe with a hostile name."""
    out = []
    probe_stats = {StatKey(HOSTILE_PID, HOSTILE_PID, PROBE_NR):
                   SyscallStats(5, 1, 50_000, 5_000, 20_000, ((100, 5),))}
    for i, s in enumerate(with_connections(snapshots)):
        stats = {**s.stats, **probe_stats}
        interval = {**s.interval, **probe_stats} if i == 0 else dict(s.interval)
        out.append(dataclasses.replace(
            s, stats=MappingProxyType(stats), interval=MappingProxyType(interval),
            processes=MappingProxyType({pid: _process(p) for pid, p in s.processes.items()}),
            connections=tuple(_connection(c) for c in s.connections),
            samples=_samples(HOSTILE_PID, 10 * (i + 1)), sample_hz=99,
            probes=MappingProxyType({**s.probes, PROBE_NR: PROBE}),
            targets=(TITLE,)))
    return out


def hostile_processes(now: float) -> list[ProcessEntry]:
    """The picker's list: user names, process names and command lines from outside."""
    return [
        ProcessEntry(101, MARKUP, COMM, CMDLINE, 5.0, 1 << 20, 1, now - 60),
        ProcessEntry(102, ESC, MARKUP, (), 4.0, 1 << 20, 1, now - 60),  # no cmdline: [name]
        ProcessEntry(103, "alice", BIDI, (BIDI, "--x"), 3.0, 1 << 20, 1, now - 60),
    ]
