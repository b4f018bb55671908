"""Recorded snapshot streams: save a trace's snapshots to a file and read them back, so the
same TUI runs from a recording without root (tests, demos, bug reports).

Format: gzip'd JSON lines, one snapshot per line, preceded by a header line
{"format": "sikte-tui-snapshots", "version": 1}. Since issue 15 a snapshot's line may also
hold its events' captured fields (`event_data`, base64), the path names added since the
previous line (`paths`: [[id, base64 name], ...]; one table for the whole recording), the
per-file totals (`files`) and the event selection; recordings without them read as before.
Since issue 16 each stats row ends with its call's ABI code; in older recordings a row takes
its process's ABI. Each process also has its threads' names (`thread_names`: [[tid, name],
...]), those still running (`live_threads`, null: not known) and how many it had
(`threads_seen`, `thread_names_dropped`); older recordings have its threads unnamed.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from syscall_tables import abi_code
from tracing.errors import UserError
from tracing.model.connections import Connection
from tracing.model.files import FileKey, FileStats
from tracing.model.paths import PathTable
from tracing.model.samples import StackSample
from tracing.model.selection import EventSelection
from tracing.model.stats import (
    EVENT_DTYPE,
    Drops,
    ExitStatus,
    ProcessInfo,
    ProcEvent,
    ProcKind,
    Snapshot,
    StatKey,
    SyscallStats,
    TraceState,
)
from tracing.model.timing import timing_of
from tracing.system.threads import COMM_MAX, NAMES_MAX

FORMAT = "sikte-tui-snapshots"
VERSION = 1


def _stats_to_list(stats: Any) -> list[list[Any]]:
    return [[k.pid, k.tid, k.nr, s.count, s.errors, s.total_ns, s.min_ns, s.max_ns,
             [list(p) for p in s.hist], k.abi] for k, s in stats.items()]


def _stats_from_list(rows: list[list[Any]],
                     abis: dict[int, int]) -> dict[StatKey, SyscallStats]:
    """Rows of 10 fields, or of 9 (older recordings: the ABI is the process's, `abis`)."""
    return {
        StatKey(pid, tid, nr, abi[0] if abi else abis.get(pid, 0)): SyscallStats(
            count, errors, total, mn, mx, tuple(tuple(p) for p in hist))
        for pid, tid, nr, count, errors, total, mn, mx, hist, *abi in rows
    }


def _exit_to(e: ExitStatus | None) -> list[int | None] | None:
    return None if e is None else [e.code, e.signal]


def _exit_from(v: list[int | None] | None) -> ExitStatus | None:
    return None if v is None else ExitStatus(v[0], v[1])


def _process_to(p: ProcessInfo) -> dict[str, Any]:
    return {"pid": p.pid, "ppid": p.ppid, "comm": p.comm, "exe": p.exe,
            "cmdline": list(p.cmdline), "abi": p.abi, "start_ts_ns": p.start_ts_ns,
            "exit_ts_ns": p.exit_ts_ns, "exit": _exit_to(p.exit), "threads": sorted(p.threads),
            "container": p.container,
            "live_threads": None if p.live_threads is None else sorted(p.live_threads),
            "thread_names": sorted([tid, name] for tid, name in p.thread_names.items()),
            "threads_seen": p.threads_seen, "thread_names_dropped": p.thread_names_dropped}


def _process_from(d: dict[str, Any]) -> ProcessInfo:
    live = d.get("live_threads")
    return ProcessInfo(d["pid"], d["ppid"], d["comm"], d["exe"], tuple(d["cmdline"]),
                       d["abi"], d["start_ts_ns"], d["exit_ts_ns"], _exit_from(d["exit"]),
                       frozenset(d["threads"]), d.get("container", ""),
                       live_threads=None if live is None else frozenset(_ids(live)),
                       thread_names=_names(d.get("thread_names", ())),
                       threads_seen=_count(d.get("threads_seen", 0)),
                       thread_names_dropped=_count(d.get("thread_names_dropped", 0)))


def _ids(values: Iterable[Any]) -> list[int]:
    ids = list(values)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in ids):
        raise TypeError("a thread id that is not a number")
    return ids


def _count(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise TypeError("a thread count that is not a count")
    return value


def _names(pairs: Iterable[Any]) -> dict[int, str]:
    """[[tid, name], ...] as the tracker bounds them: at most NAMES_MAX names of at most
    COMM_MAX characters (a recording is outside input: anything else is refused)."""
    names: dict[int, str] = {}
    for pair in pairs:
        tid, name = pair
        if not isinstance(name, str) or len(name) > COMM_MAX or len(names) >= NAMES_MAX:
            raise ValueError("a thread name that is not one")
        names[_ids((tid,))[0]] = name
    return names


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _decoded_to(s: Snapshot, paths_from: int) -> dict[str, Any]:
    """The issue-15 fields of a snapshot: captured data, new path names, files, selection."""
    paths = s.paths
    sel = s.selection
    return {
        "event_data": [_b64(d) for d in s.event_data],
        "paths": [] if paths is None else [[i, _b64(paths.name(i))]
                                           for i in range(paths_from, len(paths))],
        "files": [[k.pid, k.path_id, v.opens, [list(e) for e in v.open_errors], v.calls,
                   v.reads, v.bytes_read, v.writes, v.bytes_written, v.io_ns]
                  for k, v in s.files.items()],
        "selection": None if sel is None else [sel.all, sel.failed, sel.slow_ns, sel.sample_n,
                                               sel.files],
    }


def _decoded_from(d: dict[str, Any], paths: PathTable) -> dict[str, Any]:
    """Snapshot keyword arguments from _decoded_to's fields (none in older recordings)."""
    for path_id, name in d.get("paths", ()):
        if path_id >= len(paths):
            paths.add(_unb64(name))
    fields: dict[str, Any] = {
        "event_data": tuple(_unb64(x) for x in d.get("event_data", ())),
        "paths": paths,
        "files": {FileKey(pid, path_id): FileStats(opens, tuple(tuple(e) for e in errors),
                                                   *io)
                  for pid, path_id, opens, errors, *io in d.get("files", ())},
    }
    if d.get("selection") is not None:
        fields["selection"] = EventSelection(*d["selection"])
    return fields


def snapshot_to_dict(s: Snapshot, paths_from: int = 0) -> dict[str, Any]:
    """One line of a recording; `paths_from`: the path ids earlier lines hold already."""
    return {
        "seq": s.seq, "ts_ns": s.ts_ns, "wall_time": s.wall_time,
        "start_ts_ns": s.start_ts_ns, "start_wall_time": s.start_wall_time,
        "arch": s.arch, "state": s.state, "interval_s": s.interval_s,
        "stats": _stats_to_list(s.stats), "interval": _stats_to_list(s.interval),
        "processes": [_process_to(p) for p in s.processes.values()],
        "events": [[*e[:6], [int(a) for a in e[6]], *e[7:]] for e in s.events.tolist()],
        "proc_events": [[e.ts_ns, e.kind, e.pid, e.tid, e.ppid, e.status, e.process_gone,
                         e.comm, e.filename] for e in s.proc_events],
        "drops": [s.drops.events, s.drops.stats_full, s.drops.proc_events, s.drops.inflight,
                  s.drops.events_sent, s.drops.stacks_missing, s.drops.stack_collisions,
                  s.drops.samples_lost, s.drops.tcp_events],
        "tracer_cpu_s": s.tracer_cpu_s, "target_exit": _exit_to(s.target_exit),
        "targets": list(s.targets),
        "samples": [[x.pid, x.tid, x.comm, list(x.frames), list(x.modules), x.kernel_frames,
                     x.count] for x in s.samples],
        "sample_hz": s.sample_hz, "samples_until_ns": s.samples_until_ns,
        "timing": s.timing,
        "probes": {str(nr): name for nr, name in s.probes.items()},
        "connections": [dataclasses.astuple(c) for c in s.connections],
        "tcp_monitored": s.tcp_monitored,
        **_decoded_to(s, paths_from),
    }


def _events_array(rows: list[list[Any]]) -> np.ndarray:
    """Rows of 7 fields (older recordings) or of all EVENT_DTYPE's."""
    extra = len(EVENT_DTYPE.names or ()) - 7
    batch = np.array([(ts, pid, tid, nr, ret, dur, tuple(args), *(rest or [0] * extra))
                      for ts, pid, tid, nr, ret, dur, args, *rest in rows], dtype=EVENT_DTYPE)
    batch.setflags(write=False)
    return batch


def snapshot_from_dict(d: dict[str, Any], paths: PathTable | None = None) -> Snapshot:
    """A recording's line; `paths`: the recording's path table, which the line adds to."""
    abis = {p["pid"]: abi_code(d["arch"], p["abi"] or "") for p in d["processes"]}
    return Snapshot(
        seq=d["seq"], ts_ns=d["ts_ns"], wall_time=d["wall_time"],
        start_ts_ns=d["start_ts_ns"], start_wall_time=d["start_wall_time"],
        arch=d["arch"], state=TraceState(d["state"]),
        stats=_stats_from_list(d["stats"], abis),
        interval=_stats_from_list(d["interval"], abis),
        interval_s=d["interval_s"],
        processes={p["pid"]: _process_from(p) for p in d["processes"]},
        events=_events_array(d["events"]),
        proc_events=tuple(ProcEvent(e[0], ProcKind(e[1]), *e[2:]) for e in d["proc_events"]),
        drops=Drops(*d["drops"]), tracer_cpu_s=d["tracer_cpu_s"],
        target_exit=_exit_from(d["target_exit"]), targets=tuple(d["targets"]),
        # Recordings from before CPU samples and function probes have none.
        samples=tuple(StackSample(pid, tid, comm, tuple(frames), tuple(modules), kernel, count)
                      for pid, tid, comm, frames, modules, kernel, count
                      in d.get("samples", ())),
        sample_hz=d.get("sample_hz", 0), samples_until_ns=d.get("samples_until_ns", 0),
        probes={int(nr): name for nr, name in d.get("probes", {}).items()},
        connections=tuple(Connection(*c) for c in d.get("connections", ())),
        tcp_monitored=d.get("tcp_monitored", True),
        timing=str(timing_of(d.get("timing"))),  # older recordings: exact
        **_decoded_from(d, PathTable() if paths is None else paths),
    )


def save_snapshots(path: Path, snapshots: Iterable[Snapshot]) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(json.dumps({"format": FORMAT, "version": VERSION}) + "\n")
        written = 0
        for s in snapshots:
            f.write(json.dumps(snapshot_to_dict(s, written), separators=(",", ":")) + "\n")
            written = max(written, len(s.paths) if s.paths is not None else 0)


def load_snapshots(path: Path) -> list[Snapshot]:
    """Read a recording; UserError with one line for a missing, foreign or corrupt file."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            header = json.loads(f.readline())
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                raise UserError(f"{path} is not a sikte-tui snapshot recording")
            if header.get("version", 0) > VERSION:
                raise UserError(f"{path} was written by a newer sikte-tui; upgrade to read it")
            paths = PathTable()
            return [snapshot_from_dict(json.loads(line), paths) for line in f if line.strip()]
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (OSError, EOFError, ValueError, KeyError, TypeError) as err:
        raise UserError(f"{path} is unreadable or corrupt ({err.__class__.__name__})") from None
