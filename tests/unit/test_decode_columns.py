"""The export's column-wise decoder (tracing.session.decode_columns) gives, row for row, the
text that decode_events gives one event at a time: for every syscall of every ABI in the checked-in
formats, with registers and results chosen to reach each decoder's branches (NULL and
pointers, negative and 32-bit-wrapping numbers, AT_FDCWD, errors, restart codes, named and
unnamed descriptors), events that captured something mixed in. The export of a session is
compared the same way, value by value (no root)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from syscall_tables import ABI_TABLES, table
from tracing.decode.argspec import SpecTable, checked_in_formats, load_specs
from tracing.decode.render import decode_events
from tracing.model.captures import KIND_BUF, KIND_PATH, KIND_SOCKADDR, pack_field
from tracing.model.paths import PathTable
from tracing.model.stats import EVENT_DTYPE
from tracing.session.decode_columns import decode_columns
from tracing.session.export_decoded import text
from tracing.session.stored import open_session
from tracing.session.stored_session import StoredSession

ARCH = "x86_64"
M64 = (1 << 64) - 1
REGISTERS = (0, 1, 2, 3, 7, 0x40, 0x241, 0x80000, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF,
             0x1_0000_0000, 0x7FFD_1234_5670, M64 - 99, M64, 1 << 63, 0o644, 4096, 0x22, 17)
RESULTS = (0, 1, 3, 4096, 0x7FFF_FFFF, 0x8000_0000, 0x7F12_3456_7000, -1, -2, -9, -13,
           -512, -514, -516, -4095, -4096, -(1 << 63))


@pytest.fixture(scope="module")
def recorded_session(tmp_path_factory: pytest.TempPathFactory) -> StoredSession:
    """The TUI's recorded session with failed opens that captured their paths, journaled."""
    from tests.unit.test_session_decoded import FIXTURE, decorated, journal_of
    from tracing.session.replay import load_snapshots

    snapshots, _ = decorated(load_snapshots(FIXTURE))
    return open_session(journal_of(tmp_path_factory.mktemp("j") / "s.sikte.db", snapshots))


@pytest.fixture(scope="module")
def specs() -> SpecTable:
    return SpecTable(checked_in_formats(), "args.json")


def paths() -> PathTable:
    table = PathTable()
    table.add(b"/etc/passwd")
    table.add(b"/tmp/a<b>\xff")
    return table


def events(seed: int, per_call: int) -> tuple[np.ndarray, list[bytes]]:
    """Every call of every x86_64 ABI, `per_call` events each, a few with captures."""
    rng = np.random.default_rng(seed)
    calls = [(abi, nr) for abi, name in enumerate(ABI_TABLES[ARCH]) for nr in table(name)]
    calls += [(0, 999), (1, 9999)]  # numbers no table names: no spec
    n = len(calls) * per_call
    records = np.zeros(n, dtype=EVENT_DTYPE)
    records["abi"] = [abi for abi, _ in calls for _ in range(per_call)]
    records["nr"] = [nr for _, nr in calls for _ in range(per_call)]
    records["ts"] = np.arange(n) + 1
    choice = rng.integers(0, len(REGISTERS), (n, 6))
    records["args"] = np.array(REGISTERS, dtype=np.uint64)[choice]
    records["ret"] = np.array(RESULTS, dtype=np.int64)[rng.integers(0, len(RESULTS), n)]
    records["fd_path"] = rng.choice([0, 0, 1, 2, 7], n)  # 7: an id with no name
    records["duration_ns"] = rng.integers(0, 10_000, n)
    data = [b""] * n
    for i in rng.choice(n, n // 20, replace=False).tolist():
        data[i] = (pack_field(1, KIND_PATH, b"/x\xff") if i % 3 == 0 else
                   pack_field(1, KIND_BUF, b"hello\x00") if i % 3 == 1 else
                   pack_field(1, KIND_SOCKADDR, b"\x02\x00\x01\xbb\x7f\x00\x00\x01" + b"\0" * 8))
        records["data_len"][i] = len(data[i])
    return records, data


def expected(records: np.ndarray, data: list[bytes], specs: SpecTable,
             table_: PathTable) -> dict[str, list[str]]:
    decoded = decode_events(records, data, ARCH, specs, table_)
    return {"args": [text(d.args_text) for d in decoded],
            "result": [text(d.result_text) for d in decoded],
            "path": [text(d.path) for d in decoded], "addr": [text(d.addr) for d in decoded]}


@pytest.mark.parametrize("seed", [1, 2])
def test_every_call_decodes_as_one_at_a_time(specs: SpecTable, seed: int) -> None:
    records, data = events(seed, 12)
    table_ = paths()
    got = decode_columns(records, data, ARCH, specs, table_, text)
    want = expected(records, data, specs, table_)
    for column, values in want.items():
        mismatches = [(i, int(records["abi"][i]), int(records["nr"][i]), got_, want_)
                      for i, (got_, want_) in enumerate(zip(got[column].to_pylist(), values,
                                                            strict=True)) if got_ != want_]
        assert mismatches == [], (column, mismatches[:5])


def test_many_rows_of_one_call_share_their_texts(specs: SpecTable) -> None:
    """Thousands of rows of a few calls (the column formats and the shared texts), without
    captures and without descriptor names."""
    rng = np.random.default_rng(5)
    n = 20_000
    records = np.zeros(n, dtype=EVENT_DTYPE)
    records["nr"] = rng.choice([0, 1, 3, 9, 257, 262, 110, 72, 13], n)
    records["args"] = rng.integers(0, 1 << 63, (n, 6), dtype=np.uint64) >> rng.integers(
        0, 64, (n, 6), dtype=np.uint64)
    records["ret"] = np.where(rng.random(n) < 0.1, -rng.integers(1, 4096, n),
                              rng.integers(0, 1 << 40, n))
    data = [b""] * n
    got = decode_columns(records, data, ARCH, specs, None, text)
    want = expected(records, data, specs, PathTable())
    for column, values in want.items():
        assert got[column].to_pylist() == values, column


def test_nothing_to_decode(specs: SpecTable) -> None:
    got = decode_columns(np.zeros(0, dtype=EVENT_DTYPE), [], ARCH, specs, None, text)
    assert {c: a.to_pylist() for c, a in got.items()} == {
        "args": [], "result": [], "path": [], "addr": []}


def events_tables(session: StoredSession, rows: int = 1 << 20) -> list[pa.Table]:
    """events.parquet's parts as the export makes them, `rows` events each."""
    from tracing.session.export_events import event_parts
    from tracing.session.export_names import Namer

    return [part() for part in event_parts(session, Namer(session), rows)]


def test_events_in_parts_are_the_events_whole(recorded_session: StoredSession) -> None:
    """events.parquet made a few rows at a time holds what one part holds: the same values,
    the dictionaries the whole file's; and its decoded columns are decode_events' text."""
    session = recorded_session
    whole = pa.concat_tables(events_tables(session, rows=1 << 30))
    parts = events_tables(session, rows=7)
    assert len(parts) == -(-len(session.events) // 7)
    assert {p.schema.field("syscall").type for p in parts} == {whole.schema.field("syscall").type}
    assert [p.column("syscall").chunk(0).dictionary for p in parts[:1]] == [
        whole.column("syscall").chunk(0).dictionary]
    joined = pa.concat_tables(parts)
    assert joined.schema == whole.schema
    for column in whole.column_names:
        assert joined.column(column).to_pylist() == whole.column(column).to_pylist(), column
    decoded = decode_events(session.events, session.event_data, "x86_64", load_specs(),
                            session.paths)
    assert whole.column("args").to_pylist() == [text(d.args_text) for d in decoded]
    assert whole.column("path").to_pylist() == [text(d.path) for d in decoded]
    assert any(whole.column("path").to_pylist())  # some events captured a path


def test_an_empty_session_exports_no_events(recorded_session: StoredSession) -> None:
    import dataclasses

    session = dataclasses.replace(recorded_session, events=recorded_session.events[:0],
                                  event_data=())
    parts = events_tables(session)
    assert len(parts) == 1 and parts[0].num_rows == 0
    assert parts[0].schema.field("args").type == pa.string()
