"""Issue 15 in the session store: captured fields, path names and per-file totals through the
journal (schema 3), an old schema-2 journal still read, Parquet's decoded columns and
files.parquet, Parquet read back, and snapshot recordings (no root)."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pyarrow.parquet as pq
import pytest

from tracing.model.captures import EVF_SELECTED, KIND_PATH, pack_field
from tracing.model.files import FileKey, FileStats
from tracing.model.paths import PathTable
from tracing.model.stats import EVENT_DTYPE, EVENT_DTYPE_V1, Snapshot
from tracing.session.export import export_parquet
from tracing.session.journal import Journal
from tracing.session.replay import load_snapshots, save_snapshots
from tracing.session.schema import FORMAT, MIGRATIONS, SCHEMA_VERSION
from tracing.session.stored import open_session
from tracing.session.window import whole, window_snapshot

FIXTURE = Path(__file__).resolve().parents[1] / "tui" / "data" / "session.jsonl.gz"
OPENAT = 257  # x86_64
AT_FDCWD = (1 << 64) - 100
# A name with a space, a quote and a newline, and one that is not UTF-8.
ODD = b'/tmp/a b"c\nd'
NOT_UTF8 = b"/tmp/\xff\xfe"


@pytest.fixture(scope="module")
def recorded() -> list[Snapshot]:
    return load_snapshots(FIXTURE)


def failed_opens(base: Snapshot, names: list[bytes], pid: int) -> tuple[np.ndarray, tuple]:
    """openat(AT_FDCWD, name, O_RDONLY) = -ENOENT for each name, with its captured path."""
    data = tuple(pack_field(1, KIND_PATH, name) for name in names)
    records = np.zeros(len(names), dtype=EVENT_DTYPE)
    records["ts"] = base.ts_ns - 1000 + np.arange(len(names))
    records["pid"] = records["tid"] = pid
    records["nr"] = OPENAT
    records["ret"] = -2
    records["duration_ns"] = 12_000
    records["args"][:, 0] = AT_FDCWD
    records["flags"] = EVF_SELECTED
    records["data_len"] = [len(d) for d in data]
    records.setflags(write=False)
    return records, data


def decorated(snapshots: list[Snapshot]) -> tuple[list[Snapshot], PathTable]:
    """The recorded stream with failed opens in two snapshots, a path table growing between
    them and per-file totals changing."""
    paths = PathTable()
    pid = next(iter(snapshots[-1].processes))
    out = []
    for i, s in enumerate(snapshots):
        events, data = s.events, ()
        files: dict[FileKey, FileStats] = {}
        if i >= 1:
            log = paths.add(b"/var/log/app.log")
            files[FileKey(pid, log)] = FileStats(1, (), 3, 1, 10, 2, 20, 300)
            files[FileKey(pid, paths.add(ODD))] = FileStats(1, ((2, 1),), 0, 0, 0, 0, 0, 0)
        if i == 1:
            events, data = failed_opens(s, [ODD, b"/etc/missing"], pid)
        if i >= 2:
            files[FileKey(pid, log)] = FileStats(1, (), 5, 2, 15, 3, 40, 700)
            files[FileKey(pid, paths.add(NOT_UTF8))] = FileStats(2, ((2, 1), (13, 1)),
                                                                 0, 0, 0, 0, 0, 0)
        if i == 2:
            events, data = failed_opens(s, [NOT_UTF8], pid)
        out.append(dataclasses.replace(s, events=events, event_data=data, paths=paths,
                                       files=MappingProxyType(files)))
    return out, paths


def journal_of(path: Path, snapshots: list[Snapshot]) -> Path:
    journal = Journal(path, {"targets": list(snapshots[-1].targets)})
    for s in snapshots:
        journal.put(s)
    journal.close()
    return path


def test_the_journal_keeps_captures_paths_and_files(tmp_path: Path, recorded):
    snapshots, paths = decorated(recorded)
    session = open_session(journal_of(tmp_path / "s.sikte.db", snapshots))
    want_events = np.concatenate([s.events for s in snapshots])
    want_data = tuple(d for s in snapshots for d in (s.event_data or (b"",) * len(s.events)))
    assert (session.events == want_events).all()
    assert session.event_data == want_data
    assert session.paths is not None
    assert [session.paths.name(i) for i in range(len(session.paths))] == [
        paths.name(i) for i in range(len(paths))]
    assert dict(session.files) == dict(snapshots[-1].files)
    shown = window_snapshot(session, whole(session), seq=1)
    assert shown.event_data == want_data[-len(shown.events):]
    assert dict(shown.files) == dict(snapshots[-1].files)
    assert shown.paths.name(3) == ODD


def test_a_schema_2_journal_still_reads(tmp_path: Path, recorded):
    path = tmp_path / "old.sikte.db"
    db = sqlite3.connect(path)
    for version in (1, 2):
        for statement in MIGRATIONS[version]:
            db.execute(statement)
    meta = {"format": FORMAT, "schema_version": 2, "start_ts_ns": 100, "end_ts_ns": 300,
            "start_wall_time": 1.5, "arch": "x86_64"}
    db.executemany("INSERT INTO meta VALUES (?, ?)",
                   [(k, json.dumps(v)) for k, v in meta.items()])
    old = np.zeros(3, dtype=EVENT_DTYPE_V1)
    old["ts"] = [200, 150, 250]  # out of order, as per-CPU buffers leave them
    old["pid"] = old["tid"] = 7
    old["nr"] = OPENAT
    old["ret"] = [-2, 3, -13]
    old["args"][:, 1] = [11, 22, 33]
    db.execute("INSERT INTO event_batches (first_ts_ns, last_ts_ns, n, data) "
               "VALUES (150, 250, 3, ?)", (old.tobytes(),))
    db.commit()
    db.close()
    session = open_session(path)
    assert session.events["ts"].tolist() == [150, 200, 250]
    assert session.events["ret"].tolist() == [3, -2, -13]
    assert session.events["args"][:, 1].tolist() == [22, 11, 33]
    assert session.events["data_len"].tolist() == [0, 0, 0]
    assert session.event_data == (b"", b"", b"")
    assert session.paths is None
    assert dict(session.files) == {}
    assert SCHEMA_VERSION == 5


def test_a_batch_whose_captures_do_not_match_is_refused(tmp_path: Path, recorded):
    from tracing.errors import UserError

    snapshots, _ = decorated(recorded)
    path = journal_of(tmp_path / "s.sikte.db", snapshots)
    db = sqlite3.connect(path)
    db.execute("UPDATE event_batches SET captures = x'00'")
    db.commit()
    db.close()
    with pytest.raises(UserError, match="captured fields do not match"):
        open_session(path)


def test_parquet_has_the_decoded_columns_and_the_files(tmp_path: Path, recorded):
    snapshots, _ = decorated(recorded)
    session = open_session(journal_of(tmp_path / "s.sikte.db", snapshots))
    out = export_parquet(session, tmp_path / "pq")
    events = pq.read_table(out / "events.parquet").to_pandas()
    opens = events[(events["nr"] == OPENAT) & (events["path"] != "")]
    assert opens["path"].tolist() == ['/tmp/a b"c\nd', "/etc/missing", "/tmp/\\xff\\xfe"]
    assert opens["errno_name"].tolist() == ["ENOENT"] * 3
    assert opens["abi"].astype(str).tolist() == ["x86_64"] * 3
    assert opens["captures"].tolist() == [pack_field(1, KIND_PATH, n)
                                          for n in (ODD, b"/etc/missing", NOT_UTF8)]
    assert opens["result"].tolist() == ["-1 ENOENT (No such file or directory)"] * 3
    assert opens["args"].tolist()[1] == 'AT_FDCWD, "/etc/missing", O_RDONLY'
    files = pq.read_table(out / "files.parquet").to_pylist()
    pid = files[0]["pid"]
    assert [(f["path"], f["opens"], f["open_errors"], f["bytes_read"], f["bytes_written"],
             f["io_ns"]) for f in files] == [
        ('/tmp/a b"c\nd', 1, 1, 0, 0, 0), ("/tmp/\\xff\\xfe", 2, 2, 0, 0, 0),
        ("/var/log/app.log", 1, 0, 15, 40, 700)]
    assert files[1]["open_errnos"] == [{"errno": 2, "errno_name": "ENOENT", "count": 1},
                                       {"errno": 13, "errno_name": "EACCES", "count": 1}]
    assert files[1]["path_bytes"] == NOT_UTF8
    assert {f["pid"] for f in files} == {pid}


def test_parquet_reads_back_what_the_tui_needs(tmp_path: Path, recorded):
    snapshots, _ = decorated(recorded)
    session = open_session(journal_of(tmp_path / "s.sikte.db", snapshots))
    back = open_session(export_parquet(session, tmp_path / "pq"))
    assert back.event_data == session.event_data
    assert (back.events[["ts", "pid", "nr", "ret", "abi", "flags", "data_len"]]
            == session.events[["ts", "pid", "nr", "ret", "abi", "flags", "data_len"]]).all()
    assert back.paths is not None
    named = {(k.pid, back.paths.name(k.path_id)): v for k, v in back.files.items()}
    assert named == {(k.pid, session.paths.name(k.path_id)): v
                     for k, v in session.files.items()}


def test_a_recording_keeps_the_decoded_fields(tmp_path: Path, recorded):
    snapshots, paths = decorated(recorded)
    save_snapshots(tmp_path / "r.jsonl.gz", snapshots)
    back = load_snapshots(tmp_path / "r.jsonl.gz")
    assert [s.event_data for s in back] == [s.event_data for s in snapshots]
    assert [dict(s.files) for s in back] == [dict(s.files) for s in snapshots]
    assert [back[-1].paths.name(i) for i in range(len(paths))] == [
        paths.name(i) for i in range(len(paths))]
    assert all((a.events == b.events).all() for a, b in zip(back, snapshots, strict=True))


# -- record --trace and --events ---------------------------------------------------------


def test_trace_lines_are_stracelike_and_in_order(tmp_path: Path, recorded):
    from tracing.decode.argspec import checked_in_specs
    from tracing.session.trace_writer import TraceWriter, open_trace_file

    snapshots, _ = decorated(recorded)
    one = {pid: p for pid, p in list(snapshots[-1].processes.items())[:1]}
    alone = [dataclasses.replace(s, processes=one) for s in snapshots[:2]]
    out, ours = open_trace_file(str(tmp_path / "trace.txt"))
    writer = TraceWriter(out, "trace.txt", ours, specs=checked_in_specs())
    for s in alone:
        writer.put(s)
    writer.put(dataclasses.replace(snapshots[2], processes={**one, 99: one[next(iter(one))]}))
    writer.close()
    assert writer.error is None
    text = (tmp_path / "trace.txt").read_text()
    opens = [ln for ln in text.splitlines() if "/etc/missing" in ln or "/tmp/" in ln]
    pid = next(iter(one))
    assert opens == [
        'openat(AT_FDCWD, "/tmp/a b\\"c\\nd", O_RDONLY) = -1 ENOENT (No such file or '
        "directory) <0.000012>",
        'openat(AT_FDCWD, "/etc/missing", O_RDONLY) = -1 ENOENT (No such file or directory) '
        "<0.000012>",
        f'[pid {pid:5d}] openat(AT_FDCWD, "/tmp/\\377\\376", O_RDONLY) = -1 ENOENT (No such '
        "file or directory) <0.000012>"]
    assert writer.lines == len(text.splitlines())
    assert (tmp_path / "trace.txt").stat().st_mode & 0o777 == 0o600


def test_the_trace_file_never_follows_a_link(tmp_path: Path):
    from tracing.errors import UserError
    from tracing.session.trace_writer import open_trace_file

    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    (tmp_path / "trace.txt").symlink_to(victim)
    with pytest.raises(UserError, match="not your own regular file") as err:
        open_trace_file(str(tmp_path / "trace.txt"))
    assert err.value.exit_code == 2
    assert victim.read_text() == "keep\n"
    earlier = tmp_path / "earlier.txt"
    earlier.write_text("old\n")
    out, _ = open_trace_file(str(earlier))  # an earlier file of the user's is replaced
    out.write(b"new\n")
    out.close()
    assert earlier.read_text() == "new\n"


def test_a_failing_trace_output_is_kept_as_one_line(recorded):
    from tracing.decode.argspec import checked_in_specs
    from tracing.session.trace_writer import TraceWriter

    snapshots, _ = decorated(recorded)
    with open("/dev/full", "wb", buffering=0) as full:
        writer = TraceWriter(full, "/dev/full", close_out=False, specs=checked_in_specs())
        for s in snapshots:
            writer.put(s)
        writer.close()
    assert writer.error == "cannot write /dev/full (No space left on device)"


@pytest.mark.parametrize(("argv", "line"), [
    (["--events", "failed,slow:fast"], "sikte-tui: --events failed,slow:fast: "),
    (["--events", "none,all"], "sikte-tui: --events none,all: 'none' cannot be combined"),
    (["--trace", "/nonexistent/dir/t.txt"], "sikte-tui: --trace /nonexistent/dir/t.txt: no "
                                            "directory /nonexistent/dir"),
])
def test_bad_events_and_trace_are_one_line(capsys, argv, line):
    from cli.main import main

    assert main(["record", *argv, "--", "/bin/true"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(line), err


def test_records_without_their_data_are_stored_without_it(tmp_path: Path, recorded):
    snapshots, _ = decorated(recorded)
    lost = [dataclasses.replace(s, event_data=()) for s in snapshots]  # a hand-made stream
    session = open_session(journal_of(tmp_path / "s.sikte.db", lost))
    assert session.events["data_len"].tolist() == [0] * len(session.events)
    assert set(session.event_data) == {b""}


def test_the_copy_into_memory_keeps_captures_paths_and_files(tmp_path: Path, recorded):
    from tracing.session.journal_reader import read_journal
    from tracing.session.journal_writer import copy_bounded
    from tracing.session.schema import apply_migrations

    snapshots, _ = decorated(recorded)
    source = sqlite3.connect(journal_of(tmp_path / "s.sikte.db", snapshots))
    memory = sqlite3.connect(":memory:")
    apply_migrations(memory, 0)
    assert copy_bounded(source, memory, 1 << 30)[1] == 0
    whole_copy = read_journal(memory, tmp_path / "copy")
    original = open_session(tmp_path / "s.sikte.db")
    assert whole_copy.event_data == original.event_data
    assert dict(whole_copy.files) == dict(original.files)
    assert len(whole_copy.paths) == len(original.paths)
