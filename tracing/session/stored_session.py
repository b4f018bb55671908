"""A saved session in memory: StoredSession's plain tables, whichever file they came from
(a journal or a Parquet directory), and what each column must hold when a reader takes it
from a file (the checks themselves are in checks.py).

Times stay on the kernel's monotonic clock (ns) inside; `wall_offset_ns` turns them into
UTC nanoseconds (`ts_ns + wall_offset_ns`), exactly, in both directions.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from syscall_tables import abi_code
from tracing.model.files import FileKey, FileStats
from tracing.model.paths import PathTable
from tracing.session.checks import ID32, INT32, INT64, NATURAL, TEXT, TIME, Bad, Kind, ints
from tracing.session.schema import CONNECTION_COLUMNS

SAMPLE_COLUMNS = ("ts_ns", "pid", "tid", "comm", "frames", "modules", "kernel_frames", "count")

# The columns each reader uses, and what they must hold (the journal's names; Parquet's
# timestamps are checked apart).
PROCESS_COLUMNS: dict[str, Kind] = {
    "pid": ints(ID32, required=True), "ppid": ints(ID32), "comm": TEXT, "exe": TEXT,
    "abi": TEXT, "start_ts_ns": ints(TIME), "exit_ts_ns": ints(TIME),
    "exit_code": ints(INT32, default=None), "exit_signal": ints(INT32, default=None)}
PROC_EVENT_COLUMNS: dict[str, Kind] = {
    "ts_ns": ints(TIME), "kind": ints(INT32), "pid": ints(ID32), "tid": ints(ID32),
    "ppid": ints(ID32), "status": ints(INT32), "comm": TEXT, "filename": TEXT}
# Syscall numbers are the kernel's u32 (syscall(-1) is counted as 0xffffffff); ABI codes
# are 0 native, 1 compat, 2 x32 (syscall_tables.ABI_TABLES), two bits in the kernel.
NR32 = (0, (1 << 32) - 1)
ABI_CODES = (0, 3)
_KEY: dict[str, Kind] = {
    "pid": ints(ID32, required=True), "tid": ints(ID32, required=True),
    "nr": ints(NR32, required=True), "abi": ints(ABI_CODES, required=True)}
_SUMS: dict[str, Kind] = {
    c: ints(NATURAL, required=True) for c in ("count", "errors", "total_ns", "max_ns")}
TIMELINE_COLUMNS: dict[str, Kind] = {"ts_ns": ints(TIME, required=True), **_KEY, **_SUMS}
AGGREGATE_COLUMNS: dict[str, Kind] = {**_KEY, **_SUMS, "min_ns": ints(NATURAL, required=True)}
EVENT_KINDS: dict[str, Kind] = {
    "pid": ints(ID32, required=True), "tid": ints(ID32, required=True),
    "nr": ints(NR32, required=True), "ret": ints(INT64, required=True),
    "duration_ns": ints(NATURAL, required=True)}
SAMPLE_KINDS: dict[str, Kind] = {
    "ts_ns": ints(TIME, required=True), "pid": ints(ID32, required=True),
    "tid": ints(ID32, required=True), "comm": TEXT, "kernel_frames": ints(ID32, required=True),
    "count": ints(NATURAL, required=True)}
CONNECTION_KINDS: dict[str, Kind] = {
    "conn_id": ints(NATURAL, required=True), "ts_ns": ints(TIME, required=True),
    "pid": ints(ID32), "tid": ints(ID32), "comm": TEXT, "cgroup_id": ints(NATURAL),
    "family": ints((0, 127)), "saddr": TEXT, "sport": ints((0, 65535)), "daddr": TEXT,
    "dport": ints((0, 65535)), "direction": TEXT, "state": TEXT, "end_ts_ns": ints(TIME),
    "result": TEXT, "error": TEXT, "cgroup_path": TEXT, "container_id": TEXT,
    "container_name": TEXT, "container_runtime": TEXT}


@dataclass
class StoredSession:
    """One saved session's tables, on the monotonic clock, checked as the columns above say."""

    path: Path
    meta: dict[str, Any]
    # pid, ppid, comm, exe, cmdline (list), abi, start/exit_ts_ns, exit_code, exit_signal,
    # container, threads_seen, thread_names_dropped
    processes: pd.DataFrame
    proc_events: pd.DataFrame  # ts_ns, kind, pid, tid, ppid, status, comm, filename
    timeline: pd.DataFrame  # ts_ns, pid, tid, nr, abi, count, errors, total_ns, max_ns, hist
    aggregates: pd.DataFrame  # pid, tid, nr, abi, count, errors, total_ns, min_ns, max_ns, hist
    events: np.ndarray  # EVENT_DTYPE, oldest first
    # CPU samples per interval and stack: ts_ns, pid, tid, comm, frames (tuple), modules
    # (tuple), kernel_frames, count
    samples: pd.DataFrame = dataclasses.field(
        default_factory=lambda: pd.DataFrame(columns=SAMPLE_COLUMNS))
    # TCP connections, the newest state of each: Connection's fields
    connections: pd.DataFrame = dataclasses.field(
        default_factory=lambda: pd.DataFrame(columns=CONNECTION_COLUMNS))
    # What the kernel captured behind each event (aligned with `events`, b"" where nothing
    # was; () in sessions from before schema 3), the path names the events' fd_path and the
    # files' keys refer to, and the per-file totals at the end of the session.
    event_data: tuple[bytes, ...] = ()
    paths: PathTable | None = None
    files: Mapping[FileKey, FileStats] = dataclasses.field(default_factory=dict)
    # The processes' threads other than their main ones (stored_threads.THREAD_COLUMNS: pid,
    # tid, name or None, alive 0/1 or None, exit_ts_ns or 0), as at the end of the session;
    # None in sessions from before they were kept (their rows' tids stand in). The
    # processes table then has threads_seen and thread_names_dropped (0 where not known).
    threads: pd.DataFrame | None = None

    @property
    def wall_offset_ns(self) -> int:
        return wall_offset_ns(self.meta)

    @property
    def start_ts_ns(self) -> int:
        return int(self.meta.get("start_ts_ns", 0))

    @property
    def end_ts_ns(self) -> int:
        return int(self.meta.get("end_ts_ns", self.start_ts_ns))

    @property
    def name(self) -> str:
        return self.path.name


def wall_offset_ns(meta: dict[str, Any]) -> int:
    """UTC ns minus monotonic ns for this session (fixed at its start)."""
    wall_ns = round(float(meta.get("start_wall_time", 0.0)) * 1e9)
    return wall_ns - int(meta.get("start_ts_ns", 0))



def process_abis(processes: pd.DataFrame, arch: str) -> dict[int, int]:
    """Each process's ABI code from its recorded ABI (its executable's): what sessions from
    before the ABI of each call was kept give their rows."""
    return {int(pid): abi_code(arch, str(abi or ""))
            for pid, abi in zip(processes["pid"], processes["abi"], strict=True)}


def with_abi(frame: pd.DataFrame, abis: Mapping[int, int]) -> pd.DataFrame:
    """`frame` (timeline or aggregates rows) with an abi column: its own where it has one,
    else, and where it is NULL, the row's process's (process_abis)."""
    derived = [abis.get(int(pid), 0) if isinstance(pid, (int, np.integer)) else 0
               for pid in frame["pid"]] if "pid" in frame.columns else []
    if "abi" not in frame.columns:
        return frame.assign(abi=pd.Series(derived, index=frame.index, dtype=object))
    column = frame["abi"]
    if not column.isna().any():
        return frame
    filled = [d if v is None or (isinstance(v, float) and np.isnan(v)) else v
              for v, d in zip(column, derived, strict=True)]
    return frame.assign(abi=pd.Series(filled, index=frame.index, dtype=object))


def path_table(names: Iterable[tuple[int, bytes]]) -> PathTable:
    """A session's PathTable again from its (id, name) pairs, oldest first; Bad when the ids
    are not the ones the table gives back (a damaged or hand-made session)."""
    table = PathTable()
    for path_id, name in names:
        if path_id < len(table) and table.name(path_id) == name:
            continue  # the ids every table starts with (0: unknown, 1: the overflow)
        if not isinstance(name, bytes) or table.add(name) != path_id:
            raise Bad("its paths table does not hold each name once, in order")
    return table


def open_errors(text: object) -> tuple[tuple[int, int], ...]:
    """A files row's failed opens, JSON [[errno, count], ...]; Bad when it is not that."""
    try:
        pairs = json.loads(text) if isinstance(text, (str, bytes)) else None
    except (ValueError, RecursionError):
        pairs = None
    if not isinstance(pairs, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(
                isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 62 for v in p)
            for p in pairs):
        raise Bad("its files table has failed opens that are not [errno, count] pairs")
    return tuple((int(e), int(c)) for e, c in pairs)
