"""Issue 12's symlink attacks on `sikte-tui record`, with the real tracer: another user
(`nobody`) plants links where root will write, and a root-only canary must stay as it was;
under sudo everything written belongs to the invoking user and is private."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.attack_helpers import NOBODY, assert_intact, make_canary, plant_link, shared_dir

pytestmark = pytest.mark.ebpf

ROOT = Path(__file__).resolve().parents[2]


def sikte(*args: str, env: dict[str, str] | None = None, timeout: float = 60,
          ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})})


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    return make_canary(tmp_path)


@pytest.fixture
def shared() -> Iterator[Path]:
    with shared_dir() as path:
        yield path


def error_lines(run: subprocess.CompletedProcess) -> list[str]:
    assert "Traceback" not in run.stderr
    return [ln for ln in run.stderr.splitlines() if "refus" in ln or "exists" in ln
            or "symbolic link" in ln]


def test_record_folded_through_a_planted_link(shared, canary):
    flame = shared / "flame.txt"
    plant_link(flame, canary)
    run = sikte("record", "--no-journal", "--folded", str(flame), "--", "/bin/true")
    assert run.returncode == 2, run.stderr
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith("sikte-tui: --folded ") and "is a symbolic link" in line
    assert_intact(canary)


def test_record_folded_link_planted_while_tracing(shared, canary):
    """The check before tracing passed; the link appears during the trace: the write at the
    end still refuses it."""
    flame, flag, db = shared / "flame.txt", shared / "go", shared / "j.sikte.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "record", "--db-path", str(db), "--folded",
         str(flame), "--", "/bin/sh", "-c", f"while [ ! -e {flag} ]; do sleep 0.02; done"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not db.exists():  # the journal is made after --folded was checked
            assert proc.poll() is None and time.monotonic() < deadline, "record never started"
            time.sleep(0.02)
        plant_link(flame, canary)
        flag.touch()
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 2, err
    assert "Traceback" not in err
    assert any("--folded" in ln and "symbolic link" in ln for ln in err.splitlines()), err
    assert f"session saved in {db}" in err  # what was recorded is kept
    assert_intact(canary)


def test_record_db_path_through_a_dangling_link(shared, canary):
    target = canary.parent / "newfile"
    db = shared / "Y.sikte.db"
    plant_link(db, target)
    run = sikte("record", "--db-path", str(db), "--", "/bin/true")
    assert run.returncode == 2, run.stderr
    (line,) = run.stderr.strip().splitlines()
    assert "Y.sikte.db already exists" in line
    assert not target.exists()
    assert_intact(canary)
    assert sorted(p.name for p in shared.iterdir()) == ["Y.sikte.db"]


def test_record_into_a_linked_sessions_directory(shared, canary):
    (shared / "data" / "sikte-tui").mkdir(parents=True)
    plant_link(shared / "data" / "sikte-tui" / "sessions", canary.parent)
    run = sikte("record", "--", "/bin/true", env={"XDG_DATA_HOME": str(shared / "data")})
    assert run.returncode == 2, run.stderr
    (line,) = run.stderr.strip().splitlines()
    assert "sessions is a symbolic link" in line
    assert_intact(canary)


def test_record_under_sudo_writes_only_the_users_private_files(shared):
    """As `sudo` run by nobody: journal, export and folded stacks are nobody's, files 0600 and
    the directories sikte-tui made 0700, under umask 022."""
    env = {"SUDO_UID": str(NOBODY), "SUDO_GID": str(NOBODY),
           "XDG_DATA_HOME": str(shared / "data")}
    out, flame = shared / "out" / "pq", shared / "flame.txt"
    old = os.umask(0o022)
    try:
        run = sikte("record", "--output", str(out), "--folded", str(flame), "--",
                    "/bin/sh", "-c", "exit 0", env=env)
    finally:
        os.umask(old)
    assert run.returncode == 0, run.stderr
    sessions = shared / "data" / "sikte-tui" / "sessions"
    (journal,) = sessions.iterdir()
    expect = {journal: 0o600, flame: 0o600, out: 0o700, out.parent: 0o700, sessions: 0o700,
              sessions.parent: 0o700, shared / "data": 0o700}
    expect.update({p: 0o600 for p in out.iterdir()})
    assert len(expect) == 16  # files.parquet (issue 15), threads.parquet (issue 16)
    for path, want in expect.items():
        st = path.lstat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (want, NOBODY, NOBODY), path
