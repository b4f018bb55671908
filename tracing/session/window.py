"""A stored session as Snapshots: the whole session, or any stretch of it.

The whole session comes from the final aggregates (exact, with min and max); a stretch sums
the timeline's intervals that end inside it, histograms included, so its percentiles are as
good as the live ones. Pure: plain tables in, a Snapshot out.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from tracing.model.connections import Connection
from tracing.model.inflight import stored_inflight
from tracing.model.samples import StackSample
from tracing.model.selection import EventSelection
from tracing.model.stats import (
    HIST_BUCKETS,
    Drops,
    ExitStatus,
    ProcessInfo,
    Snapshot,
    StatKey,
    SyscallStats,
    TraceState,
    bucket_bounds,
    hist_from_dense,
)
from tracing.model.timing import timing_of
from tracing.session.schema import CONNECTION_COLUMNS
from tracing.session.stored_session import StoredSession
from tracing.session.stored_threads import process_threads, with_threads

SAVED = TraceState.SAVED  # the state a stretch of a saved session shows


@dataclass(frozen=True)
class Window:
    """[start_ns, end_ns] on the session's monotonic clock."""

    start_ns: int
    end_ns: int

    @property
    def seconds(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9


def whole(session: StoredSession) -> Window:
    return Window(session.start_ts_ns, max(session.end_ts_ns, session.start_ts_ns))


def _stats_from_rows(frame: pd.DataFrame, exact_extremes: bool) -> dict[StatKey, SyscallStats]:
    stats = {}
    for row in frame.itertuples(index=False):
        hist = tuple(row.hist)
        low = int(row.min_ns) if exact_extremes else (bucket_bounds(hist[0][0])[0] if hist else 0)
        stats[StatKey(int(row.pid), int(row.tid), int(row.nr), int(row.abi))] = SyscallStats(
            int(row.count), int(row.errors), int(row.total_ns), low, int(row.max_ns), hist)
    return stats


def window_stats(session: StoredSession, window: Window) -> dict[StatKey, SyscallStats]:
    if window == whole(session):
        return _stats_from_rows(session.aggregates, exact_extremes=True)
    tl = session.timeline
    rows = tl[(tl["ts_ns"] > window.start_ns) & (tl["ts_ns"] <= window.end_ns)]
    if rows.empty:
        return {}
    keys = list(zip(rows["pid"], rows["tid"], rows["nr"], rows["abi"], strict=True))
    groups, index = np.unique(np.array(keys, dtype=np.int64), axis=0, return_inverse=True)
    index = index.reshape(-1)
    dense = np.zeros((len(groups), HIST_BUCKETS), dtype=np.int64)
    for i, hist in zip(index, rows["hist"], strict=True):
        for bucket, count in hist:
            dense[i, bucket] += count
    sums = {c: np.bincount(index, weights=rows[c].to_numpy(np.float64), minlength=len(groups))
            for c in ("count", "errors", "total_ns")}
    highs = np.zeros(len(groups), dtype=np.int64)
    np.maximum.at(highs, index, rows["max_ns"].to_numpy(np.int64))
    stats = {}
    for g, (pid, tid, nr, abi) in enumerate(groups.tolist()):
        hist = hist_from_dense(dense[g].tolist())
        low = bucket_bounds(hist[0][0])[0] if hist else 0
        stats[StatKey(pid, tid, nr, abi)] = SyscallStats(
            int(sums["count"][g]), int(sums["errors"][g]), int(sums["total_ns"][g]), low,
            int(highs[g]), hist)
    return stats


def stored_processes(session: StoredSession) -> dict[int, ProcessInfo]:
    """Every process as at the end of the session, its threads too (whatever the stretch:
    a session keeps the threads' newest state only)."""
    threads = process_threads(session.processes, session.threads, session.aggregates)
    processes = {}
    for p in session.processes.itertuples(index=False):
        code = None if pd.isna(p.exit_code) else int(p.exit_code)
        sig = None if pd.isna(p.exit_signal) else int(p.exit_signal)
        ended = p.exit_ts_ns and not pd.isna(p.exit_ts_ns)
        exit_status = ExitStatus(code, sig) if ended or code is not None or sig is not None \
            else None
        processes[int(p.pid)] = ProcessInfo(
            pid=int(p.pid), ppid=int(p.ppid or 0), comm=p.comm or "", exe=p.exe or "",
            cmdline=tuple(p.cmdline), abi=p.abi or "",
            start_ts_ns=int(p.start_ts_ns or 0) if not pd.isna(p.start_ts_ns) else 0,
            exit_ts_ns=int(p.exit_ts_ns) if ended else 0, exit=exit_status,
            container=p.container)
        processes[int(p.pid)] = with_threads(processes[int(p.pid)], threads.get(int(p.pid)))
    return processes


def _drops(meta: dict[str, Any]) -> Drops:
    d = meta.get("drops") or {}
    return Drops(**{f.name: int(d.get(f.name, 0)) for f in dataclasses.fields(Drops)})


def window_samples(session: StoredSession, window: Window) -> tuple[StackSample, ...]:
    """Every stack's samples in the intervals that end inside the window."""
    frame = session.samples
    if frame.empty:
        return ()
    if window != whole(session):
        frame = frame[(frame["ts_ns"] > window.start_ns) & (frame["ts_ns"] <= window.end_ns)]
    stacks: dict[tuple[Any, ...], StackSample] = {}
    for row in frame.itertuples(index=False):
        key = (int(row.pid), int(row.tid), tuple(row.frames))
        before = stacks.get(key)
        count = int(row.count) + (before.count if before else 0)
        stacks[key] = StackSample(key[0], key[1], row.comm, key[2], tuple(row.modules),
                                  int(row.kernel_frames), count)
    return tuple(stacks.values())


def window_connections(session: StoredSession, window: Window) -> tuple[Connection, ...]:
    """The connections alive at some point of the window."""
    frame = session.connections
    if frame.empty:
        return ()
    if window != whole(session):
        alive = (frame["ts_ns"] <= window.end_ns) & (
            (frame["end_ts_ns"] == 0) | (frame["end_ts_ns"] >= window.start_ns))
        frame = frame[alive]
    return tuple(Connection(*(v.item() if hasattr(v, "item") else v for v in row))
                 for row in frame[list(CONNECTION_COLUMNS)].itertuples(index=False))


def window_snapshot(session: StoredSession, window: Window, seq: int) -> Snapshot:
    """What the live view shows for this stretch of the session. `seq` must change at every
    call, so the views rebuild instead of adding to what they show."""
    meta = session.meta
    events = session.events
    lo, hi = np.searchsorted(events["ts"], [window.start_ns, window.end_ns], side="right")
    picked = events[lo:hi]
    picked.setflags(write=False)
    data = session.event_data[lo:hi] if len(session.event_data) == len(events) else ()
    stats = MappingProxyType(window_stats(session, window))
    code, sig = meta.get("exit_code"), meta.get("exit_signal")
    target_exit = ExitStatus(code, sig) if code is not None or sig is not None else None
    return Snapshot(
        seq=seq, ts_ns=window.end_ns, wall_time=float(meta.get("end_wall_time", 0.0)),
        start_ts_ns=window.start_ns,
        start_wall_time=float(meta.get("start_wall_time", 0.0))
        + (window.start_ns - session.start_ts_ns) / 1e9,
        arch=str(meta.get("arch", "x86_64")), state=SAVED,
        # The whole stretch is one interval: rates are its averages.
        stats=stats, interval=stats,
        interval_s=max(window.seconds, 1e-9),
        processes=MappingProxyType(stored_processes(session)), events=picked,
        proc_events=(), drops=_drops(meta), tracer_cpu_s=0.0, target_exit=target_exit,
        targets=tuple(meta.get("targets") or ()), epoch=seq,
        samples=window_samples(session, window), sample_hz=int(meta.get("sample_hz") or 0),
        probes={int(nr): name for nr, name in (meta.get("probes") or {}).items()},
        connections=window_connections(session, window),
        tcp_monitored=bool(meta.get("tcp_monitored", True)),
        # Files: the totals at the end of the session, whatever the stretch (the journal
        # keeps only the newest totals).
        event_data=data, paths=session.paths, files=MappingProxyType(dict(session.files)),
        selection=stored_selection(meta),
        inflight=stored_inflight(meta.get("in_flight"), window.end_ns),
        timing=str(timing_of(meta.get("timing"))),  # older sessions: exact
    )


def stored_selection(meta: dict[str, Any]) -> EventSelection:
    """The event selection a session was traced with (the newest, when it changed)."""
    saved = meta.get("event_selection")
    if not isinstance(saved, dict):
        return EventSelection()
    default = EventSelection()
    return EventSelection(
        all=bool(saved.get("all", default.all)), failed=bool(saved.get("failed", default.failed)),
        slow_ns=_natural(saved.get("slow_ns")), sample_n=_natural(saved.get("sample_n")),
        files=bool(saved.get("files", default.files)))


def _natural(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def activity(session: StoredSession, buckets: int) -> list[int]:
    """Syscalls per slice of the session, `buckets` equal slices (for the timeline bar)."""
    window = whole(session)
    tl = session.timeline
    if tl.empty or buckets <= 0 or window.end_ns <= window.start_ns:
        return [0] * max(buckets, 0)
    position = (tl["ts_ns"].to_numpy(np.int64) - window.start_ns) * buckets
    slot = np.clip(position // max(window.end_ns - window.start_ns, 1), 0, buckets - 1)
    counts: list[int] = np.bincount(slot, weights=tl["count"].to_numpy(np.float64),
                                    minlength=buckets).astype(np.int64).tolist()
    return counts
