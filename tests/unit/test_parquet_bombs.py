"""Parquet tables that are small on disk and huge once read (a red-team 2.6 MB timeline of 30M
identical rows took `diff` to 16.9 GB): refused from the footer, before any data is read, in
one line with exit 2, by `open`, `export` and `diff`."""

from __future__ import annotations

import os
import resource
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable, Generator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.unit.test_diff import RUN_A, write_session
from tracing.errors import UserError
from tracing.session.export import export_parquet
from tracing.session.parquet_tables import (
    MAX_BYTES,
    MAX_ROWS,
    MAX_SESSION_BYTES,
    ROW_BYTES,
)
from tracing.session.stored import open_session

ROOT = Path(__file__).resolve().parents[2]
ROWS_PER_GROUP = 1 << 20
# The child's data segment: far above what refusing takes, far below what reading the bombs
# would (so a reader that did read them fails here instead of taking the machine).
CHILD_DATA_LIMIT = 3 << 30


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real export (journal -> Parquet), the model every bomb is made from."""
    base = tmp_path_factory.mktemp("bombs")
    return export_parquet(open_session(write_session(base / "a.sikte.db", RUN_A)),
                          base / "real")


Writer = Callable[[Path, pa.Table], None]


def with_timeline(session: Path, target: Path, write: Writer) -> Path:
    shutil.copytree(session, target)
    (target / "timeline.parquet").unlink()
    write(target / "timeline.parquet", pq.read_table(session / "timeline.parquet"))
    return target


def repeated(rows: int) -> Writer:
    """`rows` copies of one real timeline row (a multiple of ROWS_PER_GROUP): dictionary and
    run-length encoding keep each column chunk a few hundred bytes."""
    def write(path: Path, real: pa.Table) -> None:
        group = real.take([0] * ROWS_PER_GROUP)
        with pq.ParquetWriter(path, real.schema, compression="zstd") as writer:
            for _ in range(rows // ROWS_PER_GROUP):
                writer.write_table(group, row_group_size=ROWS_PER_GROUP)
        assert pq.read_metadata(path).num_rows == rows
        assert path.stat().st_size < 1 << 20
    return write


# --- A footer rewritten to claim what the file does not hold (Thrift compact protocol) ---

def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def _zigzag_varint(value: int) -> bytes:
    n = (value << 1) ^ (value >> 63)
    out = bytearray()
    while True:
        if n < 0x80:
            return bytes(out + bytes([n]))
        out.append(n & 0x7F | 0x80)
        n >>= 7


Span = tuple[tuple[int, ...], int, int]  # Thrift field ids from FileMetaData, start, end


def _struct(data: bytes, at: int, path: tuple[int, ...]) -> Generator[Span, None, int]:
    """Yields every i64 inside the struct at `at`; returns where it ends."""
    last = 0
    while True:
        header = data[at]
        at += 1
        if header == 0:
            return at
        kind, delta = header & 0x0F, header >> 4
        if delta:
            last += delta
        else:
            raw, at = _varint(data, at)
            last = (raw >> 1) ^ -(raw & 1)
        at = yield from _value(data, at, kind, (*path, last))


def _value(data: bytes, at: int, kind: int, path: tuple[int, ...]) -> Generator[
        Span, None, int]:
    """Yields the i64s within one value of `kind` at `at`; returns where it ends."""
    if kind in (1, 2):  # a boolean field's value is in its header
        return at
    if kind == 3:
        return at + 1
    if kind in (4, 5):
        return _varint(data, at)[1]
    if kind == 6:
        end = _varint(data, at)[1]
        yield path, at, end
        return end
    if kind == 7:
        return at + 8
    if kind == 8:
        size, at = _varint(data, at)
        return at + size
    if kind in (9, 10):
        header = data[at]
        at += 1
        size, element = header >> 4, header & 0x0F
        if size == 15:
            size, at = _varint(data, at)
        for _ in range(size):
            at = at + 1 if element in (1, 2) else (yield from _value(data, at, element, path))
        return at
    if kind == 12:
        return (yield from _struct(data, at, path))
    raise ValueError(f"Thrift type {kind} in a Parquet footer")


def claiming(field: tuple[int, ...], value: int) -> Writer:
    """A writer of the real timeline whose footer's every i64 at `field` (Thrift field ids
    from FileMetaData, through lists) says `value`: the file itself is unchanged."""
    def write(path: Path, real: pa.Table) -> None:
        pq.write_table(real, path)
        data = path.read_bytes()
        (length,) = struct.unpack("<I", data[-8:-4])
        start = len(data) - 8 - length
        footer = data[start:-8]
        spans = [(a, b) for where, a, b in _struct(footer, 0, ()) if where == field]
        assert spans
        for a, b in reversed(spans):
            footer = footer[:a] + _zigzag_varint(value) + footer[b:]
        path.write_bytes(data[:start] + footer + struct.pack("<I", len(footer)) + b"PAR1")
    return write


# FileMetaData.row_groups(4) -> RowGroup.columns(1) -> ColumnChunk.meta_data(3) ->
# ColumnMetaData.total_uncompressed_size(6) / num_values(5); FileMetaData.num_rows(3).
HUGE_UNCOMPRESSED = claiming((4, 1, 3, 6), 1 << 40)
HUGE_VALUES = claiming((4, 1, 3, 5), 1 << 40)
HUGE_ROWS = claiming((3,), 1 << 40)

MANY_ROWS = (MAX_ROWS // ROWS_PER_GROUP + 1) * ROWS_PER_GROUP
# Under MAX_ROWS, past what a session may take loaded (timeline rows are the heaviest).
HEAVY_ROWS = (MAX_SESSION_BYTES // ROW_BYTES["timeline"] // ROWS_PER_GROUP + 1) \
    * ROWS_PER_GROUP
ROWS_LINE = f"more than the {MAX_ROWS:,} a session's table holds (not a session sikte-tui " \
    "wrote; check where it came from)"
BYTES_LINE = f"more than the {MAX_BYTES:,} a session's table holds (not a session " \
    "sikte-tui wrote; check where it came from)"
# Each bomb and the end of its line (after the file's path).
BOMBS: dict[str, tuple[Writer, str]] = {
    "many-rows": (repeated(MANY_ROWS),
                  f"it has a timeline.parquet of {MANY_ROWS:,} rows, {ROWS_LINE}"),
    "huge-rows": (HUGE_ROWS, f"it has a timeline.parquet of {1 << 40:,} rows, {ROWS_LINE}"),
    "huge-uncompressed": (HUGE_UNCOMPRESSED, "it has a timeline.parquet whose columns take "),
    "huge-values": (HUGE_VALUES, "it has a timeline.parquet whose columns take "),
    "heavy-session": (repeated(HEAVY_ROWS), "its tables hold "),
}


@pytest.fixture(scope="module")
def bombs(session: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("bombs")
    return {name: with_timeline(session, base / name, write)
            for name, (write, _) in BOMBS.items()}


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_DATA, (CHILD_DATA_LIMIT, CHILD_DATA_LIMIT))


def sikte(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *argv], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, preexec_fn=_limited,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("bomb", sorted(BOMBS))
@pytest.mark.parametrize("command", ["open", "export", "diff"])
def test_refused_in_one_line_by_every_command(bombs: dict[str, Path], session: Path,
                                              tmp_path: Path, bomb: str,
                                              command: str) -> None:
    path = bombs[bomb]
    argv = {"open": ["open", str(path)],
            "export": ["export", str(path), "--output", str(tmp_path / "out")],
            "diff": ["diff", str(session), str(path)]}[command]
    run = sikte(argv)
    assert run.returncode == 2, run.stderr[-2000:]
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr[-2000:]
    line = lines[0]
    assert line.startswith(f"sikte-tui: {path} ")
    assert BOMBS[bomb][1] in line and line.endswith("check where it came from)")
    if "columns take" in line:
        assert line.endswith(BYTES_LINE)
    if bomb == "heavy-session":
        assert f"once loaded, more than the {MAX_SESSION_BYTES:,} a session may take" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("bomb", sorted(BOMBS))
def test_refused_before_any_data_is_read(bombs: dict[str, Path],
                                         monkeypatch: pytest.MonkeyPatch, bomb: str) -> None:
    """The footer alone decides: reading any of the file's data fails this test."""
    def no_data(*args: object, **kwargs: object) -> None:
        raise AssertionError("data read from a table refused by its footer")
    for reader in ("read", "read_row_group", "read_row_groups", "iter_batches"):
        monkeypatch.setattr(pq.ParquetFile, reader, no_data)
    monkeypatch.setattr(pq, "read_table", no_data)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(UserError, match=r"timeline\.parquet|once loaded"):
        open_session(bombs[bomb])
    # ru_maxrss is in KiB: the peak moved by less than the bombs' one row group would take.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 64 << 10


def test_text_repeated_past_the_bound_is_refused_before_it_is_expanded(
        session: Path, tmp_path: Path) -> None:
    """One long dictionary entry on every row: a few KB on disk, more than MAX_BYTES once
    expanded; measured on its dictionary and refused."""
    path = tmp_path / "text"
    shutil.copytree(session, path)
    processes = pq.read_table(session / "processes.parquet")
    rows = (MAX_BYTES >> 20) + 1
    exe = pa.DictionaryArray.from_arrays(pa.array([0] * rows, pa.int32()),
                                         pa.array(["x" * (1 << 20)]))
    bomb = processes.take([0] * rows).set_column(
        processes.schema.get_field_index("exe"), "exe", exe)
    (path / "processes.parquet").unlink()
    pq.write_table(bomb, path / "processes.parquet", compression="zstd")
    assert os.path.getsize(path / "processes.parquet") < 1 << 20
    run = sikte(["open", str(path)])
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr[-2000:]
    (line,) = run.stderr.strip().splitlines()
    assert line.endswith(f"it has a processes.parquet whose text takes more than the "
                         f"{MAX_BYTES:,} bytes a session's table holds (not a session "
                         "sikte-tui wrote; check where it came from)")


def test_a_real_export_still_reads_and_only_its_columns(session: Path, tmp_path: Path) -> None:
    """A column the reader does not use is not read: one that no reader could decode does not
    stop the session from opening."""
    path = tmp_path / "extra"
    shutil.copytree(session, path)
    timeline = pq.read_table(session / "timeline.parquet")
    extra = timeline.append_column("someone_elses", pa.array(
        [[{"x": 1}]] * timeline.num_rows, pa.list_(pa.struct([("x", pa.int8())]))))
    pq.write_table(extra, path / "timeline.parquet")
    assert len(open_session(path).timeline) == len(open_session(session).timeline) > 0


def test_text_in_a_struct_named_like_a_list_is_refused(session: Path, tmp_path: Path) -> None:
    """comm as {list: {element: text}}: its leaf's path reads like a list of text, but what
    Arrow makes of it is not one whose expanded text is measured: refused, not expanded."""
    path = tmp_path / "struct"
    shutil.copytree(session, path)
    processes = pq.read_table(session / "processes.parquet")
    kind = pa.struct([("list", pa.struct([("element", pa.string())]))])
    comm = pa.array([{"list": {"element": "app"}}] * processes.num_rows, kind)
    pq.write_table(processes.set_column(processes.schema.get_field_index("comm"), "comm",
                                        comm), path / "processes.parquet")
    with pytest.raises(UserError) as caught:
        open_session(path)
    assert str(caught.value) == (f"{path} is not a readable sikte-tui session: it has a "
                                 "processes.parquet with text nested where no session keeps "
                                 "it (not a session sikte-tui wrote; check where it came "
                                 "from)")
