"""`sikte-tui diff` (tracing/session/diff.py, cli/diff_cmd.py) on journals written with the
Journal from made-up snapshots: exact differences between two runs and between two stretches
of one, by ABI or by name, every table, in JSON and as text; and each bad input one line,
exit 2."""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pytest

from cli.main import main
from tests.unit.test_session_threads import old_journal
from tracing.errors import UserError
from tracing.model.connections import OUTBOUND, Connection
from tracing.model.deltas import sum_intervals
from tracing.model.files import FileKey, FileStats
from tracing.model.paths import PathTable
from tracing.model.stats import (
    EVENT_DTYPE,
    Drops,
    ProcessInfo,
    Snapshot,
    StatKey,
    SyscallStats,
    TraceState,
    bucket_of,
    percentile,
)
from tracing.session.diff import diff_json, diff_sessions, parse_window
from tracing.session.export import export_parquet
from tracing.session.journal import Journal
from tracing.session.schema import FORMAT, MIGRATIONS
from tracing.session.stored import open_session

START = 5_000_000_000
SECOND = 1_000_000_000
APP, WORKER = 100, 200
GETPPID, OPENAT, READ, NANOSLEEP = 110, 257, 0, 35
GETPPID_I386 = 64
SESSIONS = itertools.count()
HOSTILE = "\x1b[31mevil\u202e"


def calls(count: int, ns: int, errors: int = 0) -> SyscallStats:
    """`count` calls of `ns` each."""
    return SyscallStats(count, errors, count * ns, ns, ns, ((bucket_of(ns), count),))


Interval = Mapping[StatKey, SyscallStats]
Runs = tuple[Path, Path]
Capsys = pytest.CaptureFixture[str]


def write_session(path: Path, intervals: Sequence[Interval],
                  meta: Mapping[str, object] | None = None,
                  files: Mapping[FileKey, FileStats] | None = None, paths: PathTable | None = None,
                  connections: tuple[Connection, ...] = (), comm: str = "app") -> Path:
    """A journal of one snapshot per second, the k-th carrying intervals[k]; each session
    starts at its own wall time (what tells two sessions apart)."""
    started = 1_700_000_000.0 + next(SESSIONS)
    journal = Journal(path, {"targets": ["app"], **dict(meta or {})})
    processes = MappingProxyType({APP: ProcessInfo(APP, 1, comm, "/bin/app", ("app",), "x86_64"),
                                  WORKER: ProcessInfo(WORKER, APP, "worker")})
    for k, interval in enumerate(intervals):
        stats = MappingProxyType(sum_intervals(intervals[:k + 1]))
        journal.put(Snapshot(
            seq=k + 1, ts_ns=START + (k + 1) * SECOND, wall_time=1_700_000_000.0 + k + 1,
            start_ts_ns=START, start_wall_time=started,
            arch="x86_64", state=TraceState.TRACING if k + 1 < len(intervals)
            else TraceState.EXITED, stats=stats, interval=MappingProxyType(dict(interval)),
            interval_s=1.0, processes=processes, events=np.zeros(0, dtype=EVENT_DTYPE),
            proc_events=(), drops=Drops(), tracer_cpu_s=0.0,
            files=MappingProxyType(dict(files or {})) if k + 1 == len(intervals) else {},
            paths=paths, connections=connections if k + 1 == len(intervals) else ()))
    journal.close()
    return path


def key(nr: int, pid: int = APP, abi: int = 0) -> StatKey:
    return StatKey(pid, pid, nr, abi)


# Run A: 2 s; 1000 getppid, 12 openat (10 failed), 40 reads (only in A).
RUN_A = [{key(GETPPID): calls(600, 100), key(OPENAT): calls(6, 2000, errors=5)},
         {key(GETPPID): calls(400, 100), key(OPENAT): calls(6, 2000, errors=5),
          key(READ, WORKER): calls(40, 500)}]
# Run B: 4 s; 1500 getppid, 27 openat (25 failed), 8 nanosleeps (only in B).
RUN_B = [{key(GETPPID): calls(500, 100)}, {key(GETPPID): calls(1000, 120)},
         {key(OPENAT): calls(27, 2000, errors=25)}, {key(NANOSLEEP): calls(8, 1_000_000)}]


@pytest.fixture
def runs(tmp_path: Path) -> Runs:
    return (write_session(tmp_path / "a.sikte.db", RUN_A),
            write_session(tmp_path / "b.sikte.db", RUN_B))


def diff_of(a: Path, b: Path | None, window_a: str | None = None,
            window_b: str | None = None) -> dict[str, Any]:
    """The --json document, through JSON and back (so it is plain JSON)."""
    doc: dict[str, Any] = json.loads(json.dumps(diff_json(diff_sessions(
        open_session(a), None if b is None else open_session(b),
        parse_window(window_a) if window_a else None,
        parse_window(window_b) if window_b else None))))
    return doc


def rows(doc: dict[str, Any], table: str) -> dict[str, dict[str, Any]]:
    key_name = {"syscalls": "syscall", "processes": "comm", "files": "path",
                "endpoints": "endpoint"}[table]
    return {str(r[key_name]): r for r in doc[table]}


def test_two_runs_differ_by_exactly_their_calls_and_failures(runs: Runs) -> None:
    doc = diff_of(*runs)
    assert doc["by_name"] is False and doc["notes"] == []
    assert doc["a"]["duration_s"] == 2.0 and doc["b"]["duration_s"] == 4.0
    sc = rows(doc, "syscalls")
    assert {k: (r["count_a"], r["count_b"], r["errors_a"], r["errors_b"]) for k, r in sc.items()} \
        == {"getppid": (1000, 1500, 0, 0), "openat": (12, 27, 10, 25), "read": (40, None, 0, None),
            "nanosleep": (None, 8, None, 0)}
    getppid = sc["getppid"]
    assert (getppid["total_ns_a"], getppid["total_ns_b"]) == (100_000, 500 * 100 + 1000 * 120)
    assert (getppid["calls_per_s_a"], getppid["calls_per_s_b"]) == (500.0, 375.0)
    assert getppid["p50_ns_a"] == percentile(((bucket_of(100), 1000),), 0.5, 100, 100) == 100
    assert getppid["p50_ns_b"] == 120 and getppid["p99_ns_b"] == 120
    assert getppid["only_in"] is None
    assert sc["read"]["only_in"] == "a" and sc["nanosleep"]["only_in"] == "b"
    assert sc["read"]["p95_ns_b"] is None and sc["nanosleep"]["calls_per_s_b"] == 2.0
    assert set(getppid) == {"syscall", "only_in"} | {
        f"{m}_{s}" for m in ("count", "calls_per_s", "errors", "errors_per_s", "total_ns",
                             "p50_ns", "p95_ns", "p99_ns") for s in "ab"}
    # The largest change in total time first (8 ms of nanosleep, then 70 µs of getppid...).
    assert [r["syscall"] for r in doc["syscalls"]] == [
        "nanosleep", "getppid", "openat", "read"]
    procs = rows(doc, "processes")
    assert (procs["app"]["count_a"], procs["app"]["count_b"]) == (1012, 1535)
    assert (procs["worker"]["count_a"], procs["worker"]["only_in"]) == (40, "a")


def test_a_parquet_export_diffs_as_its_journal(runs: Runs, tmp_path: Path) -> None:
    a, b = runs
    exported = export_parquet(open_session(b), tmp_path / "b-pq")
    from_journal, from_parquet = diff_of(a, b), diff_of(exported, a)
    for table in ("syscalls", "processes"):
        forward = rows(from_journal, table)
        backward = rows(from_parquet, table)
        assert forward.keys() == backward.keys()
        for name, row in forward.items():
            for metric in ("count", "errors", "total_ns", "p50_ns", "p99_ns"):
                assert (row[f"{metric}_a"], row[f"{metric}_b"]) == (
                    backward[name][f"{metric}_b"], backward[name][f"{metric}_a"])


def test_two_stretches_of_one_session(runs: Runs) -> None:
    _, b = runs
    doc = diff_of(b, None, "..2", "2..")
    sc = rows(doc, "syscalls")
    assert (sc["getppid"]["count_a"], sc["getppid"]["count_b"]) == (1500, None)
    assert (sc["openat"]["errors_a"], sc["openat"]["errors_b"]) == (None, 25)
    assert (sc["nanosleep"]["count_b"], sc["nanosleep"]["calls_per_s_b"]) == (8, 4.0)
    assert sc["getppid"]["calls_per_s_a"] == 750.0
    assert doc["a"]["label"] == "b.sikte.db [0..2]"
    assert (doc["b"]["start_s"], doc["b"]["end_s"]) == (2.0, 4.0)
    assert doc["files"] == [] and any("whole sessions only" in n for n in doc["notes"])


def test_a_stretch_of_one_run_against_another_run(runs: Runs) -> None:
    a, b = runs
    doc = diff_of(a, b, window_b="1s..2000ms")
    sc = rows(doc, "syscalls")
    assert (sc["getppid"]["count_a"], sc["getppid"]["count_b"]) == (1000, 1000)
    assert sc["getppid"]["total_ns_b"] == 120_000 and sc["getppid"]["calls_per_s_b"] == 1000.0


def test_abis_apart_on_one_machine_and_names_only_across_machines(tmp_path: Path) -> None:
    mixed = [{key(GETPPID): calls(10, 100), key(GETPPID_I386, abi=1): calls(3, 300)}]
    a = write_session(tmp_path / "a.sikte.db", mixed)
    b = write_session(tmp_path / "b.sikte.db", [{key(GETPPID): calls(20, 100)}])
    sc = rows(diff_of(a, b), "syscalls")
    assert {k: (r["count_a"], r["count_b"]) for k, r in sc.items()} == {
        "getppid (x86_64)": (10, 20), "getppid (i386)": (3, None)}
    other = write_session(tmp_path / "c.sikte.db", [{key(GETPPID): calls(20, 100)}],
                          meta={"host": "builder-7", "kernel": "5.10.0-1"})
    doc = diff_of(a, other)
    assert doc["by_name"] is True
    (note,) = doc["notes"]
    assert "builder-7 (kernel 5.10.0-1, x86_64)" in note and "matched by name" in note
    assert doc["b"]["host"] == "builder-7"
    assert {k: (r["count_a"], r["count_b"]) for k, r in rows(doc, "syscalls").items()} == {
        "getppid": (13, 20)}


def test_files_and_endpoints_of_whole_sessions(tmp_path: Path) -> None:
    paths = PathTable()
    hosts, gone = paths.add(b"/etc/hosts"), paths.add(b"/tmp/gone")
    conn = Connection(1, START + 10, APP, APP, "app", 0, 4, "127.0.0.1", 40000, "10.0.0.9",
                      443, OUTBOUND, "CLOSE", START + 2010, "ok")
    failed = Connection(2, START + 20, APP, APP, "app", 0, 4, "127.0.0.1", 40001, "10.0.0.9",
                        443, OUTBOUND, "CLOSE", START + 1020, "refused", "ECONNREFUSED")
    a = write_session(tmp_path / "a.sikte.db", RUN_A, paths=paths, files={
        FileKey(APP, hosts): FileStats(2, ((2, 1),), 4, 3, 300, 1, 10, 5000),
        FileKey(WORKER, hosts): FileStats(1, (), 1, 1, 50, 0, 0, 1000),
        FileKey(APP, gone): FileStats(0, ((2, 7),))}, connections=(conn,))
    b = write_session(tmp_path / "b.sikte.db", RUN_B, paths=paths, files={
        FileKey(APP, hosts): FileStats(5, (), 5, 5, 900, 0, 0, 20_000)},
        connections=(conn, failed))
    doc = diff_of(a, b)
    files = rows(doc, "files")
    assert {k: [r[f"{m}_{s}"] for m in ("opens", "failed_opens", "bytes_read", "io_ns")
                for s in "ab"] for k, r in files.items()} == {
        "/etc/hosts": [3, 5, 1, 0, 350, 900, 6000, 20_000],
        "/tmp/gone": [0, None, 7, None, 0, None, 0, None]}
    assert [r["path"] for r in doc["files"]] == ["/etc/hosts", "/tmp/gone"]
    (endpoint,) = doc["endpoints"]
    assert endpoint["endpoint"] == "out 10.0.0.9:443"
    assert (endpoint["connections_a"], endpoint["connections_b"]) == (1, 2)
    assert (endpoint["failed_a"], endpoint["failed_b"]) == (0, 1)
    assert (endpoint["avg_ns_a"], endpoint["avg_ns_b"]) == (2000, 1500)


def test_the_text_table_has_exact_counts_and_shows_names_as_data(tmp_path: Path,
                                                                capsys: Capsys) -> None:
    a = write_session(tmp_path / "a.sikte.db", RUN_A, comm=HOSTILE)
    b = write_session(tmp_path / "b.sikte.db", RUN_B, comm=HOSTILE)
    assert main(["diff", str(a), str(b), "--text"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out
    lines = out.splitlines()
    assert lines[0].startswith("A: a.sikte.db (2.000 s") and lines[1].startswith("B: b.sikte.db")
    getppid = next(line for line in lines if line.endswith(" getppid")).split()
    assert getppid[:5] == ["1000", "1500", "+500", "500", "375"]
    openat = next(line for line in lines if line.endswith(" openat")).split()
    assert openat[:8] == ["12", "27", "+15", "6.0", "6.8", "10", "25", "+15"]
    read = next(line for line in lines if line.endswith("read")).split()
    assert read[:3] == ["40", "-", "-40"] and read[-3:] == ["only", "A", "read"]
    assert "by command name" in out and "evil" in out


def test_json_on_the_command_line(runs: Runs, capsys: Capsys) -> None:
    a, b = runs
    assert main(["diff", str(a), str(b), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"a", "b", "by_name", "notes", "syscalls", "processes", "files",
                        "endpoints"}
    assert set(doc["a"]) == {"label", "path", "start_s", "end_s", "duration_s", "host",
                             "kernel", "arch", "timing"}
    assert rows(doc, "syscalls")["openat"]["errors_b"] == 25


def test_older_sessions_diff_by_name_with_a_note(tmp_path: Path, runs: Runs) -> None:
    old = old_journal(tmp_path / "old.sikte.db")  # schema 4: no host in its metadata
    doc = diff_of(old, runs[0])
    assert doc["by_name"] is True and "an unknown host" in doc["notes"][0]
    assert rows(doc, "syscalls")["read"]["count_a"] == 3  # three threads' rows of nr 0


def one_line_exit_2(argv: list[str], capsys: Capsys) -> str:
    assert main(argv) == 2
    err: str = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("sikte-tui")
    return err


@pytest.mark.parametrize(("extra", "words"), [
    (["--window-a", "3", "--window-b", "1.."], "bad window '3'"),
    (["--window-a", "..x", "--window-b", "1.."], "bad window"),
    (["--window-a", "nan..", "--window-b", "1.."], "bad window"),
    (["--window-a", "..inf", "--window-b", "1.."], "bad window"),
    (["--window-a=-1..2", "--window-b", "1.."], "from the session's start"),
    (["--window-a", "2..1", "--window-b", "1.."], "ends before it starts"),
    (["--window-a", "1..1", "--window-b", "1.."], "ends before it starts or is empty"),
    (["--window-a", "0..9", "--window-b", "1.."], "ends at 9 s but b.sikte.db lasts 4.000 s"),
    (["--window-a", "4..", "--window-b", "1.."], "starts at 4 s"),
    (["--window-a", "1.."], "give both --window-a and --window-b"),
    (["--window-a", "1..2", "--window-b", "1s..2s"], "the same stretch of one session"),
    ([], "the same session"),
])
def test_bad_windows_and_a_session_with_itself(runs: Runs, capsys: Capsys, extra: list[str],
                                             words: str) -> None:
    _, b = runs
    second = [] if extra else [str(b)]
    assert words in one_line_exit_2(["diff", str(b), *second, *extra], capsys)


def test_a_journal_and_its_export_are_the_same_session(runs: Runs, tmp_path: Path,
                                                       capsys: Capsys) -> None:
    _, b = runs
    exported = export_parquet(open_session(b), tmp_path / "b-pq")
    assert "the same session" in one_line_exit_2(["diff", str(b), str(exported)], capsys)
    # Their stretches are not.
    assert main(["diff", str(b), str(exported), "--window-a", "..2", "--json"]) == 0


def test_unreadable_sessions(runs: Runs, tmp_path: Path, capsys: Capsys) -> None:
    a, _ = runs
    junk = tmp_path / "junk.sikte.db"
    junk.write_bytes(b"not a database" * 100)
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    for bad in (tmp_path / "missing.sikte.db", junk, empty_dir):
        one_line_exit_2(["diff", str(a), str(bad)], capsys)
        one_line_exit_2(["diff", str(bad), str(a)], capsys)


def test_parse_window_forms() -> None:
    assert parse_window("..") == (0.0, None)
    assert parse_window("1:30..2:00") == (90.0, 120.0)
    assert parse_window("250ms..1.5") == (0.25, 1.5)
    for bad in ("", "1", "a..b", "1..1", "..0"):
        with pytest.raises(UserError):
            parse_window(bad)


def test_a_session_naming_an_unknown_architecture(runs: Runs, capsys: Capsys) -> None:
    a, b = runs
    db = sqlite3.connect(b)
    db.execute("UPDATE meta SET value = ? WHERE key = 'arch'", (json.dumps("vax\x1b[2J"),))
    db.commit()
    db.close()
    err = one_line_exit_2(["diff", str(a), str(b)], capsys)
    assert "its metadata's arch is 'vax\\x1b[2J'" in err


def test_a_pipe_gets_the_plain_table(runs: Runs, capsys: Capsys) -> None:
    assert main(["diff", *map(str, runs)]) == 0  # stdout is not a terminal here
    out = capsys.readouterr().out
    assert out.startswith("A: a.sikte.db") and "\nby syscall\n" in out


def schema_journal(path: Path, version: int, count: int, start_wall_time: float) -> Path:
    """A journal as sikte-tui wrote it at schema 1 to 3: no ABI per row, no host; each row
    takes its process's ABI (an i386, an x86_64 and an x32 process making call 64)."""
    db = sqlite3.connect(path)
    for v in range(1, version + 1):
        for statement in MIGRATIONS[v]:
            db.execute(statement)
    meta = {"format": FORMAT, "schema_version": version, "start_ts_ns": 100,
            "end_ts_ns": 300, "start_wall_time": start_wall_time, "arch": "x86_64"}
    db.executemany("INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in meta.items()])
    db.executemany("INSERT INTO processes (pid, comm, abi) VALUES (?, ?, ?)",
                   [(20, "old32", "i386"), (21, "old64", "x86_64"), (23, "x32", "x32")])
    for pid in (20, 21, 23):
        row = (pid, pid, 64, count, 1, 100 * count, 100, 100, None)
        db.execute("INSERT INTO aggregates VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
        db.execute("INSERT INTO timeline VALUES (200, ?, ?, ?, ?, ?, ?, ?, ?)",
                   row[:6] + row[7:])
    db.commit()
    db.close()
    return path


@pytest.mark.parametrize("version", [1, 3])
def test_sessions_of_older_schemas(tmp_path: Path, version: int, capsys: Capsys) -> None:
    a = schema_journal(tmp_path / "a.sikte.db", version, 4, 1.5)
    b = schema_journal(tmp_path / "b.sikte.db", version, 6, 2.5)
    assert main(["diff", str(a), str(b), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["by_name"] is False  # neither says its host: nothing tells them apart
    assert {k: (r["count_a"], r["count_b"], r["errors_a"]) for k, r in
            rows(doc, "syscalls").items()} == {
        "getppid": (4, 6, 1), "semget (x86_64)": (4, 6, 1), "semget (x32)": (4, 6, 1)}
    assert doc["a"]["duration_s"] == 2e-7
    assert rows(doc, "syscalls")["getppid"]["calls_per_s_a"] == 20_000_000.0
    # Stretches of 100 ns: the timeline's one snapshot is in the first.
    assert main(["diff", str(a), "--window-a", "..100ns", "--window-b", "100ns..",
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {r["only_in"] for r in doc["syscalls"]} == {"a"}
    assert rows(doc, "processes")["old32"]["count_a"] == 4
    new = write_session(tmp_path / "new.sikte.db", RUN_A)  # this machine's, with its host
    assert main(["diff", str(a), str(new), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["by_name"] is True and "an unknown host" in doc["notes"][0]
    assert rows(doc, "syscalls")["semget"]["count_a"] == 8  # x86_64 and x32 rows, by name


@pytest.mark.parametrize("extra", [[], ["--window-a", "1..2", "--window-b", "1..2"]])
def test_one_file_twice_is_refused_before_it_is_read(runs: Runs, capsys: Capsys,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     extra: list[str]) -> None:
    """A large session took as long to read as a real diff, only to be refused."""
    import tracing.session.diff as diff_module

    def never(path: Path) -> None:
        raise AssertionError(f"{path} was read")

    monkeypatch.setattr(diff_module, "open_session", never)
    a, _ = runs
    err = one_line_exit_2(["diff", str(a), str(a.parent / "." / a.name), *extra], capsys)
    assert "the same s" in err
    if extra:  # one file given once, two equal windows of it
        assert "the same stretch of one session" in one_line_exit_2(
            ["diff", str(a), *extra], capsys)
