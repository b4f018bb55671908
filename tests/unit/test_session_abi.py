"""Sessions keep each row's ABI (issue 16): journal schema 4 stores it per timeline and
aggregates row, the Parquet export names it (`abi`: "i386"), recordings carry it, and
sessions from before it read as before, each row taking its process's recorded ABI."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pyarrow.parquet as pq

from syscall_tables import ABI_COMPAT, ABI_NATIVE, ABI_X32
from tracing.model.report import key_name
from tracing.model.stats import EVENT_DTYPE_V1, StatKey, SyscallStats
from tracing.session.replay import snapshot_from_dict, snapshot_to_dict
from tracing.session.schema import FORMAT, MIGRATIONS, SCHEMA_VERSION, apply_migrations
from tracing.session.stored import open_session
from tracing.session.window import Window, whole, window_snapshot

from .test_abi_rows import INVALID, STATS, snapshot


def two_ticks() -> list:
    """Two snapshots: the second adds i386 and x86_64 calls to the first's totals."""
    first = {k: v for k, v in STATS.items() if k.pid != 10}
    more = {k: v for k, v in STATS.items() if k.pid == 10}
    return [snapshot(first, seq=1), snapshot({**first, **more}, seq=2, interval=more)]


def counts(entries) -> dict[StatKey, int]:
    return {k: v.count for k, v in entries.items()}


def test_journal_schema_4_round_trip(tmp_path: Path, make_journal) -> None:
    path = make_journal(tmp_path / "abi.sikte.db", two_ticks())
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    assert db.execute("SELECT count(*) FROM aggregates WHERE nr = 64").fetchone() == (3,)
    db.close()
    session = open_session(path)
    shown = window_snapshot(session, whole(session), seq=1)
    assert dict(shown.stats) == STATS  # the ABI of each key, exactly
    assert key_name(shown, StatKey(10, 10, 64, ABI_COMPAT)) == "getppid"
    # A stretch (the timeline's intervals) keeps them apart too.
    stretch = window_snapshot(session, Window(session.start_ts_ns + 1_500_000_000,
                                              whole(session).end_ns), seq=2)
    assert counts(stretch.stats) == {k: v.count for k, v in STATS.items() if k.pid == 10}


def test_parquet_export_names_each_abi(tmp_path: Path, make_journal) -> None:
    from tracing.session.export import export_parquet

    session = open_session(make_journal(tmp_path / "abi.sikte.db", two_ticks()))
    out = export_parquet(session, tmp_path / "out")
    syscalls = pq.read_table(out / "syscalls.parquet").to_pandas()
    rows = {(int(r.pid), r.abi, r.syscall, int(r.nr)): int(r.count)
            for r in syscalls.itertuples()}
    assert rows == {
        (10, "x86_64", "getppid", 110): 5, (10, "i386", "getppid", 64): 100,
        (10, "x86_64", "semget", 64): 1, (10, "i386", "_llseek", 140): 3,
        (11, "i386", "getppid", 64): 7, (12, "x32", "getpid", 39): 2,
        (13, "x86_64", "syscall_4294967295", INVALID): 1}
    timeline = pq.read_table(out / "timeline.parquet").to_pandas()
    assert sorted(set(timeline["abi"].astype(str))) == ["i386", "x32", "x86_64"]
    assert int(timeline[timeline["abi"] == "i386"]["count"].sum()) == 110
    # And read back from the Parquet directory, every key with its ABI.
    again = open_session(out)
    assert dict(window_snapshot(again, whole(again), seq=1).stats) == STATS


def test_a_schema_3_journal_takes_each_process_abi(tmp_path: Path) -> None:
    path = tmp_path / "old.sikte.db"
    db = sqlite3.connect(path)
    for version in (1, 2, 3):
        for statement in MIGRATIONS[version]:
            db.execute(statement)
    meta = {"format": FORMAT, "schema_version": 3, "start_ts_ns": 100, "end_ts_ns": 300,
            "start_wall_time": 1.5, "arch": "x86_64"}
    db.executemany("INSERT INTO meta VALUES (?, ?)",
                   [(k, json.dumps(v)) for k, v in meta.items()])
    db.executemany("INSERT INTO processes (pid, comm, abi) VALUES (?, ?, ?)",
                   [(20, "old32", "i386"), (21, "old64", "x86_64"), (22, "gone", None),
                    (23, "x32", "x32")])
    for pid in (20, 21, 22, 23):
        db.execute("INSERT INTO aggregates VALUES (?, ?, 64, 4, 0, 400, 100, 100, NULL)",
                   (pid, pid))
        db.execute("INSERT INTO timeline VALUES (200, ?, ?, 64, 4, 0, 400, 100, NULL)",
                   (pid, pid))
    old = np.zeros(1, dtype=EVENT_DTYPE_V1)
    old["ts"], old["pid"], old["tid"], old["nr"], old["ret"] = 150, 20, 20, 64, -4
    db.execute("INSERT INTO event_batches (first_ts_ns, last_ts_ns, n, data, layout) "
               "VALUES (150, 150, 1, ?, 1)", (old.tobytes(),))
    db.commit()
    db.close()
    session = open_session(path)
    want = {StatKey(20, 20, 64, ABI_COMPAT): 4, StatKey(21, 21, 64, ABI_NATIVE): 4,
            StatKey(22, 22, 64, ABI_NATIVE): 4, StatKey(23, 23, 64, ABI_X32): 4}
    shown = window_snapshot(session, whole(session), seq=1)
    assert counts(shown.stats) == want
    assert [key_name(shown, k) for k in sorted(want)] == [
        "getppid", "semget", "semget", "semget"]  # x32 shares x86_64's numbers up to 511
    assert counts(window_snapshot(session, Window(100, 250), seq=2).stats) == want
    assert session.events["abi"].tolist() == [ABI_COMPAT]  # old records: the process's

    # Upgraded in place, the rows take the same ABIs.
    db = sqlite3.connect(path)
    apply_migrations(db, 3)
    got = db.execute("SELECT pid, abi FROM aggregates ORDER BY pid").fetchall()
    assert got == [(20, 1), (21, 0), (22, 0), (23, 2)]
    assert db.execute("SELECT pid, abi FROM timeline ORDER BY pid").fetchall() == got
    db.close()


def test_recordings_carry_the_abi_and_older_ones_take_the_process_abi() -> None:
    s = snapshot()
    line = snapshot_to_dict(s)
    assert dict(snapshot_from_dict(json.loads(json.dumps(line))).stats) == STATS
    # A recording from before issue 16: 9 fields per row; its process's ABI stands in.
    line["stats"] = [row[:9] for row in line["stats"]]
    line["processes"] = [{**p, "abi": "i386" if p["pid"] == 11 else p["abi"]}
                         for p in line["processes"]]
    old = snapshot_from_dict(line)
    assert {k.pid: k.abi for k in old.stats} == {10: ABI_NATIVE, 11: ABI_COMPAT, 12: ABI_X32,
                                                13: ABI_NATIVE}


def test_a_stats_mapping_with_abis_survives_mapping_proxies() -> None:
    # Keys are plain tuples with a default: a 3-field key and its native 4-field one match.
    stats = MappingProxyType({StatKey(1, 1, 0): SyscallStats(1)})
    assert stats[StatKey(1, 1, 0, ABI_NATIVE)].count == 1
