"""Sessions for real (root): record a known workload to a journal and Parquet, read it back
with pandas, pyarrow and DuckDB and in the TUI, kill a recording, fill the disk under it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.helpers import with_extra_events
from tracing.session.journal import Journal
from tracing.session.replay import load_snapshots
from tracing.session.stored import open_session
from tracing.session.window import whole, window_snapshot
from tracing.sources import StoredSource
from tui.app import SikteApp
from tui.table import KeyedTable

pytestmark = pytest.mark.ebpf

SIKTE = [sys.executable, "-m", "cli.main"]
ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "tui" / "data" / "session.jsonl.gz"
N = 20_000


def sikte(*args: str, env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*SIKTE, *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120, **kw)


def getppid_count(frame: pd.DataFrame) -> int:
    return int(frame.loc[frame["syscall"] == "getppid", "count"].sum())


@pytest.fixture(scope="module")
def recorded(workload: str, tmp_path_factory) -> dict:
    """One real recording: JSON summary, journal and Parquet directory."""
    where = tmp_path_factory.mktemp("recorded")
    db, out = where / "run.sikte.db", where / "pq"
    run = sikte("record", "--json", "--events", "all", "--db-path", str(db), "--output",
                str(out), "--", workload, "getppid", str(N))
    assert run.returncode == 0, run.stderr
    assert f"session saved in {db}" in run.stderr and f"Parquet written to {out}" in run.stderr
    return {"json": json.loads(run.stdout), "db": db, "out": out}


def test_record_journal_and_parquet_hold_the_live_counts(recorded):
    live = {r["syscall"]: r for r in recorded["json"]["syscalls"]}
    assert live["getppid"]["count"] == N
    for path in (recorded["db"], recorded["out"]):
        session = open_session(path)
        shown = window_snapshot(session, whole(session), seq=1)
        counts: dict[int, int] = {}
        for key, stats in shown.stats.items():
            counts[key.nr] = counts.get(key.nr, 0) + stats.count
        assert {nr: c for nr, c in counts.items()} == {
            r["nr"]: r["count"] for r in recorded["json"]["syscalls"]}, path
        # Every event went through (selection "all", no drops): one per syscall.
        assert recorded["json"]["drops"]["events"] == 0
        assert len(session.events) == sum(r["count"] for r in recorded["json"]["syscalls"])


def test_pandas_pyarrow_and_duckdb_read_exact_counts(recorded):
    out = recorded["out"]
    assert getppid_count(pd.read_parquet(out / "syscalls.parquet")) == N
    assert getppid_count(pq.read_table(out / "syscalls.parquet").to_pandas()) == N
    con = duckdb.connect()
    events = con.execute(f"SELECT count(*) FROM '{out}/events.parquet' "
                         "WHERE syscall = 'getppid'").fetchone()[0]
    timeline = con.execute(f"SELECT sum(count) FROM '{out}/timeline.parquet' "
                           "WHERE syscall = 'getppid'").fetchone()[0]
    assert events == timeline == N
    procs = pd.read_parquet(out / "processes.parquet")
    workload = procs[procs["comm"] == "workload"]
    assert list(workload["exit_code"]) == [0] and workload["exit_ts"].notna().all()


@pytest.mark.parametrize("which", ["db", "out"])
async def test_open_shows_the_live_numbers(recorded, which):
    app = SikteApp(source=StoredSource(open_session(recorded[which])))
    async with app.run_test(size=(160, 48)) as pilot:
        for _ in range(60):
            table = app.screen.query_one(KeyedTable)
            if table.row_count:
                break
            await pilot.pause(0.05)
        rows = {r.values.get("name"): r.values for r in table.rows}
        assert rows["getppid"]["count"] == N
        assert "saved session" in str(app.screen.query_one("#status").render())


def test_cli_export_of_the_journal_matches_record_output(recorded, tmp_path):
    run = sikte("export", str(recorded["db"]), "--output", str(tmp_path / "again"))
    assert run.returncode == 0, run.stderr
    a = pd.read_parquet(recorded["out"] / "syscalls.parquet")
    b = pd.read_parquet(tmp_path / "again" / "syscalls.parquet")
    pd.testing.assert_frame_equal(a, b)
    again = sikte("export", str(recorded["db"]), "--output", str(tmp_path / "again"))
    assert again.returncode == 2 and "already exists" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


def test_sigkill_keeps_everything_up_to_a_second_before(workload, tmp_path):
    db = tmp_path / "killed.sikte.db"
    # A millisecond's sleep at a time, for minutes: something to count at every tick.
    proc = subprocess.Popen([*SIKTE, "record", "--db-path", str(db), "--", workload,
                             "sleep", "200000", "1"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert "tracing" in proc.stderr.readline()
        time.sleep(3.0)
        killed_at = time.time()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        subprocess.run(["pkill", "-f", f"{workload} sleep 200000"])
    session = open_session(db)
    offset = session.wall_offset_ns
    newest = (session.timeline["ts_ns"].max() + offset) / 1e9
    assert killed_at - newest <= 1.0, f"{killed_at - newest:.2f} s lost"
    shown = window_snapshot(session, whole(session), seq=1)
    assert sum(s.count for s in shown.stats.values()) == session.timeline["count"].sum() > 1000
    assert shown.stats  # the final aggregates were written as it went, not only at the end


def test_under_sudo_the_files_belong_to_the_user(workload, request):
    # Files are made with the user's credentials (issue 12), so they go where the user may
    # write: a directory of theirs, not root's private pytest one.
    home = Path(tempfile.mkdtemp(prefix="sikte-nobody-", dir="/tmp"))
    request.addfinalizer(lambda: shutil.rmtree(home))
    os.chown(home, 65534, 65534)
    data = home / "xdg"
    data.mkdir()
    os.chown(data, 65534, 65534)
    out = home / "pq"
    # --user root: the workload sits in root's private pytest directory.
    run = sikte("record", "--user", "root", "--output", str(out), "--", workload, "getppid",
                "10",
                env={"SUDO_UID": "65534", "SUDO_GID": "65534", "XDG_DATA_HOME": str(data)})
    assert run.returncode == 0, run.stderr
    journals = list((data / "sikte-tui" / "sessions").glob("*.sikte.db"))
    assert len(journals) == 1
    for path in [data / "sikte-tui", journals[0].parent, journals[0], out, *out.iterdir()]:
        st = path.stat()
        assert (st.st_uid, st.st_gid) == (65534, 65534), path


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    # Room for a new journal (schema 3: about 140 kB of write-ahead log) and the first
    # snapshot, not for the rest.
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=320k", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_full_disk_keeps_the_session_in_memory(small_disk):
    snapshots = load_snapshots(FIXTURE)
    journal = Journal(small_disk / "s.sikte.db", {"targets": ["x"]})
    journal.put(snapshots[0])
    assert journal.sync()
    assert journal.on_disk
    rest = [with_extra_events(s, 2000) for s in snapshots[1:]]  # ~190 kB each: the disk fills
    for s in rest:
        journal.put(s)
        journal.sync()
    assert journal.failed and "could not be written" in journal.describe()
    assert "full" in journal.describe()
    journal.close()
    session = journal.stored()
    shown = window_snapshot(session, whole(session), seq=1)
    assert dict(shown.stats) == dict(snapshots[-1].stats)
    assert len(session.events) == sum(len(s.events) for s in [snapshots[0], *rest])
