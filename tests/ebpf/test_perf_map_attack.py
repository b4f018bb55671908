"""The traced program's perf map is its own to write, so it is read as untrusted input: a
workload (run as nobody by `record --user nobody`) runs code from anonymous memory, as a
JIT does, and its /tmp/perf-PID.map is a symlink to a root-only canary, a 400 MB sparse file,
a file of another user, or (the control) its own honest map."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tracing.model.samples import parse_folded
from tracing.session.stored import open_session
from tracing.session.window import whole, window_samples

pytestmark = pytest.mark.ebpf

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
NOBODY = 65534
CANARY = "canary_5e1f_root_only_secret"
BURN_MS = "600"


@pytest.fixture(scope="module")
def reachable() -> Iterator[Path]:
    """A directory nobody can reach (pytest's are root's and 0700)."""
    path = Path(tempfile.mkdtemp(prefix="sikte-jit-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=True)


@pytest.fixture(scope="module")
def jit_workload(reachable) -> str:
    out = reachable / "jit_workload"
    subprocess.run(["gcc", "-O2", "-o", str(out), str(HERE / "jit_workload.c")], check=True)
    return str(out)


@pytest.fixture
def shared(reachable, tmp_path) -> Path:
    """Where the workload (nobody) writes its ready file; the trace's files go to tmp_path
    (a journal is kept only where other users cannot change it)."""
    path = Path(tempfile.mkdtemp(dir=reachable))
    path.chmod(0o777)
    (path / "out").symlink_to(tmp_path)
    return path


@dataclass
class Run:
    folded: str
    journal_bytes: bytes
    frames: set[str]
    maxrss_kb: int


def _wait_for(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def record(jit_workload: str, shared: Path, plant: str | None = None,
           prepare=lambda pid, addr, size: None) -> Run:
    """`record` the workload as nobody; prepare(pid, address, size) runs once it is ready
    and before it spins. Returns what the trace wrote and the tracer's peak memory."""
    ready, go = shared / "ready", shared / "go"
    out = (shared / "out").resolve()
    db, folded = out / "t.sikte.db", out / "t.folded"
    args = [sys.executable, "-m", "cli.main", "record", "--sample-hz", "499", "--user",
            "nobody", "--db-path", str(db), "--folded", str(folded), "--", jit_workload,
            str(ready), str(go), BURN_MS, *([plant] if plant else [])]
    with open(out / "stderr", "w+") as err:
        proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err,
                                stdin=subprocess.DEVNULL)
        try:
            _wait_for(lambda: ready.exists() and ready.read_text().endswith("\n"),
                      "the workload to start")
            pid, addr, size = ready.read_text().split()
            prepare(int(pid), int(addr, 16), int(size, 16))
            go.touch()
            deadline = time.monotonic() + 120
            while (done := os.wait4(proc.pid, os.WNOHANG))[0] == 0:
                if time.monotonic() > deadline:
                    pytest.fail("record did not end")
                time.sleep(0.05)
        finally:
            if proc.poll() is None and proc.returncode is None:
                proc.kill()
        _, status, usage = done
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        assert proc.returncode == 0, err.read()
    session = open_session(db)
    frames = {f for s in window_samples(session, whole(session)) for f in s.frames}
    raw = b"".join(Path(f"{db}{s}").read_bytes() for s in ("", "-wal")
                   if Path(f"{db}{s}").exists())
    return Run(folded.read_text(), raw, frames, usage.ru_maxrss)


def _perf_map(pid: int) -> Path:
    return Path(f"/tmp/perf-{pid}.map")


def _honest(owner: int):
    def prepare(pid: int, addr: int, size: int) -> None:
        path = _perf_map(pid)
        path.write_text(f"{addr:x} {size:x} jit_spin\n")
        os.chown(path, owner, owner)
    return prepare


def test_the_programs_own_perf_map_names_its_jit_code(jit_workload, shared):
    run = record(jit_workload, shared, prepare=_honest(NOBODY))
    assert "jit_spin" in run.frames
    assert any("jit_spin" in stack for stack in parse_folded(run.folded))


def test_a_perf_map_of_another_user_is_ignored(jit_workload, shared):
    run = record(jit_workload, shared, prepare=_honest(0))  # root's, the process is nobody
    assert "jit_spin" not in run.frames and "jit_spin" not in run.folded
    assert any(f.startswith("[anon]+0x") for f in run.frames)  # sampled, just not named


def test_a_perf_map_symlinked_to_a_root_file_leaks_nothing(jit_workload, shared, tmp_path):
    canary = tmp_path / "secret"  # pytest's directories are root's and 0700

    def prepare(pid: int, addr: int, size: int) -> None:
        # What the root file holds would name the JIT code, if it were read.
        canary.write_text(f"{addr:x} {size:x} {CANARY}\n")
        canary.chmod(0o600)
        assert _perf_map(pid).is_symlink()

    run = record(jit_workload, shared, plant=str(canary), prepare=prepare)
    assert CANARY not in run.folded
    assert CANARY.encode() not in run.journal_bytes
    assert not any(CANARY in f for f in run.frames)
    assert any(f.startswith("[anon]+0x") for f in run.frames)


def test_a_sparse_400_mb_perf_map_does_not_grow_the_tracer(jit_workload, shared):
    baseline = record(jit_workload, shared, prepare=_honest(NOBODY))
    for name in ("ready", "go", "out/t.sikte.db", "out/t.folded"):
        (shared / name).unlink(missing_ok=True)
    sparse = record(jit_workload, shared, plant="sparse")
    # Read whole, the map took the tracer from about 230 MB to 2 GB; bounded, it reads at
    # most 16 MB a chunk at a time.
    assert sparse.maxrss_kb < baseline.maxrss_kb + 64 * 1024, (sparse.maxrss_kb,
                                                               baseline.maxrss_kb)
    assert any(f.startswith("[anon]+0x") for f in sparse.frames)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < 2 << 20
