"""Issue 18 on the real kernel: `record --timing off --trace` of a launched command making a
few failing openat calls writes `<->` where `--timing exact` writes strace's -T time, and
events.parquet holds null durations for them (numbers when exact): the kernel marks each
untimed event (EVF_UNTIMED) and every output shows it as not measured, never as 0."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tracing.model.captures import EVF_SELECTED, EVF_UNTIMED

pytestmark = pytest.mark.ebpf

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
N_MISSING = 5
TIMED = re.compile(r" <\d+\.\d{6}>$")
ENOENT = "= -1 ENOENT (No such file or directory)"


@pytest.fixture(scope="module")
def record_workload(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("untimed-workload") / "record_workload"
    subprocess.run(["gcc", "-O2", "-o", str(out), str(HERE / "record_workload.c")], check=True)
    return str(out)


def recorded(tmp_path: Path, workload: str, timing: str) -> tuple[list[str], list[dict]]:
    """record --timing TIMING --trace of `record_workload enoent N DIR`: our opens' trace
    lines and their events.parquet rows (path, duration_ns, flags), in order."""
    work = tmp_path / f"w-{timing}"
    work.mkdir()
    out, trace = tmp_path / f"pq-{timing}", tmp_path / f"trace-{timing}.txt"
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "record", "--timing", timing, "--events", "failed",
         "--output", str(out), "--trace", str(trace),
         "--db-path", str(tmp_path / f"j-{timing}.sikte.db"), "--sample-hz", "0",
         "--", workload, "enoent", str(N_MISSING), str(work)],
        capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    prefix = f'openat(AT_FDCWD, "{work}/sikte-missing-'
    lines = [ln for ln in trace.read_text().splitlines() if ln.startswith(prefix)]
    rows = [r for r in pq.read_table(out / "events.parquet").select(
        ["path", "duration_ns", "flags"]).to_pylist()
        if r["path"].startswith(f"{work}/sikte-missing-")]
    return lines, rows


def test_timing_off_writes_a_dash_where_exact_writes_a_time(tmp_path: Path, record_workload):
    off_lines, off_rows = recorded(tmp_path, record_workload, "off")
    exact_lines, exact_rows = recorded(tmp_path, record_workload, "exact")
    assert len(off_lines) == len(exact_lines) == N_MISSING
    for i, (off, exact) in enumerate(zip(off_lines, exact_lines, strict=True)):
        assert off.endswith(f'sikte-missing-{i}", O_RDONLY) {ENOENT} <->'), off
        assert TIMED.search(exact), exact
        # The same line apart from the time: only the -T part differs.
        assert TIMED.sub("", exact).replace("w-exact", "w-off") == off[:-len(" <->")]
    assert [(r["duration_ns"], r["flags"]) for r in off_rows] == [
        (None, EVF_SELECTED | EVF_UNTIMED)] * N_MISSING
    assert [r["flags"] for r in exact_rows] == [EVF_SELECTED] * N_MISSING
    assert all(isinstance(r["duration_ns"], int) and r["duration_ns"] > 0
               for r in exact_rows), exact_rows
