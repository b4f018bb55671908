"""Attacks on the tracer by the process it traces (red team, issue 16).

A rename storm: a target renaming itself in a loop makes a task_rename event per call.
libbpf's consume returns only once the ring is empty, so a per-record callback about as slow
as the renames (a Python loop of prctl: the ring neither fills nor empties) held the engine
thread for ever: the counts froze, memory grew without bound and `record --duration` never
ended. It must end, with the process events it could not take counted as dropped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.ebpf

ROOT = Path(__file__).resolve().parents[2]
STORM = ("import ctypes\n"
         "prctl = ctypes.CDLL(None).prctl\n"
         "names = [b'\\x1b]0;T\\x07', b'\\xff\\xfe\\x80', b'[b]x[/b]', b'\\xe2\\x80\\xae']\n"
         "print('storming', flush=True)\n"
         "while True:\n"
         "    for name in names:\n"
         "        prctl(15, name, 0, 0, 0)\n")


@pytest.fixture
def storm():
    proc = subprocess.Popen(["/usr/bin/python3", "-c", STORM], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"storming\n"
    yield proc
    proc.kill()
    proc.wait()


def test_a_rename_storm_does_not_hold_the_engine_thread(storm, tmp_path):
    # Ends by itself after 2 s; before the fix it never did (the timeout is the failure).
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "record", "--json", "--no-journal",
         "--duration", "2", "--pid", str(storm.pid)],
        capture_output=True, timeout=90, cwd=ROOT, env={**os.environ, "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    prctl = [r for r in report["syscalls"] if r["syscall"] == "prctl"]
    assert prctl and prctl[0]["count"] > 0
    for stream in (result.stdout, result.stderr):
        assert b"\x1b" not in stream and b"\x07" not in stream
