"""Session files are untrusted input: a corpus of malformed journals and Parquet directories,
built here from a real journal (the recorded fixture, with samples and connections added) and
its real Parquet export, each read the way `open` and `export` read them. Every case either
opens (and then views and exports fine) or fails with one UserError line naming the file,
exit code 2; never another exception. A few cases go through the real CLI too."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.tui.connections_fixture import with_connections
from tracing.errors import UserError
from tracing.model.samples import StackSample
from tracing.model.stats import EVENT_DTYPE
from tracing.session.catalogue import list_sessions
from tracing.session.export import export_parquet
from tracing.session.replay import load_snapshots
from tracing.session.schema import SCHEMA_VERSION
from tracing.session.stored import open_session
from tracing.session.window import Window, activity, whole, window_snapshot

FIXTURE = Path(__file__).resolve().parents[1] / "tui" / "data" / "session.jsonl.gz"
ROOT = Path(__file__).resolve().parents[2]
SIKTE = [sys.executable, "-m", "cli.main"]
SEED = 12
FLIPS = 160  # flipped bytes in the journal, each a case of its own
PARQUET_FLIPS = 8  # per table file
CLI_TIMEOUT = 60


def _stack(*frames: str, count: int) -> StackSample:
    return StackSample(10, 10, "app", frames, ("/bin/app",) * len(frames), 0, count)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> dict[str, Path]:
    """A real journal with every table filled, and its real Parquet export."""
    from tracing.session.journal import Journal

    snapshots = [dataclasses.replace(s, sample_hz=99)
                 for s in with_connections(load_snapshots(FIXTURE))]
    snapshots[1] = dataclasses.replace(snapshots[1], samples=(
        _stack("main", "burn", count=30), _stack("main", "idle", count=5)))
    snapshots[2] = dataclasses.replace(snapshots[2], samples=(_stack("main", "burn", count=70),))
    where = tmp_path_factory.mktemp("base")
    journal = Journal(where / "base.sikte.db", {"targets": list(snapshots[-1].targets)})
    for s in snapshots:
        journal.put(s)
    journal.close()
    session = open_session(where / "base.sikte.db")
    assert len(session.samples) and len(session.connections) and len(session.events)
    parquet = export_parquet(session, where / "base-pq")
    return {"journal": where / "base.sikte.db", "parquet": parquet}


# -- reading a case the way open and export do ----------------------------------------------

def read_like_open_and_export(path: Path, out: Path) -> None:
    """What `open` shows and `export` writes; raises what they would raise."""
    session = open_session(path)
    start, end = whole(session).start_ns, whole(session).end_ns
    for window in (whole(session), Window(start, start + (end - start) // 2)):
        shown = window_snapshot(session, window, seq=1)
        list(shown.stats.items()), list(shown.processes.values())
    activity(session, 40)
    export_parquet(session, out)


def outcome(path: Path, out: Path) -> str | None:
    """None when fine (opened, or refused in one line naming the file with exit 2), else
    what went wrong."""
    try:
        read_like_open_and_export(path, out)
    except UserError as err:
        message = str(err)
        if err.exit_code != 2 or "\n" in message or str(path) not in message:
            return f"bad UserError (exit {err.exit_code}): {message!r}"
    except Exception as err:  # what the test looks for: anything but a UserError
        return f"{type(err).__name__}: {err}"
    return None


def check_all(cases: dict[str, Path], scratch: Path) -> None:
    failures = {}
    for i, (name, path) in enumerate(cases.items()):
        problem = outcome(path, scratch / f"out{i}")
        if problem:
            failures[name] = problem
    assert not failures, "\n".join(f"{k}: {v}" for k, v in list(failures.items())[:20])


# -- journals -------------------------------------------------------------------------------

def _copy(base: Path, where: Path, name: str) -> Path:
    path = where / f"{name}.sikte.db"
    shutil.copyfile(base, path)
    return path


def _sql(path: Path, *statements: str) -> None:
    db = sqlite3.connect(path)
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.close()


def _meta(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


JOURNAL_META_CASES = {
    "schema_version": ['"2"', "2.5", "true", "null", "[]", str(SCHEMA_VERSION + 1), "-1"],
    "start_wall_time": ['"x"', "Infinity", "NaN", "1e300", "-5", "[]"],
    "start_ts_ns": ['"x"', str(2 ** 70), "-1", "1.5"],
    "end_ts_ns": ["null", str(2 ** 64)],
    "end_wall_time": ['"x"'],
    "targets": ['"x"', "[1]", "{}"],
    "drops": ["[]", '{"events": "x"}', '{"nope": 1}'],
    "probes": ['{"x": "y"}', '{"1": 2}', "[]"],
    "exit_code": ['"a"', "1.5", str(2 ** 40)],
    "exit_signal": ['"a"'],
    "sample_hz": ['"a"'],
    "arch": ["3"],
    "tcp_monitored": ['"yes"'],
    "format": ["1", '"other"'],
}

TABLE_VALUE_CASES = {
    "odd hist blob": "UPDATE timeline SET hist = x'0102'",
    "odd aggregates hist": "UPDATE aggregates SET hist = x'0000000000000000'",
    "hist bucket out of range": "UPDATE aggregates SET hist = x'ffffffffffffff7f0100000000000000'",
    "hist as text": "UPDATE timeline SET hist = 'abc'",
    "count as text": "UPDATE aggregates SET count = 'abc'",
    "count as real": "UPDATE aggregates SET count = 1.5",
    "count null": "UPDATE aggregates SET count = NULL",
    "count negative": "UPDATE timeline SET count = -5",
    "pid huge": f"UPDATE processes SET pid = {2 ** 40} WHERE rowid = 1",
    "ppid blob": "UPDATE processes SET ppid = x'00'",
    "tid null": "UPDATE aggregates SET tid = NULL WHERE rowid = 1",
    "ppid null": "UPDATE processes SET ppid = NULL",
    "comm blob": "UPDATE processes SET comm = x'1b5b324a'",
    "cmdline not json": "UPDATE processes SET cmdline = 'not json'",
    "cmdline object": "UPDATE processes SET cmdline = '{\"a\": 1}'",
    "cmdline numbers": "UPDATE processes SET cmdline = '[1, 2]'",
    "exit code text": "UPDATE processes SET exit_code = 'x'",
    "exit ts huge": f"UPDATE processes SET exit_ts_ns = {2 ** 63 - 1}",
    "event batch odd": "UPDATE event_batches SET data = x'00'",
    "event batch text": "UPDATE event_batches SET data = 'abc'",
    "timeline ts text": "UPDATE timeline SET ts_ns = 'x'",
    "frames not json": "UPDATE stacks SET frames = '[1, 2'",
    "frames numbers": "UPDATE stacks SET frames = '[1, 2]'",
    "modules short": "UPDATE stacks SET modules = '[]'",
    "kernel frames many": "UPDATE stacks SET kernel_frames = 99",
    "sample count text": "UPDATE sample_timeline SET count = 'x'",
    "family big": "UPDATE connections SET family = 300",
    "port text": "UPDATE connections SET sport = 'x'",
    "conn comm blob": "UPDATE connections SET comm = x'00ff'",
    "meta value blob": "UPDATE meta SET value = x'00ff' WHERE key = 'targets'",
    "meta key number": "INSERT INTO meta VALUES (5, '1')",
    "processes other columns": "ALTER TABLE processes DROP COLUMN comm",
    "timeline no hist": "ALTER TABLE timeline DROP COLUMN hist",
    "connections no state": "ALTER TABLE connections DROP COLUMN state",
    "syscall nr huge": "UPDATE aggregates SET nr = 4000000000 WHERE rowid = 1",
}


def journal_cases(base: Path, where: Path) -> dict[str, Path]:
    where.mkdir(exist_ok=True)
    cases: dict[str, Path] = {}
    data = base.read_bytes()
    rng = random.Random(SEED)
    for i in range(FLIPS):
        offset = rng.randrange(len(data))
        flipped = bytearray(data)
        flipped[offset] ^= rng.randrange(1, 256)
        path = where / f"flip{i}-at{offset}.sikte.db"
        path.write_bytes(bytes(flipped))
        cases[f"flip at {offset}"] = path
    for size in (0, 10, 16, 99, 100, 1024, 4096, len(data) // 2, len(data) - 1):
        path = where / f"cut{size}.sikte.db"
        path.write_bytes(data[:size])
        cases[f"truncated to {size}"] = path
    db = sqlite3.connect(base)
    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    db.close()
    for table in tables:
        path = _copy(base, where, f"drop-{table}")
        _sql(path, f"DROP TABLE {table}")
        cases[f"dropped {table}"] = path
    for key, values in JOURNAL_META_CASES.items():
        for j, value in enumerate(values):
            path = _copy(base, where, f"meta-{key}-{j}")
            _sql(path, f"INSERT OR REPLACE INTO meta VALUES ('{key}', '{_meta(value)}')")
            cases[f"meta {key}={value}"] = path
    for key in ("schema_version", "start_wall_time", "targets"):
        path = _copy(base, where, f"badjson-{key}")
        _sql(path, f"UPDATE meta SET value = '{{not json' WHERE key = '{key}'")
        cases[f"meta {key} not JSON"] = path
    path = _copy(base, where, "event-pid-huge")
    db = sqlite3.connect(path)
    first, data = db.execute("SELECT id, data FROM event_batches ORDER BY id").fetchone()
    events = np.frombuffer(data, dtype=EVENT_DTYPE).copy()
    events["pid"][0] = 0xFFFFFFFF
    db.execute("UPDATE event_batches SET data = ? WHERE id = ?", (events.tobytes(), first))
    db.commit()
    db.close()
    cases["event pid huge"] = path
    for name, statement in TABLE_VALUE_CASES.items():
        path = _copy(base, where, name.replace(" ", "-"))
        _sql(path, statement)
        cases[name] = path
    return cases


def test_every_malformed_journal_opens_or_fails_in_one_line(base, tmp_path):
    cases = journal_cases(base["journal"], tmp_path)
    assert len(cases) > 250
    check_all(cases, tmp_path / "out")


# -- Parquet directories --------------------------------------------------------------------

def _pq_copy(base: Path, where: Path, name: str) -> Path:
    path = where / name
    shutil.copytree(base, path)
    return path


def _rewrite(path: Path, table: str, change: Callable[[pa.Table], pa.Table]) -> None:
    file = path / f"{table}.parquet"
    pq.write_table(change(pq.read_table(file)), file)


def _set_column(name: str, array: Callable[[int], pa.Array]) -> Callable[[pa.Table], pa.Table]:
    def change(table: pa.Table) -> pa.Table:
        return table.set_column(table.column_names.index(name), name, array(len(table)))
    return change


def _drop(name: str) -> Callable[[pa.Table], pa.Table]:
    return lambda table: table.drop_columns([name])


PARQUET_TABLE_CASES: dict[str, tuple[str, Callable[[pa.Table], pa.Table]]] = {
    "pid as text": ("processes", _set_column("pid", lambda n: pa.array(["x"] * n))),
    "cmdline as int": ("processes", _set_column("cmdline", lambda n: pa.array([1] * n))),
    "cmdline of ints": ("processes", _set_column("cmdline", lambda n: pa.array([[1]] * n))),
    "start_ts as text": ("processes", _set_column("start_ts", lambda n: pa.array(["x"] * n))),
    "exit code huge": ("processes", _set_column("exit_code",
                                                lambda n: pa.array([2 ** 40] * n))),
    "ts far future": ("events", _set_column("ts", lambda n: pa.array(
        [2 ** 62] * n, pa.int64()).cast(pa.timestamp("ns", tz="UTC")))),
    "ts null": ("timeline", _set_column("ts", lambda n: pa.nulls(n, pa.timestamp("ns")))),
    "count null": ("syscalls", _set_column("count", lambda n: pa.nulls(n, pa.int64()))),
    "count float": ("syscalls", _set_column("count", lambda n: pa.array([1.5] * n))),
    "hist lengths differ": ("syscalls", _set_column("hist_count", lambda n: pa.array(
        [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]] * n))),
    "hist negative": ("timeline", _set_column("hist_low_ns", lambda n: pa.array([[-1]] * n))),
    "hist not a list": ("timeline", _set_column("hist_count", lambda n: pa.array(["x"] * n))),
    "arg as text": ("events", _set_column("arg0", lambda n: pa.array(["x"] * n))),
    "pid negative": ("events", _set_column("pid", lambda n: pa.array([-1] * n, pa.int32()))),
    "frames as text": ("samples", _set_column("frames", lambda n: pa.array(["x"] * n))),
    "modules empty": ("samples", _set_column("modules", lambda n: pa.array(
        [[]] * n, pa.list_(pa.string())))),
    "family text": ("connections", _set_column("family", lambda n: pa.array(["x"] * n))),
    "end_ts text": ("connections", _set_column("end_ts", lambda n: pa.array(["x"] * n))),
    "sport huge": ("connections", _set_column("sport", lambda n: pa.array([10 ** 6] * n))),
}
DROPPED_COLUMNS = {
    "processes": ("pid", "cmdline", "start_ts", "comm"),
    "syscalls": ("pid", "nr", "hist_low_ns", "min_ns"),
    "timeline": ("ts", "count", "hist_count"),
    "events": ("ts", "ret", "arg5"),
    "samples": ("frames", "ts", "kernel_frames"),
    "connections": ("ts", "end_ts", "state", "conn_id"),
}
SESSION_JSON_CASES: dict[str, Callable[[dict], object]] = {
    "a list": lambda meta: [meta],
    "a number": lambda meta: 5,
    "no format": lambda meta: {k: v for k, v in meta.items() if k != "format"},
    "newer schema": lambda meta: {**meta, "schema_version": SCHEMA_VERSION + 1},
    "schema as text": lambda meta: {**meta, "schema_version": "2"},
    "start as text": lambda meta: {**meta, "start_wall_time": "x"},
    "start_ts huge": lambda meta: {**meta, "start_ts_ns": 2 ** 80},
    "targets dict": lambda meta: {**meta, "targets": {"a": 1}},
    "probes odd": lambda meta: {**meta, "probes": {"a": 1}},
    "drops list": lambda meta: {**meta, "drops": [1]},
}


def parquet_cases(base: Path, where: Path) -> dict[str, Path]:
    where.mkdir(exist_ok=True)
    cases: dict[str, Path] = {}
    meta = json.loads((base / "session.json").read_text())

    def case(name: str) -> Path:
        path = _pq_copy(base, where, f"c{len(cases)}")
        cases[name] = path
        return path

    for name, change in SESSION_JSON_CASES.items():
        (case(f"session.json {name}") / "session.json").write_text(json.dumps(change(meta)))
    (case("session.json not JSON") / "session.json").write_text("{not json")
    (case("session.json empty") / "session.json").write_text("")
    (case("session.json huge") / "session.json").write_text(" " * (5 << 20) + "{}")
    path = case("session.json a directory")
    (path / "session.json").unlink()
    (path / "session.json").mkdir()
    path = case("session.json a symlink")
    (path / "session.json").unlink()
    (path / "session.json").symlink_to(base / "session.json")
    rng = random.Random(SEED)
    for table in ("processes", "syscalls", "timeline", "events", "samples", "connections"):
        file = f"{table}.parquet"
        data = (base / file).read_bytes()
        (case(f"{table} missing") / file).unlink()
        path = case(f"{table} a directory")
        (path / file).unlink()
        (path / file).mkdir()
        for size in (0, 4, len(data) // 2, len(data) - 1):
            (case(f"{table} truncated to {size}") / file).write_bytes(data[:size])
        for _ in range(PARQUET_FLIPS):
            offset = rng.randrange(len(data))
            flipped = bytearray(data)
            flipped[offset] ^= rng.randrange(1, 256)
            (case(f"{table} flipped at {offset}") / file).write_bytes(bytes(flipped))
        for column in DROPPED_COLUMNS[table]:
            _rewrite(case(f"{table} without {column}"), table, _drop(column))
    for name, (table, change) in PARQUET_TABLE_CASES.items():
        _rewrite(case(f"{table}: {name}"), table, change)
    return cases


def test_every_malformed_parquet_session_opens_or_fails_in_one_line(base, tmp_path):
    cases = parquet_cases(base["parquet"], tmp_path)
    assert len(cases) > 100
    check_all(cases, tmp_path / "out")


def test_the_unmodified_base_opens_in_both_formats(base, tmp_path):
    """The corpus starts from sessions that open: the refusals above are the mutations'."""
    for path in base.values():
        assert outcome(path, tmp_path / path.name) is None


def test_a_newer_parquet_schema_asks_for_an_upgrade(base, tmp_path):
    path = _pq_copy(base["parquet"], tmp_path, "newer")
    meta = json.loads((path / "session.json").read_text())
    (path / "session.json").write_text(json.dumps({**meta, "schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(UserError, match=r"newer sikte-tui.*upgrade") as err:
        open_session(path)
    assert err.value.exit_code == 2


# -- the real CLI ---------------------------------------------------------------------------

def sikte(*args: str, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run([*SIKTE, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def assert_one_line_exit_2(run: subprocess.CompletedProcess, names: Path) -> None:
    assert run.returncode == 2, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert str(names) in run.stderr
    assert "internal error" not in run.stderr and "Traceback" not in run.stderr


def test_the_cli_says_one_line_and_exits_2(base, tmp_path):
    journals = journal_cases(base["journal"], tmp_path / "j")
    parquets = parquet_cases(base["parquet"], tmp_path / "p")
    chosen = [journals["dropped timeline"], journals["meta schema_version=\"2\""],
              journals["odd hist blob"], journals["truncated to 4096"],
              parquets["session.json a list"], parquets["processes without pid"],
              parquets["events a directory"], parquets["events truncated to 4"]]
    for i, path in enumerate(chosen):
        assert_one_line_exit_2(sikte("export", str(path), "--output", str(tmp_path / f"o{i}")),
                               path)
    assert_one_line_exit_2(sikte("open", str(chosen[0])), chosen[0])


def test_a_fifo_is_refused_without_blocking(tmp_path):
    """`export` and `open` of a FIFO named like a journal, or in a Parquet directory, refuse
    it at once (the timeout only keeps a broken build from hanging the suite)."""
    fifo = tmp_path / "trap.sikte.db"
    os.mkfifo(fifo)
    run = sikte("export", str(fifo), "--output", str(tmp_path / "out"), timeout=20)
    assert_one_line_exit_2(run, fifo)
    assert "FIFO" in run.stderr
    assert_one_line_exit_2(sikte("open", str(fifo), timeout=20), fifo)
    directory = tmp_path / "pq"
    directory.mkdir()
    for name in ("processes", "syscalls", "timeline", "events"):
        os.mkfifo(directory / f"{name}.parquet")
    os.mkfifo(directory / "session.json")
    assert_one_line_exit_2(sikte("export", str(directory), "--output",
                                 str(tmp_path / "out2"), timeout=20), directory)


def test_a_device_is_refused_without_opening(tmp_path):
    device = tmp_path / "dev.sikte.db"
    os.symlink("/dev/zero", tmp_path / "link.sikte.db")
    os.mknod(device, 0o600 | 0o020000, os.makedev(1, 5))  # /dev/zero's numbers
    for path in (device, tmp_path / "link.sikte.db"):
        with pytest.raises(UserError) as err:
            open_session(path)
        assert err.value.exit_code == 2 and str(path) in str(err.value)
    assert "character device" in str(open_session_error(device))
    assert "symbolic link" in str(open_session_error(tmp_path / "link.sikte.db"))


def open_session_error(path: Path) -> UserError:
    with pytest.raises(UserError) as err:
        open_session(path)
    return err.value


def test_the_sessions_list_marks_what_it_cannot_read(base, tmp_path):
    """A FIFO, a device, a corrupt journal and a broken Parquet directory are listed as
    unreadable, with why; the good session still lists. Run in a child with a timeout, so
    that a FIFO that blocked would fail the test instead of hanging it."""
    folder = tmp_path / "sessions"
    folder.mkdir()
    shutil.copyfile(base["journal"], folder / "good.sikte.db")
    os.mkfifo(folder / "fifo.sikte.db")
    os.mknod(folder / "dev.sikte.db", 0o600 | 0o020000, os.makedev(1, 5))
    (folder / "bad.sikte.db").write_bytes(b"SQLite format 3\x00" + b"\x07" * 5000)
    shutil.copytree(base["parquet"], folder / "pq")
    (folder / "pq" / "session.json").write_text("[1, 2]")
    code = ("import json, sys; from pathlib import Path; "
            "from tracing.session.catalogue import list_sessions; "
            "print(json.dumps({s.path.name: [s.state, s.problem] "
            "for s in list_sessions(Path(sys.argv[1]))}))")
    run = subprocess.run([sys.executable, "-c", code, str(folder)], cwd=ROOT,
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    listed = json.loads(run.stdout)
    assert set(listed) == {"good.sikte.db", "fifo.sikte.db", "dev.sikte.db", "bad.sikte.db",
                           "pq"}
    assert listed["good.sikte.db"] == ["exited", ""] or listed["good.sikte.db"][1] == ""
    assert "FIFO" in listed["fifo.sikte.db"][1]
    assert "character device" in listed["dev.sikte.db"][1]
    assert "corrupt" in listed["bad.sikte.db"][1]
    assert "session.json" in listed["pq"][1]
    assert all(listed[n][0] == "unreadable" for n in listed if n != "good.sikte.db")
    assert len(list_sessions(folder)) == 5  # and in-process too, now that it cannot block
