"""The threads of a saved session's processes: each one's name, whether it still ran at the
end and when it ended, checked when a reader takes them from a file (untrusted input), and
turned back into ProcessInfo's thread fields so an opened session shows the same thread
names and counts as the live trace did.

A session holds, per process, the threads the process tracker kept (tracing/system/
threads.py: every running one, the newest ended ones, a bounded number of names); a reader
keeps no more than that per process from a hand-made file. Sessions from before threads were
kept (journal schema 1-4, Parquet exports without threads.parquet) have their threads from
their rows' tids, unnamed, with nothing known of which still ran.

Pure: DataFrames in, plain values out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tracing.model.stats import ProcessInfo
from tracing.session.checks import ID32, TIME, Bad, Kind, ints, typed
from tracing.system.threads import COMM_MAX, ENDED_KEPT, LIST_MAX, NAMES_MAX

# A StoredSession's threads table: one row per thread other than its process's main one.
# name None: not kept (it shows under its process's name); alive None: not known;
# exit_ts_ns 0: running at the end, or its exit was not seen.
THREAD_COLUMNS = ("pid", "tid", "name", "alive", "exit_ts_ns")
THREAD_KINDS: dict[str, Kind] = {
    "pid": ints(ID32, required=True), "tid": ints(ID32, required=True),
    "alive": ints((0, 1), default=None), "exit_ts_ns": ints(TIME)}
# Threads kept per process when a session is read: the tracker keeps every running thread
# (it lists at most LIST_MAX of them) and ENDED_KEPT ended ones.
THREADS_KEPT = LIST_MAX + ENDED_KEPT
# A count of threads: far beyond what a trace sees (2**62 thread starts), far enough below
# int64's end that an export's `1 + threads_seen` (the main thread) still fits.
COUNT = (0, 1 << 62)


def empty_threads() -> pd.DataFrame:
    return pd.DataFrame({"pid": pd.Series(dtype=np.int64), "tid": pd.Series(dtype=np.int64),
                         "name": pd.Series(dtype=object), "alive": pd.Series(dtype=object),
                         "exit_ts_ns": pd.Series(dtype=np.int64)})


def checked_threads(frame: pd.DataFrame, table: str = "threads") -> pd.DataFrame:
    """A threads table from a file with its columns checked: ids in range, names text (or
    missing) no longer than a thread's name can be, alive 0/1 or missing, times in range."""
    out = typed(frame, table, THREAD_KINDS)
    if "name" not in frame.columns:
        raise Bad(f"its {table} table has no name column")
    out["name"] = pd.Series(thread_names(frame["name"], f"its {table} table's name column"),
                            index=frame.index, dtype=object)
    return out[list(THREAD_COLUMNS)]


def thread_names(values: Iterable[Any], where: str) -> list[str | None]:
    out: list[str | None] = []
    for v in values:
        if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
            out.append(None)
        elif not isinstance(v, str):
            raise Bad(f"{where} holds something other than text")
        elif len(v) > COMM_MAX:
            raise Bad(f"{where} holds a name of {len(v):,} characters, longer than a "
                      "thread's name can be")
        else:
            out.append(v)
    return out


def count_column(frame: pd.DataFrame, column: str, table: str) -> pd.Series:
    """A count column of the processes table that older sessions lack (then 0 each)."""
    if column not in frame.columns:
        return pd.Series(np.zeros(len(frame), dtype=np.int64), index=frame.index)
    return typed(frame[[column]], table, {column: ints(COUNT)})[column]


@dataclass(frozen=True, slots=True)
class Threads:
    """One process's thread fields of ProcessInfo."""

    threads: frozenset[int] = frozenset()
    live_threads: frozenset[int] | None = None
    thread_names: Mapping[int, str] = field(default_factory=dict)
    threads_seen: int = 0
    thread_names_dropped: int = 0

    def fields(self) -> dict[str, Any]:
        return {"threads": self.threads, "live_threads": self.live_threads,
                "thread_names": self.thread_names, "threads_seen": self.threads_seen,
                "thread_names_dropped": self.thread_names_dropped}


def process_threads(processes: pd.DataFrame, threads: pd.DataFrame | None,
                    aggregates: pd.DataFrame) -> dict[int, Threads]:
    """Each process's threads: from `threads` (None: a session from before they were kept,
    whose threads are the tids of its aggregates, unnamed)."""
    seen = _counts(processes, "threads_seen")
    dropped = _counts(processes, "thread_names_dropped")
    pids = set(seen)
    if threads is None:
        return _from_rows(aggregates, pids)
    grouped: dict[int, list[tuple[int, str | None, int | None]]] = {}
    for pid, tid, name, alive in zip(threads["pid"].tolist(), threads["tid"].tolist(),
                                     threads["name"], threads["alive"], strict=True):
        if pid == tid or pid not in pids:
            continue  # the main thread (Parquet lists it): its name is the process's
        rows = grouped.setdefault(pid, [])
        if len(rows) < THREADS_KEPT:
            rows.append((tid, name, alive))
    out = {}
    for pid in pids:
        rows = grouped.get(pid, [])
        names: dict[int, str] = {}
        unkept = 0
        for tid, name, _ in rows:
            if name is not None:
                if len(names) < NAMES_MAX:
                    names[tid] = name
                else:
                    unkept += 1
        tids = frozenset(tid for tid, _, _ in rows)
        known = all(alive is not None for _, _, alive in rows)
        live = frozenset(tid for tid, _, alive in rows if alive) if known else None
        # Seen: never fewer than it has (the count a Parquet export gives back).
        out[pid] = Threads(tids, live, names, max(seen[pid], len(tids)),
                           dropped[pid] + unkept)
    return out


def _counts(processes: pd.DataFrame, column: str) -> dict[int, int]:
    values = processes[column].tolist() if column in processes.columns \
        else [0] * len(processes)
    return {int(pid): int(v or 0) for pid, v in zip(processes["pid"].tolist(), values,
                                                     strict=True)}


def _from_rows(aggregates: pd.DataFrame, pids: set[int]) -> dict[int, Threads]:
    tids: dict[int, set[int]] = {}
    if not aggregates.empty:
        for pid, tid in set(zip(aggregates["pid"].tolist(), aggregates["tid"].tolist(),
                                strict=True)):
            if pid != tid and pid in pids:
                known = tids.setdefault(pid, set())
                if len(known) < THREADS_KEPT:
                    known.add(tid)
    return {pid: Threads(frozenset(tids.get(pid, ())), threads_seen=len(tids.get(pid, ())))
            for pid in pids}


def with_threads(info: ProcessInfo, threads: Threads | None) -> ProcessInfo:
    return info if threads is None else info.replace(**threads.fields())


def thread_exit_times(threads: pd.DataFrame | None) -> dict[tuple[int, int], int]:
    """(pid, tid) -> when it ended (monotonic ns), where known."""
    if threads is None or threads.empty:
        return {}
    return {(pid, tid): ts for pid, tid, ts in zip(
        threads["pid"].tolist(), threads["tid"].tolist(), threads["exit_ts_ns"].tolist(),
        strict=True) if ts}
