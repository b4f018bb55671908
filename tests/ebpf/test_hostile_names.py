"""A traced process that renames itself to a terminal escape sequence (prctl PR_SET_NAME):
`sikte-tui record` prints its name as data, escaped, and no control byte reaches the terminal
(issue 12, item 4). The name set is an OSC that retitles the terminal, ended by BEL."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.ebpf

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RENAME = ("import ctypes, os\n"
          "ctypes.CDLL(None, use_errno=True).prctl(15, b'\\x1b]0;PWNED\\x07', 0, 0, 0)\n"
          "assert open('/proc/self/comm', 'rb').read() == b'\\x1b]0;PWNED\\x07\\n'\n"
          "[os.getppid() for _ in range(100)]\n")
SHOWN = "\\x1b]0;PWNED\\x07"


def record(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "record", *args, "--", "/usr/bin/python3", "-c",
         RENAME],
        capture_output=True, timeout=120, cwd=ROOT)


def assert_no_control_bytes(result: subprocess.CompletedProcess) -> None:
    for stream in (result.stdout, result.stderr):
        assert b"\x1b" not in stream and b"\x07" not in stream, stream


def test_per_process_summary_prints_the_name_escaped():
    result = record("--per-process")
    assert result.returncode == 0, result.stderr
    assert_no_control_bytes(result)
    heads = [ln for ln in result.stdout.decode().splitlines() if ln.startswith("pid ")]
    assert len(heads) == 1
    assert re.fullmatch(rf"pid \d+ \({re.escape(SHOWN)}\), exit 0", heads[0]), heads


def test_json_keeps_the_exact_name_escaped():
    result = record("--json")
    assert result.returncode == 0, result.stderr
    assert_no_control_bytes(result)
    (proc,) = json.loads(result.stdout)["processes"]
    assert proc["comm"] == "\x1b]0;PWNED\x07"
