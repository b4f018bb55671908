"""End to end in a real terminal: sikte-tui runs in tmux as a person would run it, tracing a
command that makes exactly 20,000 getppid calls."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ebpf, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
SIKTE = Path(sys.executable).with_name("sikte-tui")


class Tmux:
    def __init__(self, command: str, width: int = 120, height: int = 36) -> None:
        self.name = f"sikte-e2e-{uuid.uuid4().hex[:8]}"
        subprocess.run(["tmux", "new-session", "-d", "-s", self.name, "-x", str(width),
                        "-y", str(height), command], check=True, cwd=ROOT)

    def screen(self) -> str:
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name],
                              capture_output=True, text=True, check=True).stdout

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 30) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            screen = self.screen()
            if predicate(screen):
                return screen
            time.sleep(0.1)
        pytest.fail(f"timed out; the screen was:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


def row(screen: str, name: str) -> list[str]:
    return next((line.split() for line in screen.splitlines()
                 if line.split()[:1] == [name]), [])


@pytest.fixture
def tmux_session():
    if shutil.which("tmux") is None:
        pytest.fail("tmux is missing: make test installs it")
    sessions: list[Tmux] = []

    def start(command: str) -> Tmux:
        sessions.append(Tmux(command))
        return sessions[-1]

    yield start
    for session in sessions:
        session.close()


def test_live_view_shows_exact_counts_filters_and_quits_cleanly(workload, tmux_session):
    term = tmux_session(f"{SIKTE} -- {workload} getppid 20000; echo SIKTE-EXIT=$?; sleep 60")
    screen = term.wait_for(lambda s: row(s, "getppid")[1:2] == ["20,000"] and "exited" in s)
    assert "target exited (0)" in screen

    term.keys("/")
    # The filter has the focus once the footer shows only its own keys (as a person sees
    # the cursor move there before typing).
    term.wait_for(lambda s: "errors" not in s.splitlines()[-1])
    term.keys("getppid")
    screen = term.wait_for(lambda s: row(s, "getppid") and not row(s, "execve"))
    names = [line.split()[0] for line in screen.splitlines()[3:] if line.strip()]
    assert "getppid" in names and "execve" not in names and "mmap" not in names

    term.keys("Escape")
    term.wait_for(lambda s: row(s, "execve"))
    term.keys("q")
    screen = term.wait_for(lambda s: "SIKTE-EXIT=" in s)
    assert "SIKTE-EXIT=0" in screen
    # The terminal is restored: the alternate screen is gone, no table is left behind.
    assert "getppid" not in screen and "syscall" not in screen
