"""Reading files other users control (tracing.boundary.untrusted_files), and journals the reader
cannot write: attacks as user nobody against root-only canaries (the tests run as root)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tracing.boundary.untrusted_files import (
    Limits,
    Refused,
    fd_lines,
    open_untrusted,
    read_untrusted,
)
from tracing.engine.symbols import PERF_MAP_LIMITS, read_perf_map
from tracing.session.journal import Journal
from tracing.session.replay import load_snapshots
from tracing.session.stored import open_session
from tracing.system.processes import CMDLINE_MAX, CUT, read_cmdline

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "tui" / "data" / "session.jsonl.gz"
NOBODY = 65534
AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
CANARY = "canary-7f3a9c-root-only"

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as nobody")


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    path = tmp_path / "secret"
    path.write_text(f"1000 100 {CANARY}\n")
    path.chmod(0o600)
    return path


def test_a_symlink_is_refused(tmp_path, canary):
    link = tmp_path / "link"
    link.symlink_to(canary)
    with pytest.raises(Refused, match="symbolic link"):
        read_untrusted(link, Limits(1 << 20))


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(Refused, match="FIFO"):
        open_untrusted(fifo)  # an open without O_NONBLOCK would block here forever


def test_directories_and_devices_are_refused(tmp_path):
    with pytest.raises(Refused, match="directory"):
        open_untrusted(tmp_path)
    with pytest.raises(Refused, match="character device"):
        open_untrusted("/dev/zero")


def test_owner_and_others_write_are_checked(tmp_path):
    path = tmp_path / "f"
    path.write_text("x")
    with pytest.raises(Refused, match=f"not to uid {NOBODY}"):
        open_untrusted(path, owner_uid=NOBODY)
    path.chmod(0o646)
    with pytest.raises(Refused, match="writable by every user"):
        open_untrusted(path, others_may_write=False)
    os.close(open_untrusted(path, owner_uid=os.geteuid()))


def test_a_size_bound_refuses_or_truncates(tmp_path):
    path = tmp_path / "big"
    with open(path, "wb") as f:
        f.truncate(400 << 20)  # sparse: 400 MB that cost nothing to make
    with pytest.raises(Refused, match="larger than 1,024 bytes"):
        read_untrusted(path, Limits(1024))
    content = read_untrusted(path, Limits(1024, truncate=True))
    assert len(content.data) == 1024 and content.truncated


def test_lines_are_bounded_in_length_and_number(tmp_path):
    path = tmp_path / "lines"
    path.write_bytes(b"a\n" + b"x" * 100_000 + b"\nb\nc\nd\n")
    fd = open_untrusted(path)
    try:
        assert list(fd_lines(fd, Limits(1 << 20, max_line=10, max_lines=3))) == [b"a", b"b", b"c"]
    finally:
        os.close(fd)


def test_a_sparse_perf_map_is_read_within_its_bound(tmp_path, monkeypatch):
    """A 400 MB line of zeros costs one chunk of memory, and yields no symbols."""
    fd_path = tmp_path / "map"
    with open(fd_path, "wb") as f:
        f.write(b"1000 10 first\n")
        f.truncate(400 << 20)
    fd = open_untrusted(fd_path)
    try:
        lines = list(fd_lines(fd, PERF_MAP_LIMITS))
        assert lines == [b"1000 10 first"]
        assert os.lseek(fd, 0, os.SEEK_CUR) <= PERF_MAP_LIMITS.max_bytes
    finally:
        os.close(fd)


@needs_root
def test_a_perf_map_symlinked_to_a_root_file_names_nothing(canary):
    """The traced program (nobody) links /tmp/perf-PID.map to a root-only file."""
    sleeper = subprocess.Popen([*AS_NOBODY, "sleep", "30"])
    perf_map = Path(f"/tmp/perf-{sleeper.pid}.map")
    try:
        wait_for_euid(sleeper.pid, NOBODY)
        perf_map.symlink_to(canary)
        os.lchown(perf_map, NOBODY, NOBODY)
        assert read_perf_map(sleeper.pid) == []
        perf_map.unlink()
        perf_map.write_text("1000 100 jitted\n")  # root's, not the process's
        assert read_perf_map(sleeper.pid) == []
        os.chown(perf_map, NOBODY, NOBODY)  # the process's own: read as perf reads it
        assert read_perf_map(sleeper.pid) == [(0x1000, 0x100, "jitted")]
        perf_map.chmod(0o666)
        assert read_perf_map(sleeper.pid) == []  # anyone could have written it
    finally:
        sleeper.kill()
        sleeper.wait()
        perf_map.unlink(missing_ok=True)


def wait_for_euid(pid: int, uid: int, timeout: float = 10) -> None:
    """Until setpriv has switched to uid (Popen returns before it has)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = Path(f"/proc/{pid}/status").read_text()
        uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()
        if int(uids[2]) == uid:
            return
        time.sleep(0.01)
    pytest.fail(f"process {pid} never ran as uid {uid}")


def test_a_long_command_line_is_read_cut():
    code = "import time; time.sleep(30)"
    long_args = ["y" * (8 << 10)] * 32  # 256 KB
    proc = subprocess.Popen([sys.executable, "-c", code, *long_args])
    try:
        deadline = time.monotonic() + 10
        while not (args := read_cmdline(proc.pid)) and time.monotonic() < deadline:
            time.sleep(0.01)  # the exec is under way
        assert args is not None and args[:2] == (sys.executable, "-c")
        assert args[-1].endswith(CUT) and sum(len(a) + 1 for a in args) <= CMDLINE_MAX + 2
    finally:
        proc.kill()
        proc.wait()


# -- journals the reader cannot write -------------------------------------------------------

@pytest.fixture
def snapshots():
    return load_snapshots(FIXTURE)


@pytest.fixture
def shared(tmp_path) -> Iterator[Path]:
    """A directory nobody can reach (pytest's own are root's, 0700)."""
    path = Path(tempfile.mkdtemp(prefix="sikte-test-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    for directory in (path, *(p for p in path.rglob("*") if p.is_dir())):
        directory.chmod(0o755)
    shutil.rmtree(path)


def _journal(where: Path, snapshots, close: bool = True) -> tuple[Path, Journal]:
    path = where / "s.sikte.db"
    journal = Journal(path, {"targets": ["x"]})
    for s in snapshots:
        journal.put(s)
    if close:
        journal.close()
    else:
        assert journal.sync()
    return path, journal


def _events_as_nobody(path: Path) -> subprocess.CompletedProcess:
    code = ("import sys; from pathlib import Path; "
            "from tracing.session.stored import open_session; "
            "print(len(open_session(Path(sys.argv[1])).events))")
    return subprocess.run([*AS_NOBODY, sys.executable, "-c", code, str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def _hand_to_root_read_only(directory: Path) -> None:
    """Every file root's, 0444, in a 0555 directory: nobody can write any of it."""
    for p in directory.iterdir():
        p.chmod(0o444)
    directory.chmod(0o555)


@needs_root
@pytest.mark.parametrize("with_shm", [True, False])
def test_a_read_only_wal_journal_opens_with_its_log(shared, snapshots, with_shm):
    """A killed trace's journal (its newest data still in the -wal file), someone else's and
    read-only to the reader: everything, the log included, is read."""
    tmp_path = shared
    live = tmp_path / "live"
    live.mkdir()
    path, journal = _journal(live, snapshots, close=False)
    expected = len(open_session(path).events)
    copy = tmp_path / "copy"
    copy.mkdir()
    for suffix in ("", "-wal") + (("-shm",) if with_shm else ()):
        shutil.copyfile(f"{path}{suffix}", copy / f"s.sikte.db{suffix}")
    journal.close()
    assert (copy / "s.sikte.db-wal").stat().st_size > 0
    _hand_to_root_read_only(copy)
    before = sorted(os.listdir(copy))
    run = _events_as_nobody(copy / "s.sikte.db")
    assert run.returncode == 0, run.stderr
    assert int(run.stdout) == expected > 0
    assert sorted(os.listdir(copy)) == before


@needs_root
def test_someone_elses_journal_is_read_without_leaving_files(shared, snapshots):
    tmp_path = shared
    path, _ = _journal(tmp_path, snapshots)
    expected = len(open_session(path).events)
    path.chmod(0o444)
    run = _events_as_nobody(path)
    assert run.returncode == 0, run.stderr
    assert int(run.stdout) == expected
    # Root reading nobody's journal opens it read-only too, and leaves no -shm or -wal.
    os.chown(path, NOBODY, NOBODY)
    path.chmod(0o644)
    assert len(open_session(path).events) == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.sikte.db"]
    with sqlite3.connect(path) as db:  # and did not change it
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
