"""Issue 18: an event whose call was not timed (EVF_UNTIMED) has no duration anywhere it is
shown or stored: strace's -T place says `<->`, a table cell and the event's description "-",
Parquet's duration_ns is null (and reads back as the record it was), a duration filter
matches none of them; events without the flag (sessions saved before it) are as before."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tracing.decode.argspec import checked_in_specs
from tracing.decode.render import (
    decode_events,
    duration_text,
    event_duration,
    format_line,
    render_line,
)
from tracing.model.captures import EVF_SELECTED, EVF_UNTIMED, KIND_PATH, pack_field
from tracing.model.stats import EVENT_DTYPE, Snapshot
from tracing.model.timing import Timing
from tracing.query.event_filter import parse_event_filter
from tracing.session.export import export_parquet
from tracing.session.journal import Journal
from tracing.session.replay import load_snapshots
from tracing.session.stored import open_session
from tracing.session.trace_writer import event_lines
from tracing.session.window import whole, window_snapshot
from tui.event_rows import EventStore, duration_cell, duration_detail
from tui.session import EventBatch

SPECS = checked_in_specs()
FIXTURE = Path(__file__).resolve().parents[1] / "tui" / "data" / "session.jsonl.gz"
OPENAT = 257  # x86_64
AT_FDCWD = (1 << 64) - 100
ENOENT_TEXT = "-1 ENOENT (No such file or directory)"


def opens(names: list[bytes], untimed: list[bool], pid: int = 7, ts: int = 1_000
          ) -> tuple[np.ndarray, tuple[bytes, ...]]:
    """openat(AT_FDCWD, name, O_RDONLY) = -ENOENT each; a timed one took 12 µs, an untimed
    one's record holds 0 and the flag, as the kernel writes them."""
    data = tuple(pack_field(1, KIND_PATH, n) for n in names)
    records = np.zeros(len(names), dtype=EVENT_DTYPE)
    records["ts"] = ts + np.arange(len(names))
    records["pid"] = records["tid"] = pid
    records["nr"] = OPENAT
    records["ret"] = -2
    records["args"][:, 0] = AT_FDCWD
    flags = np.array(untimed, dtype=bool)
    records["duration_ns"] = np.where(flags, 0, 12_000)
    records["flags"] = np.where(flags, EVF_SELECTED | EVF_UNTIMED, EVF_SELECTED)
    records["data_len"] = [len(d) for d in data]
    records.setflags(write=False)
    return records, data


# -- strace's lines --------------------------------------------------------------------------


def test_the_dash_takes_the_time_s_place_in_strace_s_line() -> None:
    assert duration_text(None) == "<->"
    assert duration_text(12_345) == "<0.000012>"
    assert duration_text(1_234_567_891) == "<1.234567>"
    assert format_line("close(3)", "0", untimed=True) == "close(3)" + " " * 32 + "= 0 <->"
    # untimed wins over a duration given with it: the record's 0 is no time.
    assert format_line("close(3)", "0", duration_ns=0, untimed=True).endswith("= 0 <->")
    assert format_line("close(3)", "0", duration_ns=0).endswith("= 0 <0.000000>")
    assert format_line("close(3)", "0").endswith("= 0")  # no -T at all


def test_event_duration_is_none_only_with_the_flag() -> None:
    assert event_duration(0, EVF_SELECTED | EVF_UNTIMED) is None
    assert event_duration(0, EVF_UNTIMED) is None
    assert event_duration(0, EVF_SELECTED) == 0  # timed, and took under a nanosecond
    assert event_duration(12_000, 0) == 12_000  # a record saved before the flag existed


def test_decoded_untimed_events_have_no_duration() -> None:
    records, data = opens([b"/a", b"/b"], [True, False])
    untimed, timed = decode_events(records, data, "x86_64", SPECS)
    assert (untimed.duration_ns, timed.duration_ns) == (None, 12_000)
    assert render_line(untimed) == format_line(
        'openat(AT_FDCWD, "/a", O_RDONLY)', ENOENT_TEXT) + " <->"
    assert render_line(timed) == format_line(
        'openat(AT_FDCWD, "/b", O_RDONLY)', ENOENT_TEXT) + " <0.000012>"
    assert render_line(untimed, multi_process=True) == format_line(
        'openat(AT_FDCWD, "/a", O_RDONLY)', ENOENT_TEXT, prefix="[pid     7] ") + " <->"


@pytest.fixture(scope="module")
def recorded() -> list[Snapshot]:
    return load_snapshots(FIXTURE)


def test_record_trace_lines_show_the_dash(recorded: list[Snapshot]) -> None:
    records, data = opens([b"/a", b"/b", b"/c"], [True, False, True])
    snapshot = dataclasses.replace(recorded[1], events=records, event_data=data)
    assert event_lines(snapshot, SPECS, several=False) == [
        format_line(f'openat(AT_FDCWD, "/{n}", O_RDONLY)', ENOENT_TEXT) + tail + "\n"
        for n, tail in (("a", " <->"), ("b", " <0.000012>"), ("c", " <->"))]


# -- the TUI's cells and the event filter ----------------------------------------------------


def test_cells_and_descriptions() -> None:
    assert duration_cell(None) == "-"
    assert duration_cell(12_000) == "12µs"
    assert duration_cell(0) == "0ns"  # timed: shown as measured
    assert duration_detail(None) == (
        "- (not timed: --timing off, or a call --timing sampled left out)")
    assert duration_detail(5_000) == "5µs (5,000 ns)"


def test_the_event_store_keeps_no_duration_for_untimed_events(recorded: list[Snapshot]):
    records, data = opens([b"/a", b"/b", b"/c"], [True, False, True])
    snapshot = dataclasses.replace(recorded[1], events=records, event_data=data)
    store = EventStore()
    assert store.update([EventBatch(0, records, data, snapshot)]) == 3
    assert [e.duration_ns for e in store.events] == [None, 12_000, None]


@dataclass(frozen=True)
class Ev:
    pid: int = 42
    tid: int = 42
    comm: str = "app"
    thread_comm: str = "app"
    name: str = "openat"
    paths: tuple[str, ...] = ()
    addr: str = ""
    fds: tuple[int, ...] = ()
    ret: int = -1
    errno: str = "ENOENT"
    duration_ns: int | None = None


@pytest.mark.parametrize(("text", "untimed", "timed_0", "timed_2ms"), [
    ("duration>=0", False, True, True),
    ("duration<1ms", False, True, False),
    ("duration=0", False, True, False),
    ("duration>1ms", False, False, True),
    ("duration!=0", True, False, True),  # "is not 0": an unknown duration is not
    ("!duration>1ms", True, True, False),
])
def test_a_duration_comparison_never_holds_for_an_untimed_call(text, untimed, timed_0,
                                                              timed_2ms) -> None:
    flt = parse_event_filter(text)
    assert [flt.matches(Ev(duration_ns=d)) for d in (None, 0, 2_000_000)] == [
        untimed, timed_0, timed_2ms]


# -- the store: journal, Parquet, read back --------------------------------------------------


def with_opens(recorded: list[Snapshot]) -> list[Snapshot]:
    """The recording with three failed opens (first and last untimed) in its second tick."""
    pid = next(iter(recorded[-1].processes))
    out = []
    for i, s in enumerate(recorded):
        if i == 1:
            records, data = opens([b"/a", b"/b", b"/c"], [True, False, True], pid,
                                  s.ts_ns - 1_000)
            s = dataclasses.replace(s, events=records, event_data=data)
        out.append(dataclasses.replace(s, timing=Timing.SAMPLED))
    return out


def ours(events: np.ndarray) -> np.ndarray:
    """The opens with_opens added (the recording's own events have no flags: schema 1)."""
    return events[(events["nr"] == OPENAT) & (events["flags"] != 0)]


def journal_of(path: Path, snapshots: list[Snapshot]) -> Path:
    journal = Journal(path, {"targets": list(snapshots[-1].targets)})
    for s in snapshots:
        journal.put(s)
    journal.close()
    return path


def test_the_journal_keeps_the_flag(tmp_path: Path, recorded: list[Snapshot]) -> None:
    snapshots = with_opens(recorded)
    session = open_session(journal_of(tmp_path / "s.sikte.db", snapshots))
    mine = ours(session.events)
    assert mine["flags"].tolist() == [EVF_SELECTED | EVF_UNTIMED, EVF_SELECTED,
                                      EVF_SELECTED | EVF_UNTIMED]
    assert mine["duration_ns"].tolist() == [0, 12_000, 0]
    shown = window_snapshot(session, whole(session), seq=1)  # what `open` shows
    shown_opens = ours(shown.events)
    assert (shown_opens == mine).all()


def test_parquet_writes_null_for_untimed_and_reads_the_records_back(
        tmp_path: Path, recorded: list[Snapshot]) -> None:
    snapshots = with_opens(recorded)
    session = open_session(journal_of(tmp_path / "s.sikte.db", snapshots))
    out = export_parquet(session, tmp_path / "pq")
    table = pq.read_table(out / "events.parquet")
    assert table.schema.field("duration_ns").type == pa.int64()
    rows = [r for r in table.select(["nr", "duration_ns", "flags", "path"]).to_pylist()
            if r["nr"] == OPENAT and r["flags"]]
    assert [(r["path"], r["duration_ns"], r["flags"]) for r in rows] == [
        ("/a", None, 5), ("/b", 12_000, 1), ("/c", None, 5)]
    # pandas and DuckDB users see a missing value, never a 0 time.
    frame = table.to_pandas()
    assert frame.loc[frame["flags"] != 0, "duration_ns"].isna().tolist() == [
        True, False, True]
    back = open_session(out)
    assert (back.events == session.events).all()
    assert back.event_data == session.event_data


def test_a_null_duration_reads_as_untimed_even_without_the_flag(
        tmp_path: Path, recorded: list[Snapshot]) -> None:
    """A table changed by hand (flags rewritten): null still means not timed."""
    snapshots = with_opens(recorded)
    session = open_session(journal_of(tmp_path / "s.sikte.db", snapshots))
    out = export_parquet(session, tmp_path / "pq")
    table = pq.read_table(out / "events.parquet")
    index = table.schema.get_field_index("flags")
    plain_flags = pa.array([f & ~EVF_UNTIMED for f in table.column("flags").to_pylist()],
                           pa.uint8())
    pq.write_table(table.set_column(index, "flags", plain_flags), out / "events.parquet")
    back = open_session(out)
    mine = ours(back.events)
    assert mine["flags"].tolist() == [EVF_SELECTED | EVF_UNTIMED, EVF_SELECTED,
                                      EVF_SELECTED | EVF_UNTIMED]
    assert mine["duration_ns"].tolist() == [0, 12_000, 0]


def test_a_session_without_untimed_events_exports_as_before(
        tmp_path: Path, recorded: list[Snapshot]) -> None:
    snapshots = with_opens(recorded)
    records, data = opens([b"/a", b"/b"], [False, False])
    snapshots[1] = dataclasses.replace(snapshots[1], events=records, event_data=data,
                                       timing=Timing.EXACT)
    session = open_session(journal_of(tmp_path / "s.sikte.db", snapshots))
    out = export_parquet(session, tmp_path / "pq")
    column = pq.read_table(out / "events.parquet").column("duration_ns")
    assert column.null_count == 0
    assert column.to_pylist() == session.events["duration_ns"].tolist()


@pytest.mark.parametrize(("value", "message"), [
    (1.5, "holds 1.5 where a whole number belongs"),
    (float("inf"), "holds inf where a whole number belongs"),
    (-3.0, "holds -3, out of range"),
])
def test_a_damaged_duration_column_is_refused_in_one_line(
        tmp_path: Path, recorded: list[Snapshot], value: float, message: str) -> None:
    """Durations are outside input: a float column (as nulls make it) must still hold
    whole, natural numbers."""
    from tracing.errors import UserError

    session = open_session(journal_of(tmp_path / "s.sikte.db", with_opens(recorded)))
    out = export_parquet(session, tmp_path / "pq")
    table = pq.read_table(out / "events.parquet")
    durations = [None if d is None else float(d) for d in table.column("duration_ns")
                 .to_pylist()]
    durations[-1] = value
    index = table.schema.get_field_index("duration_ns")
    pq.write_table(table.set_column(index, "duration_ns", pa.array(durations, pa.float64())),
                   out / "events.parquet")
    with pytest.raises(UserError, match=re.escape(message)) as err:
        open_session(out)
    assert "\n" not in str(err.value)
