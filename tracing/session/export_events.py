"""events.parquet, made a row group at a time: memory stays bounded by a row group's events
whatever the session's size, and each part's decoded text (the slow part) is made while the
previous part is written (tracing.session.export._write_parquet).

The dictionary columns (syscall, errno_name, abi) are made for the whole file first and
sliced, so every row group has the whole file's dictionaries, as one table written at once
would have.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa

from syscall_tables import errno_name
from tracing.model.captures import EVF_UNTIMED
from tracing.session.export_decoded import abi_column, decoded_columns
from tracing.session.export_names import Namer
from tracing.session.stored_session import StoredSession

Part = Callable[[], pa.Table]  # a table, made when called
TIMESTAMP = pa.timestamp("ns", tz="UTC")
ROW_GROUP = 1 << 20  # pyarrow's default row group size: events are made this many at once


def utc(ns: np.ndarray | pd.Series, offset: int) -> pa.Array:
    values = np.asarray(ns, dtype=np.int64) + offset
    return pa.array(values, pa.int64()).cast(TIMESTAMP)


def event_parts(session: StoredSession, names: Namer,
                rows: int = ROW_GROUP) -> Iterator[Part]:
    """events.parquet's parts, `rows` events each (at least one part, maybe empty): each
    part's decoded columns are made when it is yielded, its other columns (quick) when it
    is called."""
    ev = session.events
    syscalls = names.column(ev["abi"].astype(np.int64), ev["nr"].astype(np.int64))
    errnos, errno_names = _errno_column(ev["ret"].astype(np.int64))
    abi_names = abi_column(session)
    for start in range(0, max(len(ev), 1), rows):
        stop = start + rows
        decoded = decoded_columns(session, start, stop)
        yield functools.partial(_part, session, start, stop, {
            "syscall": syscalls[start:stop], "errno": pa.array(errnos[start:stop]),
            "errno_name": errno_names[start:stop], "abi": abi_names[start:stop]}, decoded)


def _part(session: StoredSession, start: int, stop: int, whole: dict[str, pa.Array],
          decoded: dict[str, pa.Array | pa.ChunkedArray]) -> pa.Table:
    part = session.events[start:stop]
    columns: dict[str, pa.Array | pa.ChunkedArray] = {
        "ts": utc(part["ts"].astype(np.int64), session.wall_offset_ns),
        "pid": pa.array(part["pid"].astype(np.int64), pa.int32()),
        "tid": pa.array(part["tid"].astype(np.int32)),
        "syscall": whole["syscall"], "nr": pa.array(part["nr"].astype(np.int64)),
        "ret": pa.array(part["ret"].astype(np.int64)), "duration_ns": _duration_column(part),
        "errno": whole["errno"], "errno_name": whole["errno_name"],
    }
    for i in range(6):
        columns[f"arg{i}"] = pa.array(part["args"][:, i].astype(np.uint64))
    columns["abi"] = whole["abi"]
    columns.update(decoded)
    return pa.table(columns)


def _errno_column(ret: np.ndarray) -> tuple[np.ndarray, pa.DictionaryArray]:
    failed = (ret >= -4095) & (ret <= -1)
    errnos = np.where(failed, -ret, 0).astype(np.int16)
    unique, inverse = np.unique(errnos, return_inverse=True)
    labels = pa.array([errno_name(int(e)) if e else "" for e in unique], pa.string())
    codes = pa.array(inverse.astype(np.int32), mask=~failed)  # null where nothing failed
    return errnos, pa.DictionaryArray.from_arrays(codes, labels)


def _duration_column(ev: np.ndarray) -> pa.Array:
    """Each event's time in the syscall; null where the call was not timed (EVF_UNTIMED:
    --timing off, or a call --timing sampled left out), whose record holds 0, not a time."""
    untimed = (ev["flags"] & EVF_UNTIMED).astype(bool)
    return pa.array(ev["duration_ns"].astype(np.int64), pa.int64(),
                    mask=untimed if untimed.any() else None)
