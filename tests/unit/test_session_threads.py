"""Saved sessions keep each process's threads (issue 16): their names, which still ran at the
end, when they ended and how many there were, in the journal (schema 5: a threads table and
two processes columns), in Parquet (threads.parquet, three processes.parquet columns) and in
recordings, and read back so an opened session shows what the live trace showed. Older
sessions open with their rows' threads, unnamed; hand-made ones are checked like every
other table."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tracing.errors import UserError
from tracing.model.stats import (
    EVENT_DTYPE,
    Drops,
    ExitStatus,
    ProcessInfo,
    ProcEvent,
    ProcKind,
    Snapshot,
    StatKey,
    SyscallStats,
    TraceState,
)
from tracing.query.event_filter import parse_event_filter
from tracing.query.syscall_filter import parse_filter
from tracing.session.export import export_parquet
from tracing.session.journal import Journal
from tracing.session.replay import snapshot_from_dict, snapshot_to_dict
from tracing.session.schema import FORMAT, MIGRATIONS, SCHEMA_VERSION, apply_migrations
from tracing.session.stored import open_session
from tracing.session.window import Window, stored_processes, whole, window_snapshot
from tracing.system.threads import NAMES_MAX

PID, GONE = 100, 200  # a process still running at the end, one that ended
HOSTILE = "\x1b[31m[b]x\u202e"  # a thread's name is whatever the program set
START = 1_000_000_000
OFFSET_NS = 1_700_000_000 * 10**9 - START  # UTC ns minus monotonic ns


def stats_of(*keys: StatKey) -> MappingProxyType[StatKey, SyscallStats]:
    return MappingProxyType({k: SyscallStats(3, 1, 300, 50, 150, ((40, 3),)) for k in keys})


def snapshot(seq: int, processes: dict[int, ProcessInfo],
             proc_events: tuple[ProcEvent, ...] = ()) -> Snapshot:
    keys = [StatKey(p.pid, t, 0) for p in processes.values() for t in (p.pid, *p.threads)]
    stats = stats_of(*keys)
    return Snapshot(
        seq=seq, ts_ns=START * (seq + 1), wall_time=1_700_000_000.0 + seq,
        start_ts_ns=START, start_wall_time=1_700_000_000.0, arch="x86_64",
        state=TraceState.TRACING,
        stats=stats, interval=stats if seq == 1 else MappingProxyType({}), interval_s=1.0,
        processes=MappingProxyType(processes), events=np.zeros(0, dtype=EVENT_DTYPE),
        proc_events=proc_events, drops=Drops(), tracer_cpu_s=0.0)


RUNNING = ProcessInfo(
    PID, 1, "python", "/usr/bin/python3", ("python3", "app.py"), "x86_64", START,
    threads=frozenset({101, 102, 103, 104}), live_threads=frozenset({101, 102}),
    thread_names={101: "io-0", 102: HOSTILE, 103: "worker"}, threads_seen=620,
    thread_names_dropped=3)
ENDED = ProcessInfo(
    GONE, 1, "server", "/usr/bin/server", ("server",), "x86_64", START, START * 2,
    ExitStatus(code=0), threads=frozenset({201}), live_threads=frozenset(),
    thread_names={201: "acceptor"}, threads_seen=1)
THREAD_EXIT = ProcEvent(START + 500, ProcKind.EXIT, PID, 103, 1, 0, False, "worker", "")


def ticks() -> list[Snapshot]:
    """Three ticks: threads start, 103 ends (its exit event seen) and 104 is forgotten
    (renamed 101 too), and the last changes nothing."""
    first = RUNNING.replace(threads=frozenset({101, 102, 103, 104, 105}),
                            live_threads=frozenset({101, 102, 103, 104, 105}),
                            thread_names={101: "io", 102: HOSTILE, 103: "worker", 105: "x"})
    return [snapshot(1, {PID: first, GONE: ENDED}),
            snapshot(2, {PID: RUNNING, GONE: ENDED}, (THREAD_EXIT,)),
            snapshot(3, {PID: RUNNING, GONE: ENDED})]


def thread_fields(p: ProcessInfo) -> tuple[object, ...]:
    return (p.threads, p.live_threads, dict(p.thread_names), p.threads_seen,
            p.thread_names_dropped, p.thread_total, p.live_thread_count)


def journal(path: Path, snapshots: list[Snapshot]) -> Path:
    j = Journal(path, {"targets": ["python3 app.py"]})
    for s in snapshots:
        j.put(s)
    j.close()
    return path


def test_journal_schema_5_keeps_each_threads_name_state_and_exit(tmp_path: Path) -> None:
    path = journal(tmp_path / "t.sikte.db", ticks())
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,) == (5,)
    rows = db.execute("SELECT pid, tid, name, alive, exit_ts_ns FROM threads "
                      "ORDER BY pid, tid").fetchall()
    # 104 unnamed (its name was not kept), 105 forgotten by the tracker: its row deleted.
    assert rows == [(PID, 101, "io-0", 1, None), (PID, 102, HOSTILE, 1, None),
                    (PID, 103, "worker", 0, START + 500), (PID, 104, None, 0, None),
                    (GONE, 201, "acceptor", 0, None)]
    assert db.execute("SELECT pid, threads_seen, thread_names_dropped FROM processes "
                      "ORDER BY pid").fetchall() == [(PID, 620, 3), (GONE, 1, 0)]
    db.close()

    session = open_session(path)
    shown = window_snapshot(session, whole(session), seq=1).processes
    assert thread_fields(shown[PID]) == thread_fields(RUNNING)
    assert thread_fields(shown[PID]) == (
        frozenset({101, 102, 103, 104}), frozenset({101, 102}),
        {101: "io-0", 102: HOSTILE, 103: "worker"}, 620, 3, 621, 3)
    assert thread_fields(shown[GONE]) == thread_fields(ENDED)
    assert shown[PID].thread_name(102) == HOSTILE  # stored as data, exactly
    assert shown[PID].thread_name(104) == shown[PID].thread_name(PID) == "python"
    # A stretch shows the threads as at the end too (only their newest state is kept).
    stretch = window_snapshot(session, Window(START, START + 10), seq=2).processes
    assert thread_fields(stretch[PID]) == thread_fields(RUNNING)


def test_a_reused_pid_replaces_the_old_threads(tmp_path: Path) -> None:
    other = ProcessInfo(PID, 1, "sh", threads=frozenset({150}), live_threads=frozenset({150}),
                        thread_names={150: "sh-helper"}, threads_seen=1)
    path = journal(tmp_path / "t.sikte.db", [snapshot(1, {PID: RUNNING}),
                                             snapshot(2, {PID: other})])
    session = open_session(path)
    assert thread_fields(stored_processes(session)[PID]) == thread_fields(other)


def test_the_in_memory_copy_keeps_the_threads(tmp_path: Path) -> None:
    j = Journal(None, {"targets": []})
    for s in ticks():
        j.put(s)
    stored = j.stored()
    j.close()
    assert thread_fields(stored_processes(stored)[PID]) == thread_fields(RUNNING)


def test_parquet_threads_table_and_read_back(tmp_path: Path) -> None:
    session = open_session(journal(tmp_path / "t.sikte.db", ticks()))
    out = export_parquet(session, tmp_path / "pq")
    threads = pq.read_table(out / "threads.parquet")
    assert threads.schema.field("exit_ts").type == pa.timestamp("ns", tz="UTC")
    assert threads.schema.field("alive").type == pa.bool_()
    rows = [(r["pid"], r["tid"], r["name"], r["alive"],
             None if r["exit_ts"] is None else r["exit_ts"].value - OFFSET_NS)
            for r in threads.to_pandas().replace({np.nan: None}).to_dict("records")]
    assert rows == [
        (PID, PID, "python", True, None), (PID, 101, "io-0", True, None),
        (PID, 102, HOSTILE, True, None), (PID, 103, "worker", False, START + 500),
        (PID, 104, None, False, None),
        (GONE, GONE, "server", False, START * 2), (GONE, 201, "acceptor", False, None)]
    processes = pq.read_table(out / "processes.parquet").to_pandas().set_index("pid")
    assert processes.loc[PID, ["threads", "live_threads", "thread_names_dropped"]].tolist() \
        == [621, 3, 3]
    assert processes.loc[GONE, ["threads", "live_threads", "thread_names_dropped"]].tolist() \
        == [2, 0, 0]
    # What a DuckDB or pandas user does: each thread's calls under its own name.
    calls = pd.read_parquet(out / "syscalls.parquet").merge(
        pd.read_parquet(out / "threads.parquet"), on=["pid", "tid"], how="left")
    assert dict(zip(calls["tid"], calls["name"], strict=True))[103] == "worker"

    again = open_session(out)
    shown = stored_processes(again)
    assert thread_fields(shown[PID]) == thread_fields(RUNNING)
    assert thread_fields(shown[GONE]) == thread_fields(ENDED)
    assert again.threads is not None
    assert (103, START + 500) in zip(again.threads["tid"], again.threads["exit_ts_ns"],
                                      strict=True)


def test_recordings_carry_the_threads_and_older_ones_read_as_before() -> None:
    line = json.loads(json.dumps(snapshot_to_dict(ticks()[1])))
    back = snapshot_from_dict(line).processes
    assert thread_fields(back[PID]) == thread_fields(RUNNING)
    for p in line["processes"]:  # a recording from before names were kept
        for key in ("live_threads", "thread_names", "threads_seen", "thread_names_dropped"):
            del p[key]
    old = snapshot_from_dict(line).processes[PID]
    assert (old.threads, old.live_threads, dict(old.thread_names)) == (
        RUNNING.threads, None, {})
    line["processes"][0]["thread_names"] = [[101, "x" * 1000]]
    with pytest.raises(ValueError):
        snapshot_from_dict(line)


def old_journal(path: Path) -> Path:
    """A schema 4 journal: no threads table; python's threads only in its rows."""
    db = sqlite3.connect(path)
    for version in (1, 2, 3, 4):
        for statement in MIGRATIONS[version]:
            db.execute(statement)
    meta = {"format": FORMAT, "schema_version": 4, "start_ts_ns": 100, "end_ts_ns": 300,
            "start_wall_time": 1.5, "arch": "x86_64"}
    db.executemany("INSERT INTO meta VALUES (?, ?)",
                   [(k, json.dumps(v)) for k, v in meta.items()])
    db.execute("INSERT INTO processes (pid, comm, abi) VALUES (20, 'python', 'x86_64')")
    for tid in (20, 21, 22):
        db.execute("INSERT INTO aggregates (pid, tid, nr, abi, count, errors, total_ns, "
                   "min_ns, max_ns) VALUES (20, ?, 0, 0, 1, 0, 10, 10, 10)", (tid,))
    db.commit()
    db.close()
    return path


def test_a_schema_4_journal_opens_with_its_rows_threads(tmp_path: Path) -> None:
    path = old_journal(tmp_path / "old.sikte.db")
    session = open_session(path)
    assert session.threads is None
    p = stored_processes(session)[20]
    assert (p.threads, p.live_threads, dict(p.thread_names), p.thread_total) == (
        frozenset({21, 22}), None, {}, 3)
    out = export_parquet(session, tmp_path / "pq")
    assert pq.read_table(out / "threads.parquet").to_pydict() == {
        "pid": [20, 20, 20], "tid": [20, 21, 22], "name": ["python", None, None],
        "alive": [True, None, None], "exit_ts": [None, None, None]}
    # Upgraded in place to schema 5: no thread rows yet, counts unknown.
    db = sqlite3.connect(path)
    apply_migrations(db, 4)
    assert db.execute("SELECT count(*) FROM threads").fetchone() == (0,)
    assert db.execute("SELECT threads_seen FROM processes").fetchone() == (None,)
    db.close()


def test_a_parquet_export_without_threads_opens(tmp_path: Path) -> None:
    session = open_session(journal(tmp_path / "t.sikte.db", ticks()))
    out = export_parquet(session, tmp_path / "pq")
    (out / "threads.parquet").unlink()
    table = pq.read_table(out / "processes.parquet")
    pq.write_table(table.drop_columns(["threads", "live_threads", "thread_names_dropped"]),
                   out / "processes.parquet")
    p = stored_processes(open_session(out))[PID]
    # Every thread its rows name (105, forgotten by the tracker, made calls), unnamed.
    assert (p.threads, p.live_threads, dict(p.thread_names)) == (
        frozenset({101, 102, 103, 104, 105}), None, {})


@pytest.mark.parametrize(("change", "message"), [
    ("UPDATE threads SET name = x'41' WHERE tid = 101", "name column holds something other"),
    (f"UPDATE threads SET name = '{'n' * 65}' WHERE tid = 101", "longer than a thread's name"),
    ("UPDATE threads SET alive = 7 WHERE tid = 101", "alive column holds 7, out of range"),
    (f"UPDATE threads SET tid = {2 ** 40} WHERE tid = 101", "tid column holds"),
    ("UPDATE threads SET exit_ts_ns = 'soon' WHERE tid = 103", "exit_ts_ns column holds"),
    ("UPDATE processes SET threads_seen = -1", "threads_seen column holds -1"),
    ("ALTER TABLE threads DROP COLUMN alive", "no alive column"),
    ("DROP TABLE threads", "no threads table"),
])
def test_hostile_thread_rows_fail_in_one_line(tmp_path: Path, change: str,
                                              message: str) -> None:
    path = journal(tmp_path / "t.sikte.db", ticks())
    db = sqlite3.connect(path)
    db.execute(change)
    db.commit()
    db.close()
    with pytest.raises(UserError, match=message) as caught:
        open_session(path)
    assert "\n" not in str(caught.value)


def test_thread_names_past_the_trackers_bound_are_counted_not_kept(tmp_path: Path) -> None:
    path = journal(tmp_path / "t.sikte.db", ticks())
    db = sqlite3.connect(path)
    extra = NAMES_MAX + 10
    db.executemany("INSERT INTO threads VALUES (?, ?, ?, 1, NULL)",
                   ((PID, 10_000 + i, f"t{i}") for i in range(extra)))
    db.commit()
    db.close()
    p = stored_processes(open_session(path))[PID]
    assert len(p.thread_names) == NAMES_MAX
    # Its 3 dropped, and the names past the bound: 3 of the journal's + extra - NAMES_MAX.
    assert p.thread_names_dropped == 3 + (3 + extra - NAMES_MAX)
    assert len(p.threads) == 4 + extra


def test_hostile_parquet_thread_rows_fail_in_one_line(tmp_path: Path) -> None:
    session = open_session(journal(tmp_path / "t.sikte.db", ticks()))
    out = export_parquet(session, tmp_path / "pq")
    table = pq.read_table(out / "threads.parquet")
    bad = table.set_column(table.schema.get_field_index("alive"), "alive",
                           pa.array(["yes"] * len(table)))
    pq.write_table(bad, out / "threads.parquet")
    with pytest.raises(UserError, match="alive column holds something other than true"):
        open_session(out)


# -- the filters: `comm` is the process's name or the thread's own --------------------------

def test_the_syscall_filter_matches_a_threads_own_name() -> None:
    def keeps(text: str, thread_comm: str | None) -> bool:
        return parse_filter(text).matches_key(name="read", nr=0, pid=PID, tid=101,
                                              comm="python", thread_comm=thread_comm)

    assert keeps("comm=io-0", "io-0") and keeps("comm=python", "io-0")
    assert not keeps("comm=io-0", None) and not keeps("comm=io-0", "python")
    assert keeps("comm~^io", "io-0") and not keeps("comm~^io", None)
    assert not keeps("comm!=io-0", "io-0") and not keeps("comm!=python", "io-0")
    assert keeps("comm!=other", "io-0") and keeps("!comm=io-0", None)


@dataclasses.dataclass(frozen=True)
class Ev:
    pid: int = PID
    tid: int = 101
    comm: str = "python"
    thread_comm: str = "io-0"
    name: str = "read"
    paths: tuple[str, ...] = ()
    addr: str = ""
    fds: tuple[int, ...] = ()
    ret: int = 0
    errno: str = ""
    duration_ns: int = 1


def test_the_event_filter_matches_a_threads_own_name() -> None:
    named, main = Ev(), Ev(tid=PID, thread_comm="python")
    for text, kept in [("comm=io-0", [named]), ("comm=python", [named, main]),
                       ("comm!=io-0", [main]), ("comm~-0$", [named]), ("io-", [named]),
                       ("!comm=io-0", [main])]:
        flt = parse_event_filter(text)
        assert [e for e in (named, main) if flt.matches(e)] == kept, text
