"""Sessions that do not grow without limit (no root): the sessions folder's cap and what
pruning may delete, a journal's own cap, the bounded in-memory fallback, and aborted
journals in the sessions list."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import played_again, with_extra_events
from tracing.boundary.userfiles import invoking_user, open_dir
from tracing.errors import UserError
from tracing.model.stats import Snapshot
from tracing.session.catalogue import list_sessions
from tracing.session.export import SESSION_FILES
from tracing.session.journal import Journal, JournalOptions, Limits, start_journal
from tracing.session.replay import load_snapshots
from tracing.session.retention import (
    CAP_ENV,
    DEFAULT_SESSIONS_CAP,
    PARQUET_FILES,
    SQLITE_MAGIC,
    delete_session,
    journal_cap,
    parse_size,
    prune,
    scan,
    sessions_cap,
)
from tracing.session.stored import open_session
from tracing.session.window import whole, window_snapshot

FIXTURE = Path(__file__).resolve().parents[1] / "tui" / "data" / "session.jsonl.gz"
ROOT = Path(__file__).resolve().parents[2]
KIB = 1024


@pytest.fixture(scope="module")
def snapshots() -> list[Snapshot]:
    return load_snapshots(FIXTURE)


def fake_journal(directory: Path, name: str, size: int, age_s: float) -> Path:
    """A file that is a journal as far as pruning looks (SQLite magic), written age_s ago."""
    path = directory / name
    path.write_bytes(SQLITE_MAGIC + b"\0" * (size - len(SQLITE_MAGIC)))
    Path(f"{path}-wal").write_bytes(b"\0" * 1000)
    stamp = time.time() - age_s
    for p in (path, Path(f"{path}-wal")):
        os.utime(p, (stamp, stamp))
    return path


def fake_parquet(directory: Path, name: str, size: int, age_s: float) -> Path:
    path = directory / name
    path.mkdir()
    (path / "session.json").write_text(json.dumps({"format": "sikte-tui-journal"}))
    (path / "events.parquet").write_bytes(b"\0" * size)
    stamp = time.time() - age_s
    for p in (path / "session.json", path / "events.parquet", path):
        os.utime(p, (stamp, stamp))
    return path


def names(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


# -- the cap's value --


@pytest.mark.parametrize(("text", "value"), [
    ("2G", 2 << 30), ("500M", 500 << 20), ("1.5g", 3 << 29), ("0", 0), ("4096", 4096),
    ("10MiB", 10 << 20), ("3 GB", 3 << 30), ("64k", 64 << 10)])
def test_sizes_read_like_a_person_writes_them(text, value):
    assert parse_size(text) == value


def test_the_cap_comes_from_the_option_then_the_environment(monkeypatch):
    monkeypatch.delenv(CAP_ENV, raising=False)
    assert sessions_cap(None) == DEFAULT_SESSIONS_CAP == 2 << 30
    assert journal_cap(DEFAULT_SESSIONS_CAP) == 1 << 30
    monkeypatch.setenv(CAP_ENV, "300M")
    assert sessions_cap(None) == 300 << 20
    assert sessions_cap("0") == 0  # the option wins; 0: no cap
    monkeypatch.setenv(CAP_ENV, "lots")
    with pytest.raises(UserError) as err:
        sessions_cap(None)
    assert err.value.exit_code == 2
    assert str(err.value) == (f"{CAP_ENV}: 'lots' is not a size: use a number with K, M, G "
                              "or T (e.g. 2G, 500M; 0: no cap)")


def test_record_refuses_a_bad_cap_in_one_line():
    run = subprocess.run([sys.executable, "-m", "cli.main", "record", "--sessions-cap", "2X",
                          "--", "/bin/true"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 2
    assert run.stderr == ("sikte-tui: --sessions-cap: '2X' is not a size: use a number with "
                          "K, M, G or T (e.g. 2G, 500M; 0: no cap)\n")


def test_pruning_knows_every_file_an_export_writes():
    assert PARQUET_FILES == SESSION_FILES


# -- pruning --


def test_pruning_deletes_the_oldest_sessions_first_and_only_sessions(tmp_path):
    folder = tmp_path / "sessions"
    folder.mkdir(mode=0o700)
    fake_journal(folder, "a-oldest.sikte.db", 100 * KIB, 500)
    fake_parquet(folder, "b-export", 100 * KIB, 400)
    fake_journal(folder, "c.sikte.db", 100 * KIB, 300)
    fake_journal(folder, "d-newest.sikte.db", 100 * KIB, 10)
    running = fake_journal(folder, "0-running.sikte.db", 100 * KIB, 1000)  # oldest of all
    # Things that are not sessions, however old or big: never touched.
    (folder / "notes.sikte.db").write_text("a text file named like a journal" * 10_000)
    (folder / "mine.txt").write_bytes(b"\0" * 300 * KIB)
    odd = folder / "not-an-export"
    odd.mkdir()
    (odd / "session.json").write_text(json.dumps({"format": "sikte-tui-journal"}))
    (odd / "thesis.tex").write_text("mine")
    canary = tmp_path / "canary.sikte.db"
    canary.write_bytes(SQLITE_MAGIC + b"\0" * 200 * KIB)
    (folder / "link.sikte.db").symlink_to(canary)
    for p in (folder / "notes.sikte.db", folder / "mine.txt", odd, odd / "session.json",
              odd / "thesis.tex", folder / "link.sikte.db"):
        os.utime(p, (1, 1), follow_symlinks=False)  # older than every session
    before = names(folder)

    with open_dir(folder, invoking_user()) as directory:
        assert {s.name for s in scan(directory)} == {
            "a-oldest.sikte.db", "b-export", "c.sikte.db", "d-newest.sikte.db",
            "0-running.sikte.db"}
        # 5 sessions of ~101 KiB: a 250 KiB cap keeps two (the running one and the newest).
        pruned = prune(directory, 250 * KIB, keep={running.name})

    assert pruned.removed == ("a-oldest.sikte.db", "b-export", "c.sikte.db")
    assert before - names(folder) == {"a-oldest.sikte.db", "a-oldest.sikte.db-wal",
                                      "b-export", "c.sikte.db", "c.sikte.db-wal"}
    assert canary.stat().st_size == len(SQLITE_MAGIC) + 200 * KIB
    assert (odd / "thesis.tex").read_text() == "mine"
    assert pruned.total == 2 * (100 * KIB + 1000)


def test_pruning_under_the_cap_or_without_one_deletes_nothing(tmp_path):
    fake_journal(tmp_path, "a.sikte.db", 100 * KIB, 100)
    fake_journal(tmp_path, "b.sikte.db", 100 * KIB, 50)
    before = names(tmp_path)
    with open_dir(tmp_path, invoking_user()) as directory:
        assert prune(directory, 0).removed == ()
        assert prune(directory, 1 << 30).removed == ()
    assert names(tmp_path) == before


def test_pruning_never_deletes_another_users_session(tmp_path):
    os.chmod(tmp_path, 0o755)
    theirs = fake_journal(tmp_path, "theirs.sikte.db", 100 * KIB, 1000)
    os.chown(theirs, 65534, 65534)
    fake_journal(tmp_path, "mine.sikte.db", 100 * KIB, 10)
    with open_dir(tmp_path, invoking_user()) as directory:
        pruned = prune(directory, 1)
    assert pruned.removed == ("mine.sikte.db",)
    assert theirs.exists() and theirs.stat().st_uid == 65534


HOLDER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("PRAGMA journal_mode = WAL")
db.execute("CREATE TABLE IF NOT EXISTS t (x)")
db.execute("INSERT INTO t VALUES (1)")
db.commit()
print("open", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def held_open(tmp_path):
    """A journal another process has open (as a running trace would)."""
    path = tmp_path / "held.sikte.db"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "open\n"
    os.utime(path, (1, 1))
    yield path
    proc.stdin.close()
    proc.wait(timeout=10)


def test_a_journal_another_process_has_open_is_never_deleted(tmp_path, held_open):
    fake_journal(tmp_path, "old.sikte.db", 100 * KIB, 100)
    with open_dir(tmp_path, invoking_user()) as directory:
        pruned = prune(directory, 1)
        assert pruned.removed == ("old.sikte.db",)
        with pytest.raises(UserError, match="open in another sikte-tui"):
            delete_session(directory, held_open.name)
    assert held_open.exists()


def test_delete_session_refuses_what_is_not_a_session(tmp_path):
    (tmp_path / "notes.sikte.db").write_text("mine")
    with open_dir(tmp_path, invoking_user()) as directory, \
            pytest.raises(UserError, match="is not a sikte-tui session of yours"):
        delete_session(directory, "notes.sikte.db")
    assert (tmp_path / "notes.sikte.db").read_text() == "mine"


def test_a_new_journal_prunes_the_folder_but_never_itself(tmp_path, snapshots, monkeypatch):
    data = tmp_path / "data"
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    folder = data / "sikte-tui" / "sessions"
    folder.mkdir(parents=True, mode=0o700)
    fake_journal(folder, "20200101-000000-old.sikte.db", 200 * KIB, 1000)
    fake_journal(folder, "20200102-000000-newer.sikte.db", 200 * KIB, 500)
    journal = start_journal(JournalOptions(sessions_cap=400 * KIB), ["ls"], {"targets": ["ls"]})
    try:
        assert journal.limits.sessions_cap == 400 * KIB
        assert journal.limits.journal_cap == 200 * KIB
        journal.put(snapshots[0])
        assert journal.sync()
        assert journal.pruned == ["20200101-000000-old.sikte.db"]
        assert names(folder) == {"20200102-000000-newer.sikte.db",
                                 "20200102-000000-newer.sikte.db-wal",
                                 *(journal.path.name + s for s in ("", "-wal", "-shm"))}
    finally:
        journal.close()


def test_a_growing_journal_prunes_older_sessions_as_it_passes_the_cap(
        tmp_path, snapshots, monkeypatch):
    monkeypatch.setattr("tracing.session.journal.PRUNE_INTERVAL_S", 0.0)
    fake_journal(tmp_path, "old.sikte.db", 100 * KIB, 1000)
    limits = Limits(journal_cap=10 << 20, sessions_cap=400 * KIB)
    journal = Journal(tmp_path / "now.sikte.db", {"targets": ["x"]}, limits=limits)
    try:
        journal.put(snapshots[0])
        assert journal.sync()
        assert journal.pruned == []  # together still under 400 KiB
        for s in snapshots[1:4]:
            journal.put(with_extra_events(s, 2000))  # 176 KB of events each
            assert journal.sync()
        assert journal.pruned == ["old.sikte.db"]
        assert (tmp_path / "now.sikte.db").exists()
    finally:
        journal.close()


# -- a journal's own cap --


def test_a_journal_at_its_cap_stops_keeping_events_and_says_so(tmp_path, snapshots):
    fed = [with_extra_events(s, 1000) for s in snapshots]  # 88 KB of events each
    journal = Journal(tmp_path / "s.sikte.db", {"targets": ["x"]},
                      limits=Limits(journal_cap=200 * KIB))
    for s in fed:
        journal.put(s)
        assert journal.sync()  # one flush each: the cap is checked between them
    assert journal.on_disk and not journal.failed and journal.capped
    assert journal.status == "journal at its 200 KiB cap: individual events no longer kept"
    assert journal.describe() == (f"journal {tmp_path / 's.sikte.db'} (journal at its 200 KiB "
                                  "cap: individual events no longer kept)")
    journal.close()
    session = open_session(tmp_path / "s.sikte.db")
    # Events stop at one point: the first k snapshots' events, whole, and none after.
    kept = len(session.events)
    k = next(i for i in range(len(fed) + 1) if sum(len(s.events) for s in fed[:i]) == kept)
    assert 0 < k < len(fed)
    assert (session.events == np.concatenate([s.events for s in fed[:k]])).all()
    not_kept = sum(len(s.events) for s in fed[k:])
    assert journal.events_not_kept == not_kept
    assert session.meta["events_not_kept"] == {"journal_cap": not_kept, "memory_cap": 0}
    # Counts, timeline and processes are whole.
    shown = window_snapshot(session, whole(session), seq=1)
    assert dict(shown.stats) == dict(snapshots[-1].stats)
    assert session.timeline["count"].sum() == snapshots[-1].total_count
    assert set(session.processes["pid"]) == set(snapshots[-1].processes)
    assert (tmp_path / "s.sikte.db").stat().st_size < 200 * KIB + 88 * KIB


# -- the in-memory fallback is bounded --


def held_events(journal: Journal) -> tuple[int, int]:
    """(events, bytes of events) the journal's database holds now."""
    copy = journal.copy()
    try:
        n, size = copy.execute("SELECT coalesce(sum(n), 0), coalesce(sum(length(data)), 0) "
                               "FROM event_batches").fetchone()
    finally:
        copy.close()
    return n, size


def test_no_journal_keeps_only_the_newest_events_in_memory(snapshots):
    cap = 300 * KIB
    journal = Journal(None, {"targets": ["x"]}, limits=Limits(memory_events_cap=cap))
    fed = played_again([with_extra_events(s, 1000) for s in snapshots], 3)
    for s in fed:
        journal.put(s)
        assert journal.sync()
        assert held_events(journal)[1] <= cap
    journal.close()
    total = sum(len(s.events) for s in fed)
    held, _ = held_events(journal)
    assert journal.memory_bounded and journal.dropped_events == total - held > 0
    assert journal.status == (f"not kept on disk (--no-journal); in memory only the newest "
                              f"300 KiB of individual events are kept ({total - held:,} older "
                              "ones dropped; every count is kept)")
    session = journal.stored()
    # The newest events are the ones kept, and every count is exact.
    assert (session.events == np.concatenate([s.events for s in fed])[-held:]).all()
    shown = window_snapshot(session, whole(session), seq=1)
    assert sum(v.count for v in shown.stats.values()) == 3 * snapshots[-1].total_count


def test_a_full_disk_falls_back_to_a_bounded_memory(tmp_path, snapshots):
    cap = 300 * KIB
    journal = Journal(tmp_path / "s.sikte.db", {"targets": ["x"]},
                      limits=Limits(memory_events_cap=cap))
    fed = played_again([with_extra_events(s, 1000) for s in snapshots], 3)
    for s in fed[:4]:
        journal.put(s)
        assert journal.sync()
    assert journal.on_disk and held_events(journal)[1] > cap
    with journal._lock:  # the disk is full from now on: SQLite says SQLITE_FULL
        pages = journal._db.execute("PRAGMA page_count").fetchone()[0]
        journal._db.execute(f"PRAGMA max_page_count = {pages}")
    for s in fed[4:]:
        journal.put(s)
        assert journal.sync()
        assert held_events(journal)[1] <= cap
    assert journal.failed and not journal.on_disk
    assert journal.status.startswith(
        "the journal could not be written (database or disk is full); the session is kept in "
        "memory; in memory only the newest 300 KiB of individual events are kept (")
    journal.close()
    total = sum(len(s.events) for s in fed)
    held, _ = held_events(journal)
    assert journal.dropped_events == total - held > 0
    session = journal.stored()
    assert (session.events == np.concatenate([s.events for s in fed])[-held:]).all()
    shown = window_snapshot(session, whole(session), seq=1)
    assert sum(v.count for v in shown.stats.values()) == 3 * snapshots[-1].total_count
    assert sum(v.errors for v in shown.stats.values()) == 3 * sum(
        v.errors for v in snapshots[-1].stats.values())


# -- aborted journals in the list --


KILLED = """
import os, sys
from pathlib import Path
from tracing.session.journal import Journal
from tracing.session.replay import load_snapshots
snapshots = load_snapshots(Path(sys.argv[2]))
journal = Journal(Path(sys.argv[1]), {"targets": ["make -j2", "pid 42"]})
for s in snapshots[:int(sys.argv[3])]:
    journal.put(s)
journal.sync()
os._exit(9)  # as a killed trace: no close, no final metadata
"""


def killed_journal(path: Path, ticks: int) -> Path:
    run = subprocess.run([sys.executable, "-c", KILLED, str(path), str(FIXTURE), str(ticks)],
                         cwd=ROOT, timeout=60)
    assert run.returncode == 9  # it ended where the script kills it, not on an error
    return path


def test_an_aborted_journal_is_listed_with_what_is_known(tmp_path, snapshots, make_journal):
    before = time.time()
    early = killed_journal(tmp_path / "early.sikte.db", 0)  # killed before the first tick
    late = killed_journal(tmp_path / "late.sikte.db", 3)
    after = time.time()
    whole_one = make_journal(tmp_path / "whole.sikte.db", snapshots)
    listed = {s.path.name: s for s in list_sessions(tmp_path)}

    e = listed[early.name]
    assert e.state == "aborted" and e.aborted and not e.has_data and not e.problem
    assert before <= e.start_wall_time <= after  # when the journal was made
    assert e.targets == ("make -j2", "pid 42")
    assert e.size_bytes > 0

    la = listed[late.name]
    assert la.state == "aborted" and la.aborted and la.has_data
    assert la.start_wall_time == snapshots[0].start_wall_time
    assert la.duration_s == pytest.approx(snapshots[2].wall_time - snapshots[0].start_wall_time)
    session = open_session(late)  # opening it shows what it holds
    assert session.timeline["count"].sum() == sum(
        d.count for s in snapshots[:3] for d in s.interval.values())

    w = listed[whole_one.name]
    assert w.state == "exited" and not w.aborted and w.exit_code == 0


def test_a_journal_still_recording_is_not_called_aborted(tmp_path, snapshots):
    journal = Journal(tmp_path / "now.sikte.db", {"targets": ["x"]})
    try:
        journal.put(snapshots[0])
        assert journal.sync()
        # Listed from another process, as `sikte-tui open` would while the trace runs.
        code = ("import sys; from pathlib import Path; from tracing.session.catalogue import "
                "list_sessions; print([s.state for s in list_sessions(Path(sys.argv[1]))])")
        run = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT,
                             capture_output=True, text=True, check=True, timeout=60)
        assert run.stdout == "['recording']\n"
    finally:
        journal.close()
    assert [s.state for s in list_sessions(tmp_path)] == ["tracing"]
    db = sqlite3.connect(tmp_path / "now.sikte.db")
    assert db.execute("SELECT value FROM meta WHERE key = 'closed_wall_time'").fetchone()
    db.close()
