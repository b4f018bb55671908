"""End to end in a real terminal, on the real kernel: a workload in two phases (getppid, then
getsid once the test creates a file), traced live in tmux. With the 5 s window only the
second phase's syscall is in the table; "since start" shows both again."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.test_terminal import SIKTE, Tmux, row

pytestmark = [pytest.mark.ebpf, pytest.mark.e2e]

# The phases are switched by files the test creates (the sleeps only pace the calls).
PHASED = """\
import os, sys, time
d = sys.argv[1]
while not os.path.exists(os.path.join(d, "go")):
    os.getppid()
    time.sleep(0.005)
while not os.path.exists(os.path.join(d, "stop")):
    os.getsid(0)
    time.sleep(0.005)
"""


@pytest.fixture
def terminal() -> Iterator[Callable[[str, int, int], Tmux]]:
    if shutil.which("tmux") is None:
        pytest.fail("tmux is missing: make test installs it")
    sessions: list[Tmux] = []

    def start(command: str, width: int, height: int) -> Tmux:
        sessions.append(Tmux(command, width, height))
        return sessions[-1]

    yield start
    for session in sessions:
        session.close()


def calls(screen: str, name: str) -> int:
    """The calls column of a syscall's row (0: no row)."""
    cells = row(screen, name)
    return int(cells[1].replace(",", "")) if len(cells) > 1 else 0


def header(screen: str) -> str:
    return screen.splitlines()[0]


@pytest.mark.parametrize("size", [(160, 48), (80, 24)], ids=["160x48", "80x24"])
def test_the_5_s_window_shows_only_the_current_phase(tmp_path: Path, terminal, size) -> None:
    script = tmp_path / "phased.py"
    script.write_text(PHASED)
    term = terminal(f"{SIKTE} -- /usr/bin/python3 {script} {tmp_path}", *size)
    term.wait_for(lambda s: calls(s, "getppid") > 0)
    (tmp_path / "go").touch()  # phase 2
    screen = term.wait_for(lambda s: calls(s, "getsid") > 0)
    before = calls(screen, "getppid")
    assert before > 0 and "window:" not in header(screen)

    term.keys("w")
    term.wait_for(lambda s: "last 5 s" in s and "since start" in s)  # the chooser
    term.keys("1")
    # Phase 1 ended when "go" was made: within about 5 s its calls leave the window, as do
    # the interpreter's start (execve, mmap...).
    screen = term.wait_for(lambda s: "window: last 5 s" in header(s) and calls(s, "getsid") > 0
                           and not row(s, "getppid") and not row(s, "execve"))
    names = {line.split()[0] for line in screen.splitlines()[3:] if line.split()}
    assert "getppid" not in names and "execve" not in names and "getsid" in names

    term.keys("w")
    term.wait_for(lambda s: "since start" in s and "◂ now" in s)
    term.keys("0")
    screen = term.wait_for(lambda s: "window:" not in header(s) and calls(s, "getppid") > 0
                           and calls(s, "execve") == 1)
    # Since the start: every call of phase 1 is back (it made no more).
    assert calls(screen, "getppid") == before and calls(screen, "getsid") > 0

    (tmp_path / "stop").touch()
    term.wait_for(lambda s: "target exited (0)" in s)
