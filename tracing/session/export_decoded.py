"""The decoded part of a Parquet export (issue 15): events.parquet's columns of what the kernel
captured, as strace shows it (the arguments' text, the result's, the first path, the socket
address, the descriptor's name) and the raw fields behind them, and files.parquet, the
per-file totals. docs/session-format.md documents every column.

Names from the traced processes are untrusted bytes: Parquet's string columns hold them as
UTF-8 with every byte that is not valid UTF-8 written as a backslash escape (`\\xff`,
Python's "backslashreplace"); the exact bytes are in the binary columns beside them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa

from syscall_tables import errno_name
from tracing.decode.argspec import abi_table, load_specs
from tracing.model.files import FileKey, FileStats
from tracing.model.paths import PathTable
from tracing.session.decode_columns import decode_columns
from tracing.session.stored_session import StoredSession

_INT32_MAX = (1 << 31) - 1
ERRNO_COUNT = pa.struct([("errno", pa.int32()), ("errno_name", pa.string()),
                         ("count", pa.int64())])


def text(value: str | bytes | None) -> str:
    """Untrusted text for a string column: bytes that are not UTF-8 backslash-escaped."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    # A str from the decoder may carry surrogates (surrogateescape): write their bytes so.
    return value.encode("utf-8", errors="surrogateescape").decode(
        "utf-8", errors="backslashreplace")


def decoded_columns(session: StoredSession, start: int = 0,
                    stop: int | None = None) -> dict[str, pa.Array | pa.ChunkedArray]:
    """events.parquet's issue-15 columns of events [start, stop), in the events' order."""
    events = session.events
    everything = len(events)
    stop = everything if stop is None else min(stop, everything)
    events = events[start:stop]
    n = len(events)
    arch = str(session.meta.get("arch", "x86_64"))
    paths = session.paths
    captured = len(session.event_data) == everything
    data = session.event_data[start:stop] if captured else (b"",) * n
    columns: dict[str, pa.Array | pa.ChunkedArray] = {
        "flags": pa.array(events["flags"].astype(np.uint8), pa.uint8())}
    if n and captured:
        columns.update(decode_columns(events, data, arch, load_specs(),
                                      paths if paths is not None else PathTable(), text))
    else:
        columns.update({c: _repeat("", n) for c in ("args", "result", "path", "addr")})
    columns["fd_path"] = _fd_path_column(events["fd_path"], paths)
    columns["captures"] = _binary(data)
    return columns


def abi_column(session: StoredSession) -> pa.DictionaryArray:
    """Each event's ABI table name, dictionary-encoded in the order the names first appear
    (what dictionary_encode() gives), for every event: the dictionary is the whole file's."""
    arch = str(session.meta.get("arch", "x86_64"))
    codes = session.events["abi"].astype(np.int64)
    unique, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
    names: list[str] = []
    index: dict[str, int] = {}
    for k in np.argsort(first, kind="stable").tolist():
        name = abi_table(arch, int(unique[k]))
        index.setdefault(name, len(names))
        if index[name] == len(names):
            names.append(name)
    lookup = np.array([index[abi_table(arch, int(c))] for c in unique.tolist()], np.int32)
    return pa.DictionaryArray.from_arrays(pa.array(lookup[inverse.reshape(-1)], pa.int32()),
                                          pa.array(names, pa.string()))


def _repeat(value: str, n: int) -> pa.Array:
    return pa.array([value], pa.string()).take(pa.array(np.zeros(n, dtype=np.int32)))


def _fd_path_column(path_ids: np.ndarray, paths: PathTable | None) -> pa.Array:
    """Each event's descriptor name (text()), looked up once per distinct path id."""
    ids = path_ids.astype(np.int64)
    unique, inverse = np.unique(ids, return_inverse=True)
    names = [text(paths.name(int(i))) if paths is not None and i else "" for i in unique]
    return pa.array(names, pa.string()).take(pa.array(inverse.reshape(-1).astype(np.int32)))


def _binary(data: Sequence[bytes]) -> pa.Array | pa.ChunkedArray:
    """The captured bytes of each event, as one binary column."""
    lengths = np.fromiter(map(len, data), dtype=np.int64, count=len(data))
    if int(lengths.sum()) > _INT32_MAX:  # past one binary array's offsets: pyarrow splits it
        return pa.array(list(data), pa.binary())
    offsets = np.zeros(len(data) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.BinaryArray.from_buffers(pa.binary(), len(data), [
        None, pa.py_buffer(offsets), pa.py_buffer(b"".join(data))])


def files_table(session: StoredSession) -> pa.Table:
    """One row per (process, path): opens, failed opens by errno and the I/O through it."""
    paths = session.paths if session.paths is not None else PathTable()
    rows = sorted(session.files.items(), key=lambda kv: (kv[0].pid, paths.name(kv[0].path_id)))
    return files_rows([k for k, _ in rows], [v for _, v in rows], paths)


def files_rows(keys: Sequence[FileKey], stats: Sequence[FileStats],
               paths: PathTable) -> pa.Table:
    names = [paths.name(k.path_id) for k in keys]

    def numbers(field: str) -> pa.Array:
        return pa.array([getattr(s, field) for s in stats], pa.int64())

    return pa.table({
        "pid": pa.array([k.pid for k in keys], pa.int32()),
        "path": pa.array([text(n) for n in names], pa.string()),
        "path_bytes": pa.array(names, pa.binary()),
        "opens": numbers("opens"),
        "open_errors": pa.array([sum(c for _, c in s.open_errors) for s in stats], pa.int64()),
        "open_errnos": pa.array([[{"errno": e, "errno_name": errno_name(e), "count": c}
                                  for e, c in sorted(s.open_errors)] for s in stats],
                                pa.list_(ERRNO_COUNT)),
        **{f: numbers(f) for f in ("calls", "reads", "bytes_read", "writes", "bytes_written",
                                   "io_ns")},
    })


def files_json(files: Mapping[FileKey, FileStats], paths: PathTable | None) -> list[dict[
        str, object]]:
    """`record --json`'s files list: per path (and process), most I/O time first."""
    table = paths if paths is not None else PathTable()
    rows = sorted(files.items(), key=lambda kv: (-kv[1].io_ns, kv[0].pid,
                                                 table.name(kv[0].path_id)))
    return [{"pid": k.pid, "path": text(table.name(k.path_id)), "opens": v.opens,
             "open_errors": sum(c for _, c in v.open_errors),
             "open_errnos": {errno_name(e): c for e, c in sorted(v.open_errors)},
             "calls": v.calls, "reads": v.reads, "bytes_read": v.bytes_read,
             "writes": v.writes, "bytes_written": v.bytes_written, "io_ns": v.io_ns}
            for k, v in rows]
