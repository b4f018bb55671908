"""`sikte-tui demo`: traced by `record`, it fills every view (failures, TCP, children with exit
codes, threads, sleeps); untraced, bad options are one line and signals end it cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO = [sys.executable, "-m", "cli.main", "demo"]


def run(argv: list[str], timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          **kwargs)


def syscall(doc: dict, *names: str) -> dict:
    return next((s for s in doc["syscalls"] if s["syscall"] in names), {"count": 0, "errors": 0})


@pytest.mark.ebpf
def test_traced_demo_fills_every_view():
    result = run([sys.executable, "-m", "cli.main", "record", "--json", "--",
                  *DEMO, "--duration", "3", "--quiet"])
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert syscall(doc, "connect")["errors"] >= 1  # ECONNREFUSED
    assert syscall(doc, "connect")["count"] > syscall(doc, "connect")["errors"]
    assert syscall(doc, "openat")["errors"] >= 1  # ENOENT
    assert syscall(doc, "mkdir")["errors"] >= 1  # EEXIST
    assert syscall(doc, "accept4", "accept")["count"] >= 1
    assert syscall(doc, "clone", "clone3", "fork", "vfork")["count"] >= 1
    assert syscall(doc, "nanosleep", "clock_nanosleep")["count"] >= 1
    assert len({s["syscall"] for s in doc["syscalls"]}) >= 20
    processes = doc["processes"]
    assert len(processes) > 1
    assert any(p["exit_code"] == 3 for p in processes)
    assert doc["target"]["exit_code"] == 0


def test_untraced_demo_prints_each_phase_and_cleans_up(tmp_path):
    result = run([*DEMO, "--duration", "0.2"], env={**os.environ, "TMPDIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    phases = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("[1]")]
    assert phases == ["files:", "failures:", "tcp:", "children:", "threads:", "cpu:"]
    assert "a forked child exited 3" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_quiet_prints_nothing():
    result = run([*DEMO, "--duration", "0.1", "--quiet"])
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


@pytest.mark.parametrize("args", [["--duration", "-1"], ["--duration", "soon"],
                                  ["--duration", "inf"], ["--bogus"], ["extra"]])
def test_bad_options_are_one_line(args):
    result = run([*DEMO, *args])
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("sikte-tui: demo: "), result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_stop_signal_ends_it_cleanly(sig, code, tmp_path):
    proc = subprocess.Popen([*DEMO, "--duration", "0"], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "TMPDIR": str(tmp_path)})
    try:
        assert proc.stdout.readline().startswith("[1] files:")
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == code
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
