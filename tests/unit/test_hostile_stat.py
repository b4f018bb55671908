"""A process chooses its own name (comm), any bytes: /proc/PID/stat then holds bytes that are
not UTF-8, spaces and parentheses. Binding --pid to it must still work (red team, issue 16:
a thread named b"\\xff\\xfe\\x80bad" made `sikte-tui --pid` end with an internal error)."""

from __future__ import annotations

import subprocess

import pytest

from tracing.system.targets import BoundPid, check_pid

# The process names itself, says so, and waits.
_NAMED = r"""
import ctypes, sys
ctypes.CDLL(None).prctl(15, ctypes.c_char_p(bytes.fromhex(sys.argv[1])), 0, 0, 0)
print("named", flush=True)
sys.stdin.read()
"""


@pytest.fixture(params=["fffe80626164", "29202829205a20", "1b5b324a9b"])
def named(request):
    proc = subprocess.Popen(["/usr/bin/python3", "-c", _NAMED, request.param],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"named\n"
    with open(f"/proc/{proc.pid}/comm", "rb") as f:
        assert f.read() == bytes.fromhex(request.param) + b"\n"
    yield proc
    proc.kill()
    proc.wait()


def test_a_process_with_any_name_is_bound_and_verified(named):
    check_pid(named.pid)
    bound = BoundPid(named.pid)
    try:
        assert bound.start_time is not None and bound.start_time > 0
        bound.verify()
    finally:
        bound.close()
