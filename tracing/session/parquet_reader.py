"""Reading a Parquet session directory back, as untrusted input: every file opened from the
directory without following links, session.json read within a bound, each table's columns
checked and its UTC timestamps turned back into the session's monotonic clock.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from syscall_tables import abi_code
from tracing.boundary.untrusted_files import Limits, Refused, open_untrusted, read_fd
from tracing.decode.argspec import ABI_TABLES
from tracing.errors import UserError
from tracing.model.captures import DATA_MAX, EVF_UNTIMED
from tracing.model.files import FileKey, FileStats
from tracing.model.paths import PathTable
from tracing.model.stats import EVENT_DTYPE
from tracing.session.checks import (
    ID32,
    NATURAL,
    TIME,
    Bad,
    bad,
    check_meta,
    check_stacks,
    hist_lists,
    ints,
    refused,
    text_list,
    texts,
    typed,
)
from tracing.session.parquet_tables import read_tables
from tracing.session.schema import CONNECTION_COLUMNS, FORMAT, SCHEMA_VERSION
from tracing.session.stored_session import (
    AGGREGATE_COLUMNS,
    CONNECTION_KINDS,
    EVENT_KINDS,
    PROCESS_COLUMNS,
    SAMPLE_COLUMNS,
    SAMPLE_KINDS,
    TIMELINE_COLUMNS,
    StoredSession,
    process_abis,
    wall_offset_ns,
    with_abi,
)
from tracing.session.stored_threads import THREAD_COLUMNS, checked_threads, count_column

PARQUET_FILES = ("syscalls", "events", "timeline", "processes")
# Absent from older exports.
OPTIONAL_PARQUET_FILES = ("samples", "connections", "files", "threads")
SESSION_JSON_LIMITS = Limits(4 << 20)  # metadata: a few KB in practice


def from_parquet(path: Path) -> StoredSession:
    """Every file is opened from the directory, without following symbolic links, regular
    files only; session.json is read within SESSION_JSON_LIMITS."""
    try:
        dir_fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as err:
        raise UserError(f"{path}: cannot read it ({err.strerror})") from None
    try:
        names = set(os.listdir(dir_fd))
        missing = [f"{n}.parquet" for n in PARQUET_FILES if f"{n}.parquet" not in names]
        if "session.json" not in names or missing:
            raise UserError(f"{path} is not a sikte-tui Parquet session (missing "
                            f"{', '.join(missing) or 'session.json'})")
        meta = _parquet_meta(path, dir_fd)
        present = PARQUET_FILES + tuple(n for n in OPTIONAL_PARQUET_FILES
                                        if f"{n}.parquet" in names)
        tables = read_tables(path, dir_fd, present)
        return _parquet_session(path, meta, tables)
    except Bad as why:
        raise bad(path, why) from None
    except OSError as err:
        raise UserError(f"{path}: cannot read it ({err.strerror})") from None
    finally:
        os.close(dir_fd)


def _parquet_meta(path: Path, dir_fd: int) -> dict[str, Any]:
    try:
        fd = open_untrusted("session.json", dir_fd=dir_fd)
        try:
            data = read_fd(fd, SESSION_JSON_LIMITS).data
        finally:
            os.close(fd)
    except Refused as why:
        raise refused(path / "session.json", why) from None
    try:
        meta = json.loads(data)
    except (ValueError, RecursionError):
        raise Bad("it has a session.json that is not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError(f"{path}/session.json is not a sikte-tui session's")
    return check_meta(meta, SCHEMA_VERSION)


def _parquet_session(path: Path, meta: dict[str, Any],
                     tables: dict[str, pd.DataFrame]) -> StoredSession:
    offset = wall_offset_ns(meta)
    arch = str(meta.get("arch", "x86_64"))
    processes = _processes_from(tables["processes"], offset)
    # Rows of exports from before each call's ABI was kept: their process's stands in.
    abis = process_abis(processes, arch)
    session = StoredSession(
        path, meta,
        processes=processes,
        proc_events=pd.DataFrame(columns=["ts_ns", "kind", "pid", "tid", "ppid", "status",
                                          "comm", "filename"]),
        timeline=_stats_from(tables["timeline"], offset, "timeline", arch, abis),
        aggregates=_stats_from(tables["syscalls"], offset, "syscalls", arch, abis),
        events=_events_from(tables["events"], offset, abis),
    )
    session.paths = PathTable()
    session.event_data = _captures_from(tables["events"], session.events, session.paths,
                                        str(meta.get("arch", "x86_64")))
    if "files" in tables:
        session.files = _files_from(tables["files"], session.paths)
    if "samples" in tables:
        session.samples = _samples_from(tables["samples"], offset)
    if "connections" in tables:
        session.connections = _connections_from(tables["connections"], offset)
    if "threads" in tables:
        session.threads = _threads_from(tables["threads"], offset)
    return session


def _threads_from(frame: pd.DataFrame, offset: int) -> pd.DataFrame:
    """threads.parquet: its `alive` true/false/null as 1/0/None, its `exit_ts` on the
    session's clock (the main threads' rows stay; the readers of the table skip them)."""
    if "alive" not in frame.columns:
        raise Bad("its threads table has no alive column")
    alive: list[int | None] = []
    for v in frame["alive"]:
        if isinstance(v, (bool, np.bool_)):
            alive.append(int(v))
        elif v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
            alive.append(None)
        else:
            raise Bad("its threads table's alive column holds something other than "
                      "true or false")
    out = frame.assign(alive=pd.Series(alive, index=frame.index, dtype=object),
                       exit_ts_ns=_mono(frame, "threads", "exit_ts", offset))
    return checked_threads(out)[list(THREAD_COLUMNS)]


def _samples_from(frame: pd.DataFrame, offset: int) -> pd.DataFrame:
    out = typed(frame, "samples", {k: v for k, v in SAMPLE_KINDS.items() if k != "ts_ns"})
    out["ts_ns"] = _mono(frame, "samples", "ts", offset, required=True)
    for column in ("frames", "modules"):
        if column not in frame.columns:
            raise Bad(f"its samples table has no {column} column")
        out[column] = [text_list(v, f"its samples table's {column} column")
                       for v in frame[column]]
    check_stacks(out)
    return out[list(SAMPLE_COLUMNS)]


def _connections_from(frame: pd.DataFrame, offset: int) -> pd.DataFrame:
    kinds = {k: v for k, v in CONNECTION_KINDS.items() if k not in ("ts_ns", "end_ts_ns")}
    out = typed(frame, "connections", kinds)
    out["ts_ns"] = _mono(frame, "connections", "ts", offset, required=True)
    out["end_ts_ns"] = _mono(frame, "connections", "end_ts", offset)
    return out[list(CONNECTION_COLUMNS)]


def _mono(frame: pd.DataFrame, table: str, column: str, offset: int,
          required: bool = False) -> np.ndarray:
    """A column of UTC timestamps back on the session's monotonic clock, in ns (0 where
    missing, unless required); Bad when it holds something else or falls outside it."""
    if column not in frame.columns:
        raise Bad(f"its {table} table has no {column} column")
    values = frame[column]
    where = f"its {table} table's {column} column"
    if values.dtype.kind == "M":
        stamps = values.to_numpy(dtype="datetime64[ns]")
        known = ~np.isnat(stamps)
        ns = np.where(known, stamps.view(np.int64), 0)
    elif values.dtype.kind in "iu":
        known, ns = np.ones(len(values), dtype=bool), values.to_numpy().astype(np.int64)
    else:
        raise Bad(f"{where} holds {values.dtype} where timestamps belong")
    if required and not known.all():
        raise Bad(f"{where} is empty where a time belongs")
    if known.any():
        low, high = int(ns[known].min()) - offset, int(ns[known].max()) - offset
        if low < TIME[0] or high > TIME[1]:
            raise Bad(f"{where} holds a time outside the session's clock")
    return np.where(known, ns - offset, 0).astype(np.int64)


def _stats_from(frame: pd.DataFrame, offset: int, table: str, arch: str,
                abis: Mapping[int, int]) -> pd.DataFrame:
    kinds = AGGREGATE_COLUMNS if table == "syscalls" else {
        k: v for k, v in TIMELINE_COLUMNS.items() if k != "ts_ns"}
    if "abi" in frame.columns:  # table names ("i386"), as the export writes them
        frame = frame.assign(abi=pd.Series(
            [abi_code(arch, a) if isinstance(a, str) and a else None for a in frame["abi"]],
            index=frame.index, dtype=object))
    out = typed(with_abi(frame, abis), table, kinds)
    if table != "syscalls":
        out["ts_ns"] = _mono(frame, table, "ts", offset, required=True)
    for column in ("hist_low_ns", "hist_count"):
        if column not in frame.columns:
            raise Bad(f"its {table} table has no {column} column")
    out["hist"] = [hist_lists(lo, c, table) for lo, c in zip(
        frame["hist_low_ns"], frame["hist_count"], strict=True)]
    return out


def _processes_from(frame: pd.DataFrame, offset: int) -> pd.DataFrame:
    kinds = {k: v for k, v in PROCESS_COLUMNS.items()
             if k not in ("start_ts_ns", "exit_ts_ns")}
    out = typed(frame, "processes", kinds)
    for column in ("start_ts", "exit_ts"):
        out[f"{column}_ns"] = _mono(frame, "processes", column, offset)
    if "cmdline" not in frame.columns:
        raise Bad("its processes table has no cmdline column")
    out["cmdline"] = [list(text_list(c, "its processes table's cmdline column"))
                      for c in frame["cmdline"]]
    out["container"] = texts(out, "container")  # newer exports only
    # Every thread seen, the main one included (newer exports only): the model counts the
    # others.
    total = count_column(frame, "threads", "processes")
    out["threads_seen"] = (total - 1).clip(lower=0)
    out["thread_names_dropped"] = count_column(frame, "thread_names_dropped", "processes")
    return out.drop(columns=["threads", "live_threads"], errors="ignore")

def _events_from(frame: pd.DataFrame, offset: int, abis: Mapping[int, int]) -> np.ndarray:
    """The events' records; each with its process's ABI until _captures_from reads the
    record's own (exports from before issue 15 have none)."""
    frame, untimed = _untimed(frame)
    checked = typed(frame, "events", EVENT_KINDS)
    events = np.zeros(len(frame), dtype=EVENT_DTYPE)
    events["flags"] = np.where(untimed, EVF_UNTIMED, 0)
    events["ts"] = _mono(frame, "events", "ts", offset, required=True)
    for name in ("pid", "tid", "nr", "ret", "duration_ns"):
        events[name] = checked[name].to_numpy()
    if abis and len(events):
        events["abi"] = [abis.get(p, 0) for p in events["pid"].tolist()]
    for i in range(6):
        column = f"arg{i}"
        if column not in frame.columns or frame[column].dtype.kind not in "iu":
            raise Bad(f"its events table has no {column} column of numbers")
        events["args"][:, i] = frame[column].to_numpy().astype(np.uint64)
    return events


def _untimed(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The frame with the null durations (calls not timed: the export writes null where the
    record holds EVF_UNTIMED) as 0, as the record holds them, and a mask of those rows.

    Arrow gives an int64 column with nulls to pandas as float64: back to int64 in one step
    when every value is a whole number in range, else the checks of `typed` name the bad
    value."""
    column = frame.get("duration_ns")
    if column is None or column.dtype.kind != "f":
        return frame, np.zeros(len(frame), dtype=bool)
    untimed = column.isna().to_numpy()
    values = column.to_numpy(copy=True)
    values[untimed] = 0
    whole = np.isfinite(values) & (values == np.floor(values)) & (values >= 0) \
        & (values < 2.0**63)
    filled = pd.Series(values.astype(np.int64) if whole.all() else values, index=frame.index)
    return frame.assign(duration_ns=filled), untimed


def _captures_from(frame: pd.DataFrame, events: np.ndarray, paths: PathTable,
                   arch: str) -> tuple[bytes, ...]:
    """What the kernel captured behind each event (issue 15's columns; older exports have
    none): the records' abi, flags, data_len and fd_path filled in, the names interned."""
    if "captures" not in frame.columns:
        return ()
    data = tuple(v if isinstance(v, bytes) else b"" for v in frame["captures"])
    if any(len(d) > DATA_MAX for d in data):
        raise Bad("its events table has captured fields longer than a record holds")
    events["data_len"] = [len(d) for d in data]
    if "flags" in frame.columns and frame["flags"].dtype.kind in "iu":
        # Or'd: a null duration already set EVF_UNTIMED (in case the column lost the bit).
        events["flags"] |= frame["flags"].to_numpy().astype(np.uint8)
    if "abi" in frame.columns:
        tables = ABI_TABLES.get(arch, (arch,))
        codes = {name: i for i, name in enumerate(tables)}
        events["abi"] = [codes.get(str(a), 0) for a in frame["abi"]]
    if "fd_path" in frame.columns:
        events["fd_path"] = [paths.add(_name(v)) if v else 0 for v in frame["fd_path"]]
    return data


def _name(value: object) -> bytes:
    """A name from a string column back to bytes (the backslash escapes of bytes that were
    not UTF-8 stay as written: the exact bytes are in the binary columns)."""
    return value.encode("utf-8", errors="surrogateescape") if isinstance(value, str) else b""


def _files_from(frame: pd.DataFrame, paths: PathTable) -> dict[FileKey, FileStats]:
    counts = ("opens", "calls", "reads", "bytes_read", "writes", "bytes_written", "io_ns")
    checked = typed(frame, "files", {"pid": ints(ID32, required=True),
                                     **{c: ints(NATURAL, required=True) for c in counts}})
    names = frame["path_bytes"] if "path_bytes" in frame.columns else frame.get("path")
    if names is None or "open_errnos" not in frame.columns:
        raise Bad("its files table has no path or open_errnos column")
    files = {}
    for row, name, errnos in zip(checked.itertuples(index=False), names,
                                 frame["open_errnos"], strict=True):
        key = FileKey(int(row.pid), paths.add(name if isinstance(name, bytes)
                                              else _name(name)))
        files[key] = FileStats(int(row.opens), _errnos(errnos),
                               *(int(getattr(row, c)) for c in counts[1:]))
    return files


def _errnos(value: object) -> tuple[tuple[int, int], ...]:
    """open_errnos: a list of {errno, errno_name, count}; Bad when it is something else."""
    items = list(value) if isinstance(value, (list, tuple, np.ndarray)) else None
    if items is None or not all(isinstance(i, dict) for i in items):
        raise Bad("its files table's open_errnos column is not a list of errno counts")
    try:
        pairs = tuple((int(i["errno"]), int(i["count"])) for i in items)
    except (KeyError, TypeError, ValueError):
        raise Bad("its files table's open_errnos column is not a list of errno counts") \
            from None
    if not all(0 < e < 4096 and c >= 0 for e, c in pairs):
        raise Bad("its files table's open_errnos column holds an errno out of range")
    return pairs
