"""Targets without the kernel: a PID bound to the process checked, who a launched command
runs as, and the small command-line checks of issue 12 (item 10)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.record_cmd import parse_duration_s
from tracing.boundary.userfiles import Owner
from tracing.errors import UserError
from tracing.system import targets
from tracing.system.targets import BoundPid, run_as

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sleeper():
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def test_a_bound_pid_that_stays_verifies(sleeper):
    bound = BoundPid(sleeper.pid)
    bound.verify()
    bound.close()


def test_a_bound_pid_that_exits_is_caught(sleeper):
    bound = BoundPid(sleeper.pid)
    sleeper.kill()
    sleeper.wait()  # reaped: the number is free for another process
    with pytest.raises(UserError) as err:
        bound.verify()
    assert str(err.value) == (f"PID {sleeper.pid} exited before tracing started; pick a "
                              "running process (ps -e lists them)")
    assert err.value.exit_code == 2


def test_a_zombie_is_caught(sleeper):
    bound = BoundPid(sleeper.pid)
    sleeper.kill()
    deadline_ok = _wait_for_state(sleeper.pid, "Z")
    assert deadline_ok
    with pytest.raises(UserError, match="exited before tracing started"):
        bound.verify()


def test_a_reused_number_is_caught(sleeper, monkeypatch):
    bound = BoundPid(sleeper.pid)
    # Another process with the same number has another start time.
    real = targets._start_time
    monkeypatch.setattr(targets, "_start_time", lambda pid: (real(pid) or 0) + 1)
    with pytest.raises(UserError, match=f"PID {sleeper.pid} exited before tracing started"):
        bound.verify()


def _wait_for_state(pid: int, state: str) -> bool:
    import time

    end = time.monotonic() + 10
    while time.monotonic() < end:
        fields = targets._stat_fields(pid)
        if fields is not None and fields[0] == state:
            return True
        time.sleep(0.01)
    return False


def test_the_default_user_is_the_invoking_user(monkeypatch):
    monkeypatch.setattr(targets, "invoking_user",
                        lambda: Owner(65534, 65534, Path("/nonexistent")))
    user = run_as(None)
    assert (user.uid, user.gid, user.name) == (65534, 65534, "nobody")


def test_malformed_sudo_ids_are_one_line(monkeypatch):
    if os.getuid() != 0:
        pytest.skip("SUDO_* are read only by root")
    monkeypatch.setenv("SUDO_UID", "1000")
    monkeypatch.setenv("SUDO_GID", "abc")
    with pytest.raises(UserError):
        run_as(None)


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "-1", "0", "soon"])
def test_duration_must_be_finite_and_positive(text):
    with pytest.raises(UserError) as err:
        parse_duration_s(text)
    assert err.value.exit_code == 2
    assert str(err.value).startswith("--duration takes a positive number of seconds")


def test_duration_accepts_seconds():
    assert parse_duration_s("0.5") == 0.5
    assert parse_duration_s(None) is None


def sikte(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=60, **kwargs)


def test_duration_nan_on_the_command_line_is_one_line():
    result = sikte("record", "--duration", "nan", "--", "true")
    assert result.returncode == 2
    assert result.stderr == ("sikte-tui: --duration takes a positive number of seconds, "
                             "like 5 or 0.5 (not 'nan')\n")


def test_the_explorer_without_a_terminal_is_one_line():
    result = sikte("--", "true", stdin=subprocess.DEVNULL)
    assert result.returncode == 2
    assert result.stderr == ("sikte-tui: the interactive explorer needs a terminal; use "
                             "sikte-tui record to trace without one\n")


# -- the launched command's environment -----------------------------------------------------

ROOT_ENV = {"PATH": "/usr/sbin:/usr/bin", "TERM": "xterm-256color", "LANG": "C.UTF-8",
            "LC_TIME": "en_GB.UTF-8", "HOME": "/root", "USER": "root",
            "AWS_SECRET_ACCESS_KEY": "canary", "LD_LIBRARY_PATH": "/opt/root-only"}
BOB = targets.RunAs(1000, 1000, "bob", "/home/bob")


def test_another_user_gets_only_the_terminal_locale_and_path_not_roots_secrets():
    env = targets.launch_environment(BOB, ROOT_ENV, uid=0)
    assert env == {"PATH": "/usr/sbin:/usr/bin", "TERM": "xterm-256color", "LANG": "C.UTF-8",
                   "LC_TIME": "en_GB.UTF-8", "HOME": "/home/bob", "USER": "bob",
                   "LOGNAME": "bob"}


def test_the_sudo_caller_keeps_the_environment_sudo_passed_with_their_home():
    env = targets.launch_environment(BOB, {**ROOT_ENV, "SUDO_UID": "1000"}, uid=0)
    assert env["AWS_SECRET_ACCESS_KEY"] == "canary"  # theirs: sudo brought it from them
    assert (env["HOME"], env["USER"], env["LOGNAME"]) == ("/home/bob", "bob", "bob")


def test_running_as_ourselves_changes_nothing():
    root = targets.RunAs(0, 0, "root", "/root")
    assert targets.launch_environment(root, ROOT_ENV, uid=0) == ROOT_ENV
