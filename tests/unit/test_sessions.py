"""The session journal, reading sessions back, and the Parquet export, on the recorded replay
fixture (real snapshots of a real trace; no root)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tracing.errors import UserError
from tracing.model.report import key_name
from tracing.model.stats import Snapshot, StatKey, SyscallStats, merge_stats
from tracing.session.export import export_parquet
from tracing.session.journal import Journal
from tracing.session.replay import load_snapshots
from tracing.session.schema import SCHEMA_VERSION
from tracing.session.stored import open_session
from tracing.session.window import Window, activity, whole, window_snapshot

FIXTURE = Path(__file__).resolve().parents[1] / "tui" / "data" / "session.jsonl.gz"


@pytest.fixture(scope="module")
def snapshots() -> list[Snapshot]:
    return load_snapshots(FIXTURE)


@pytest.fixture
def journal_path(tmp_path: Path, snapshots: list[Snapshot], make_journal) -> Path:
    return make_journal(tmp_path / "s.sikte.db", snapshots)


def by_name(snapshot: Snapshot) -> dict[str, int]:
    counts: dict[str, int] = {}
    for key, stats in snapshot.stats.items():
        name = key_name(snapshot, key)
        counts[name] = counts.get(name, 0) + stats.count
    return counts


def test_journal_reads_back_every_total_exactly(journal_path: Path, snapshots):
    session = open_session(journal_path)
    last = snapshots[-1]
    shown = window_snapshot(session, whole(session), seq=1)
    assert dict(shown.stats) == dict(last.stats)  # counts, errors, times, histograms
    assert by_name(shown)["getppid"] == 7901
    assert len(session.events) == sum(len(s.events) for s in snapshots)
    assert (session.events == np.concatenate([s.events for s in snapshots])).all()
    assert set(session.processes["pid"]) == set(last.processes)
    assert session.meta["schema_version"] == SCHEMA_VERSION
    assert session.meta["exit_code"] == last.target_exit.code


def test_journal_timeline_holds_every_interval(journal_path: Path, snapshots):
    session = open_session(journal_path)
    expected = sum(d.count for s in snapshots for d in s.interval.values())
    assert session.timeline["count"].sum() == expected == snapshots[-1].total_count
    assert sum(activity(session, 7)) == expected


def test_a_stretch_shows_only_the_intervals_inside_it(journal_path: Path, snapshots):
    session = open_session(journal_path)
    # From just after the first tick to the end: everything but the first interval.
    window = Window(snapshots[0].ts_ns, whole(session).end_ns)
    shown = window_snapshot(session, window, seq=1)
    expected: dict[StatKey, list[SyscallStats]] = {}
    for s in snapshots[1:]:
        for key, delta in s.interval.items():
            expected.setdefault(key, []).append(delta)
    want = {k: merge_stats(v) for k, v in expected.items() if sum(d.count for d in v)}
    assert {k: v.count for k, v in shown.stats.items()} == {k: v.count for k, v in want.items()}
    assert {k: v.hist for k, v in shown.stats.items()} == {
        k: tuple((b, c) for b, c in v.hist if c) for k, v in want.items()}
    assert all(window.start_ns < t <= window.end_ns for t in shown.events["ts"])


def test_parquet_has_the_required_columns_and_exact_counts(journal_path, snapshots, tmp_path):
    out = export_parquet(open_session(journal_path), tmp_path / "pq")
    last = snapshots[-1]
    required = {
        "syscalls": {"pid", "tid", "comm", "syscall", "nr", "count", "errors", "total_ns",
                     "max_ns", "p50_ns", "p99_ns"},
        "events": {"ts", "pid", "tid", "syscall", "nr", "ret", "duration_ns", "errno"},
        "timeline": {"ts", "pid", "syscall", "count", "errors", "total_ns"},
        "processes": {"pid", "ppid", "comm", "exe", "start_ts", "exit_ts", "exit_code"},
    }
    for name, columns in required.items():
        frame = pd.read_parquet(out / f"{name}.parquet")
        assert columns <= set(frame.columns), name
        table = pq.read_table(out / f"{name}.parquet")
        assert json.loads(table.schema.metadata[b"sikte-tui"])["format"] == "sikte-tui-journal"
    syscalls = pd.read_parquet(out / "syscalls.parquet")
    assert syscalls.groupby("syscall")["count"].sum()["getppid"] == 7901
    assert syscalls["count"].sum() == last.total_count
    events = pq.read_table(out / "events.parquet")
    assert events.num_rows == sum(len(s.events) for s in snapshots)
    assert str(events.schema.field("ts").type) == "timestamp[ns, tz=UTC]"
    failed = events.to_pandas().query("errno != 0")
    assert set(failed["errno_name"]) >= {"ENOENT"}
    meta = json.loads((out / "session.json").read_text())
    assert meta["targets"] == list(last.targets)


def test_duckdb_reads_the_export(journal_path, tmp_path):
    out = export_parquet(open_session(journal_path), tmp_path / "pq")
    con = duckdb.connect()
    count = con.execute(f"SELECT sum(count) FROM '{out}/syscalls.parquet' "
                        "WHERE syscall = 'getppid'").fetchone()[0]
    assert count == 7901
    enoent = con.execute(f"SELECT count(*) FROM '{out}/events.parquet' "
                         "WHERE syscall = 'openat' AND errno_name = 'ENOENT'").fetchone()[0]
    assert enoent == 30


def test_parquet_opens_like_the_journal(journal_path, tmp_path):
    journal = open_session(journal_path)
    parquet = open_session(export_parquet(journal, tmp_path / "pq"))
    a = window_snapshot(journal, whole(journal), seq=1)
    b = window_snapshot(parquet, whole(parquet), seq=1)
    assert dict(a.stats) == dict(b.stats)
    assert (a.events == b.events).all()
    assert dict(a.processes) == dict(b.processes)
    mid = Window(journal.start_ts_ns, (journal.start_ts_ns + journal.end_ts_ns) // 2)
    assert dict(window_snapshot(journal, mid, 1).stats) == dict(
        window_snapshot(parquet, mid, 1).stats)


def test_export_refuses_an_existing_directory_unless_forced(journal_path, tmp_path):
    session = open_session(journal_path)
    out = tmp_path / "pq"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match=r"already exists.*--force"):
        export_parquet(session, out)
    assert (out / "keep.txt").exists()
    # --force replaces only an earlier session (issue 12): this one is not.
    with pytest.raises(UserError, match="not a sikte-tui session"):
        export_parquet(session, out, force=True)
    assert (out / "keep.txt").read_text() == "mine"
    (out / "keep.txt").unlink()
    out.rmdir()
    export_parquet(session, out)
    before = (out / "session.json").stat().st_ino
    export_parquet(session, out, force=True)
    assert (out / "events.parquet").exists() and (out / "session.json").stat().st_ino != before


def test_a_failed_export_leaves_nothing_half_written(journal_path, tmp_path):
    def fail_midway(fraction: float, what: str) -> None:
        if what == "timeline.parquet":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export_parquet(open_session(journal_path), tmp_path / "pq", progress=fail_midway)
    assert list(tmp_path.iterdir()) == [journal_path] + [
        p for p in tmp_path.iterdir() if p.name.startswith("s.sikte.db-")]


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_text("hello"), "not a sikte-tui session"),
    (lambda p: p.write_bytes(b"SQLite format 3\x00" + b"\x07" * 2000), "corrupt"),
    (lambda p: sqlite3.connect(p).execute("CREATE TABLE t (x)").connection.commit(),
     "another program"),
])
def test_foreign_or_corrupt_files_say_so_in_one_line(tmp_path, make, message):
    path = tmp_path / "x.sikte.db"
    make(path)
    with pytest.raises(UserError, match=message) as err:
        open_session(path)
    assert "\n" not in str(err.value)


def test_a_newer_schema_asks_for_an_upgrade(journal_path):
    db = sqlite3.connect(journal_path)
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
               (json.dumps(SCHEMA_VERSION + 1),))
    db.commit()
    db.close()
    with pytest.raises(UserError, match=r"newer sikte-tui.*upgrade"):
        open_session(journal_path)


def test_a_missing_session_says_how_to_list_them(tmp_path):
    with pytest.raises(UserError, match=r"no such session.*sikte-tui open"):
        open_session(tmp_path / "nope.sikte.db")


def test_no_journal_keeps_the_session_in_memory(snapshots, tmp_path):
    journal = Journal(None, {"targets": ["x"]})
    for s in snapshots:
        journal.put(s)
    journal.close()
    assert not journal.on_disk and "--no-journal" in journal.describe()
    session = journal.stored()
    assert dict(window_snapshot(session, whole(session), 1).stats) == dict(snapshots[-1].stats)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_db_path_is_refused(journal_path):
    with pytest.raises(UserError, match="already exists"):
        Journal(journal_path, {})


@pytest.mark.parametrize("argv, message", [
    (["open", "/nonexistent/s.sikte.db"], "no such session"),
    (["export", "/nonexistent/s.sikte.db", "--output", "/tmp/x"], "no such session"),
    (["export", "/etc/hostname", "--output", "/nonexistent-dir/x"], "not a sikte-tui session"),
])
def test_cli_errors_are_one_line(argv, message, capsys):
    from cli.main import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_export_needs_an_output(journal_path, capsys):
    from cli.main import main

    assert main(["export", str(journal_path)]) == 2
    assert "--output DIR" in capsys.readouterr().err


def test_cli_export_writes_the_directory(journal_path, tmp_path, capsys):
    from cli.main import main

    assert main(["export", str(journal_path), "--output", str(tmp_path / "pq")]) == 0
    assert "576 events" in capsys.readouterr().err
    assert (tmp_path / "pq" / "session.json").exists()
