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
from tracing.decode.render import DecodedEvent, decode_events
from tracing.model.files import FileKey, FileStats
from tracing.model.paths import PathTable
from tracing.session.stored_session import StoredSession

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


def _decoded(session: StoredSession) -> list[DecodedEvent] | None:
    """Every event decoded, or None when the session has nothing captured to decode."""
    events = session.events
    if not len(events) or len(session.event_data) != len(events):
        return None
    paths = session.paths if session.paths is not None else PathTable()
    arch = str(session.meta.get("arch", "x86_64"))
    return decode_events(events, session.event_data, arch, load_specs(), paths)


def decoded_columns(session: StoredSession) -> dict[str, pa.Array]:
    """events.parquet's issue-15 columns, in the events' order."""
    events = session.events
    n = len(events)
    arch = str(session.meta.get("arch", "x86_64"))
    codes = events["abi"].astype(np.int64) if n else np.zeros(0, np.int64)
    abis = {int(c): abi_table(arch, int(c)) for c in np.unique(codes)}
    data = session.event_data if len(session.event_data) == n else (b"",) * n
    paths = session.paths
    fd_names = [text(paths.name(int(i))) if paths is not None and i else ""
                for i in events["fd_path"].tolist()]
    decoded = _decoded(session)
    columns: dict[str, pa.Array] = {
        "abi": pa.array([abis[int(c)] for c in codes], pa.string()).dictionary_encode(),
        "flags": pa.array(events["flags"].astype(np.uint8), pa.uint8()),
    }
    if decoded is None:
        columns.update({c: pa.array([""] * n, pa.string())
                        for c in ("args", "result", "path", "addr")})
    else:
        columns.update({
            "args": pa.array([text(d.args_text) for d in decoded], pa.string()),
            "result": pa.array([text(d.result_text) for d in decoded], pa.string()),
            "path": pa.array([text(d.path) for d in decoded], pa.string()),
            "addr": pa.array([text(d.addr) for d in decoded], pa.string()),
        })
    columns["fd_path"] = pa.array(fd_names, pa.string())
    columns["captures"] = pa.array(list(data), pa.binary())
    return columns


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
