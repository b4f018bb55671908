"""Recorded snapshot streams: save a trace's snapshots to a file and read them back, so the
same TUI runs from a recording without root (tests, demos, bug reports).

Format: gzip'd JSON lines, one snapshot per line, preceded by a header line
{"format": "sikte-tui-snapshots", "version": 1}.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from tracing.errors import UserError
from tracing.model.connections import Connection
from tracing.model.samples import StackSample
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
    event_objects,
)

FORMAT = "sikte-tui-snapshots"
VERSION = 1


def _stats_to_list(stats: Any) -> list[list[Any]]:
    return [[k.pid, k.tid, k.nr, s.count, s.errors, s.total_ns, s.min_ns, s.max_ns,
             [list(p) for p in s.hist]] for k, s in stats.items()]


def _stats_from_list(rows: list[list[Any]]) -> dict[StatKey, SyscallStats]:
    return {
        StatKey(pid, tid, nr): SyscallStats(count, errors, total, mn, mx,
                                            tuple(tuple(p) for p in hist))
        for pid, tid, nr, count, errors, total, mn, mx, hist in rows
    }


def _exit_to(e: ExitStatus | None) -> list[int | None] | None:
    return None if e is None else [e.code, e.signal]


def _exit_from(v: list[int | None] | None) -> ExitStatus | None:
    return None if v is None else ExitStatus(v[0], v[1])


def _process_to(p: ProcessInfo) -> dict[str, Any]:
    return {"pid": p.pid, "ppid": p.ppid, "comm": p.comm, "exe": p.exe,
            "cmdline": list(p.cmdline), "abi": p.abi, "start_ts_ns": p.start_ts_ns,
            "exit_ts_ns": p.exit_ts_ns, "exit": _exit_to(p.exit), "threads": sorted(p.threads),
            "container": p.container}


def _process_from(d: dict[str, Any]) -> ProcessInfo:
    return ProcessInfo(d["pid"], d["ppid"], d["comm"], d["exe"], tuple(d["cmdline"]),
                       d["abi"], d["start_ts_ns"], d["exit_ts_ns"], _exit_from(d["exit"]),
                       frozenset(d["threads"]), d.get("container", ""))


def snapshot_to_dict(s: Snapshot) -> dict[str, Any]:
    return {
        "seq": s.seq, "ts_ns": s.ts_ns, "wall_time": s.wall_time,
        "start_ts_ns": s.start_ts_ns, "start_wall_time": s.start_wall_time,
        "arch": s.arch, "state": s.state, "interval_s": s.interval_s,
        "stats": _stats_to_list(s.stats), "interval": _stats_to_list(s.interval),
        "processes": [_process_to(p) for p in s.processes.values()],
        "events": [[e.ts_ns, e.pid, e.tid, e.nr, e.ret, e.duration_ns, list(e.args)]
                   for e in event_objects(s.events)],
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
        "probes": {str(nr): name for nr, name in s.probes.items()},
        "connections": [dataclasses.astuple(c) for c in s.connections],
        "tcp_monitored": s.tcp_monitored,
    }


def _events_array(rows: list[list[Any]]) -> np.ndarray:
    batch = np.array([(ts, pid, tid, nr, ret, dur, tuple(args))
                      for ts, pid, tid, nr, ret, dur, args in rows], dtype=EVENT_DTYPE)
    batch.setflags(write=False)
    return batch


def snapshot_from_dict(d: dict[str, Any]) -> Snapshot:
    return Snapshot(
        seq=d["seq"], ts_ns=d["ts_ns"], wall_time=d["wall_time"],
        start_ts_ns=d["start_ts_ns"], start_wall_time=d["start_wall_time"],
        arch=d["arch"], state=TraceState(d["state"]),
        stats=_stats_from_list(d["stats"]), interval=_stats_from_list(d["interval"]),
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
    )


def save_snapshots(path: Path, snapshots: Iterable[Snapshot]) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(json.dumps({"format": FORMAT, "version": VERSION}) + "\n")
        for s in snapshots:
            f.write(json.dumps(snapshot_to_dict(s), separators=(",", ":")) + "\n")


def load_snapshots(path: Path) -> list[Snapshot]:
    """Read a recording; UserError with one line for a missing, foreign or corrupt file."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            header = json.loads(f.readline())
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                raise UserError(f"{path} is not a sikte-tui snapshot recording")
            if header.get("version", 0) > VERSION:
                raise UserError(f"{path} was written by a newer sikte-tui; upgrade to read it")
            return [snapshot_from_dict(json.loads(line)) for line in f if line.strip()]
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (OSError, EOFError, ValueError, KeyError, TypeError) as err:
        raise UserError(f"{path} is unreadable or corrupt ({err.__class__.__name__})") from None
