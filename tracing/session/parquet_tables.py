"""Reading the tables of a Parquet session directory, as untrusted input, within bounds
judged from each file's footer before any table's data is read; only the columns the reader
uses are read.

A Parquet file is small for what it holds: a dictionary- or run-length-encoded column of
identical values stores millions of rows in a few bytes (a 2.6 MB timeline.parquet of 30M
rows took 16.9 GB to load), and its footer says whatever its author wrote. So the footer's
own numbers are bounded: rows, and the bytes its columns take once decoded (fixed-width
values counted at their width, whatever their encoding; the pages' uncompressed sizes); the
reader (Arrow) decodes no more values than the footer declares. Text and binary columns are
read as dictionaries and their decoded length summed before they are expanded, since one
long dictionary entry repeated per row is the one growth the footer does not show.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import pandas as pd

from tracing.boundary.untrusted_files import Refused, open_untrusted
from tracing.session.checks import Bad, one_line, refused

# Rows in one table. What record can write: individual events stop at the journal's cap
# (1 GiB by default: at most 11.2M events of 96 bytes, 2.8M when held in memory); the
# timeline gains a row per tick (4 a second) and active (thread, syscall).
MAX_ROWS = 1 << 24
# Bytes of one table's columns once decoded, and of the file: a real export's largest
# table, events at the journal's cap, decodes to 11.2M rows of about 100 bytes plus what
# was captured (itself within the cap).
MAX_BYTES = 4 << 30
# What a session's rows take once loaded, about (measured: 2^22 timeline rows peaked at
# 3.4 GB, 2^21 events at 1.1 GB; lists and text per row cost most), and the most a session
# may take by that count: `diff` reads two, and 2 x 6 GiB stays well below the development
# machines' 23 GB without swap, where 2^24 timeline rows alone would take 14 GB.
ROW_BYTES = {"timeline": 820, "syscalls": 820, "events": 430}
OTHER_ROW_BYTES = 1024  # processes, samples, files...: lists of text per row
MAX_SESSION_BYTES = 6 << 30

_WIDTH = {"BOOLEAN": 1, "INT32": 4, "INT64": 8, "INT96": 12, "FLOAT": 4, "DOUBLE": 8,
          "BYTE_ARRAY": 4}  # BYTE_ARRAY: the offset or dictionary index per value

_TS = ("ts",)
_HIST = ("hist_low_ns", "hist_count")
# The columns the reader uses from each table (others in the file are not read).
COLUMNS: dict[str, tuple[str, ...]] = {
    "syscalls": ("pid", "tid", "nr", "abi", "count", "errors", "total_ns", "max_ns",
                 "min_ns", *_HIST),
    "timeline": (*_TS, "pid", "tid", "nr", "abi", "count", "errors", "total_ns", "max_ns",
                 *_HIST),
    "events": (*_TS, "pid", "tid", "nr", "ret", "duration_ns",
               *(f"arg{i}" for i in range(6)), "captures", "flags", "abi", "fd_path"),
    "processes": ("pid", "ppid", "comm", "exe", "cmdline", "abi", "container", "start_ts",
                  "exit_ts", "exit_code", "exit_signal", "threads", "thread_names_dropped"),
    "samples": (*_TS, "pid", "tid", "comm", "kernel_frames", "count", "frames", "modules"),
    "connections": (*_TS, "end_ts", "conn_id", "pid", "tid", "comm", "cgroup_id", "family",
                    "saddr", "sport", "daddr", "dport", "direction", "state", "result",
                    "error", "cgroup_path", "container_id", "container_name",
                    "container_runtime"),
    "files": ("pid", "opens", "calls", "reads", "bytes_read", "writes", "bytes_written",
              "io_ns", "path_bytes", "path", "open_errnos"),
    "threads": ("pid", "tid", "name", "alive", "exit_ts"),
}

_CHECK = "check where it came from"
_ADVICE = f"not a session sikte-tui wrote; {_CHECK}"


def read_tables(path: Path, dir_fd: int, names: Iterable[str]) -> dict[str, pd.DataFrame]:
    """The tables of a Parquet session directory, each file opened from it without following
    links; every table's footer is checked before any table's data is read."""
    with contextlib.ExitStack() as stack:
        files = {n: stack.enter_context(_table_file(path, dir_fd, n)) for n in names}
        plans = {n: _guarded(n, planned_read, f, n) for n, f in files.items()}
        loaded = sum(rows * ROW_BYTES.get(n, OTHER_ROW_BYTES) for n, (_, _, rows)
                     in plans.items())
        if loaded > MAX_SESSION_BYTES:
            raise Bad(f"its tables hold {sum(p[2] for p in plans.values()):,} rows, about "
                      f"{loaded:,} bytes once loaded, more than the {MAX_SESSION_BYTES:,} a "
                      f"session may take (a session you recorded this large opens from its "
                      f"journal; else {_CHECK})")
        return {n: _guarded(n, _read, f, n, *plans[n][:2]) for n, f in files.items()}


@contextlib.contextmanager
def _table_file(path: Path, dir_fd: int, name: str) -> Iterator[IO[bytes]]:
    try:
        fd = open_untrusted(f"{name}.parquet", dir_fd=dir_fd)
    except Refused as why:
        raise refused(path / f"{name}.parquet", why) from None
    with os.fdopen(fd, "rb") as f:
        yield f


def _guarded(name: str, step: Any, *args: Any) -> Any:
    """step(*args), with what Arrow and pandas raise on a damaged file as Bad."""
    import pyarrow.lib

    try:
        return step(*args)
    except (ValueError, TypeError, KeyError, IndexError, OverflowError,
            pyarrow.lib.ArrowException) as err:
        raise Bad(f"it has a {name}.parquet that cannot be read ({one_line(err)})") from None


def _read(f: IO[bytes], name: str, columns: list[str], texts: list[str]) -> pd.DataFrame:
    import pyarrow.parquet as pq

    f.seek(0)
    # Without Arrow's thread pools: a pool thread still joinable when the interpreter exits
    # aborts the process (apache/arrow#34314), seen after a one-line refusal.
    table = pq.ParquetFile(f, read_dictionary=texts, pre_buffer=False).read(
        columns=columns, use_threads=False)
    return expanded(table, name).to_pandas(use_threads=False)


def planned_read(f: IO[bytes], name: str) -> tuple[list[str], list[str], int]:
    """The columns of the table to read, the paths of its text and binary leaves (to read
    as dictionaries) and its rows; Bad, before any data is read, when the footer declares more rows
    or decoded bytes than a session holds."""
    import pyarrow.parquet as pq

    size = os.fstat(f.fileno()).st_size
    if size > MAX_BYTES:  # the footer too is within it
        raise Bad(f"it has a {name}.parquet of {size:,} bytes, more than the {MAX_BYTES:,} "
                  f"a session's table takes ({_ADVICE})")
    metadata = pq.read_metadata(f)
    rows = metadata.num_rows
    if rows > MAX_ROWS:
        raise Bad(f"it has a {name}.parquet of {rows:,} rows, more than the {MAX_ROWS:,} "
                  f"a session's table holds ({_ADVICE})")
    schema = metadata.schema
    wanted = set(COLUMNS.get(name, ()))
    columns = [c for c in schema.to_arrow_schema().names if c in wanted]
    leaves = [i for i in range(metadata.num_columns)
              if schema.column(i).path.split(".")[0] in wanted]
    decoded = 0
    for g in range(metadata.num_row_groups):
        group = metadata.row_group(g)
        for i in leaves:
            chunk = group.column(i)
            width = _WIDTH.get(chunk.physical_type, 0) or max(schema.column(i).length or 0, 1)
            decoded += max(chunk.num_values, 0) * width + max(chunk.total_uncompressed_size, 0)
    if decoded > MAX_BYTES:
        raise Bad(f"it has a {name}.parquet whose columns take {decoded:,} bytes decoded, "
                  f"more than the {MAX_BYTES:,} a session's table holds ({_ADVICE})")
    # Top-level text and lists of text; text inside structs (a files row's errno names)
    # stays plain.
    texts = [schema.column(i).path for i in leaves
             if schema.column(i).physical_type == "BYTE_ARRAY"
             and schema.column(i).path.count(".") in (0, 2)]
    return columns, texts, rows


def expanded(table: Any, name: str) -> Any:
    """The table with its dictionary columns expanded to plain ones; Bad, before expanding,
    when their text would take more than MAX_BYTES."""
    import pyarrow as pa
    import pyarrow.compute as pc

    total = 0
    plain = []
    for column in table.columns:
        kind = _plain_type(column.type, name)
        if kind is None:
            plain.append(column)
            continue
        for chunk in column.chunks:
            values = chunk
            while not pa.types.is_dictionary(values.type):
                values = values.flatten()  # lists of text (cmdline, frames): their values
            lengths = pc.binary_length(values.dictionary).take(values.indices)
            total += pc.sum(lengths).as_py() or 0
        if total > MAX_BYTES:
            raise Bad(f"it has a {name}.parquet whose text takes more than the "
                      f"{MAX_BYTES:,} bytes a session's table holds ({_ADVICE})")
        plain.append(column.cast(kind))
    return pa.table(plain, names=table.column_names)


def _plain_type(kind: Any, name: str) -> Any:
    """kind without dictionaries (None: it has none), for top-level text and lists of it."""
    import pyarrow as pa

    if pa.types.is_dictionary(kind):
        return kind.value_type
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        inner = _plain_type(kind.value_type, name)
        if inner is None:
            return None
        maker = pa.list_ if pa.types.is_list(kind) else pa.large_list
        return maker(pa.field(kind.value_field.name, inner, kind.value_field.nullable))
    if _has_dictionary(kind):  # text deeper than a list (a struct named like one): unmeasured
        raise Bad(f"it has a {name}.parquet with text nested where no session keeps it "
                  f"({_ADVICE})")
    return None


def _has_dictionary(kind: Any) -> bool:
    import pyarrow as pa

    if pa.types.is_dictionary(kind):
        return True
    return pa.types.is_nested(kind) and any(
        _has_dictionary(kind.field(i).type) for i in range(kind.num_fields))
