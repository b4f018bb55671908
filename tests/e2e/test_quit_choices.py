"""Quitting as the dialog promises, in a real terminal: a launched `sh` script with a
background and a foreground child; "stop" ends all three, "leave" leaves all three running
after sikte-tui exits 0 and says which PIDs it left."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from tests.e2e.test_terminal import SIKTE, Tmux
from tests.helpers import wait_until

pytestmark = [pytest.mark.ebpf, pytest.mark.e2e]

SCRIPT = "sleep 1001 & sleep 1002; wait"


def sleepers() -> dict[int, str]:
    """Our script's processes still alive: pid -> command line."""
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            raw = Path(f"/proc/{name}/cmdline").read_bytes()
            cmdline = raw.replace(b"\0", b" ").decode(errors="replace")  # names may be bytes
            state = Path(f"/proc/{name}/stat").read_bytes().rsplit(b")", 1)[1].split()[0].decode()
        except OSError:
            continue
        if state != "Z" and (cmdline.strip() in ("sleep 1001", "sleep 1002")
                             or (SCRIPT in cmdline and cmdline.startswith("sh "))):
            found[int(name)] = cmdline.strip()
    return found


@pytest.fixture
def clean() -> Iterator[None]:
    """None of ours before; whatever is left is killed after (leave keeps them running)."""
    _kill(sleepers())
    yield
    _kill(sleepers())


def _kill(pids: Iterable[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):  # ended since it was listed
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def term(tmp_path: Path) -> Iterator[Callable[[], tuple[Tmux, Path]]]:
    sessions: list[Tmux] = []

    def start() -> tuple[Tmux, Path]:
        out = tmp_path / "exit.txt"
        # The lines printed on exit go to a file too (tee), the status after them.
        command = (f"{SIKTE} --db-path {tmp_path / 's.sikte.db'} -- sh -c '{SCRIPT}' "
                   f"2> >(tee {out} >&2); echo SIKTE-EXIT=$? >> {out}; sleep 60")
        sessions.append(Tmux(f"bash -c \"{command}\"", width=100, height=30))
        return sessions[-1], out

    yield start
    for session in sessions:
        session.close()


def quit_with(term: Tmux, key: str) -> None:
    term.wait_for(lambda s: "tracing" in s and "execve" in s)
    wait_until(lambda: len(sleepers()) == 3, "sh and both sleeps")
    term.keys("q")
    term.wait_for(lambda s: "Stop it and quit" in s)
    term.keys(key)


def exit_text(out: Path) -> str:
    wait_until(lambda: out.exists() and "SIKTE-EXIT=" in out.read_text(), "sikte-tui's exit")
    return out.read_text()


def test_stop_ends_the_whole_tree(clean, term):
    session, out = term()
    quit_with(session, "y")
    text = exit_text(out)
    assert "SIKTE-EXIT=0" in text
    assert "session saved in" in text and "Traceback" not in text
    wait_until(lambda: not sleepers(), "no sleep 1001/1002 or sh left")


def test_leave_keeps_the_whole_tree_running(clean, term):
    session, out = term()
    quit_with(session, "n")
    text = exit_text(out)
    assert "SIKTE-EXIT=0" in text and "Traceback" not in text
    assert "session saved in" in text
    alive = sleepers()
    assert sorted(alive.values()) == ["sh -c " + SCRIPT, "sleep 1001", "sleep 1002"]
    left = next(line for line in text.splitlines() if "left running" in line)
    assert all(str(pid) in left.split() for pid in alive)
    # They keep their terminal: nothing in the launched session got a hangup.
    assert all(Path(f"/proc/{pid}/fd/1").exists() for pid in alive)


def sikte_pids(db: Path) -> list[int]:
    """The sikte-tui processes writing this test's journal."""
    return [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
            if str(db).encode() in _cmdline(pid) and b"sikte-tui" in _cmdline(pid)]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_closing_the_terminal_stops_the_trace_and_keeps_the_session(clean, term, tmp_path):
    """The window closes under a running trace (SIGHUP, and every write to the terminal
    fails): sikte-tui still stops the launched tree, closes its journal and exits, instead of
    hanging on the dead terminal."""
    from tracing.session.stored import open_session

    session, _ = term()
    db = tmp_path / "s.sikte.db"
    session.wait_for(lambda s: "tracing" in s and "execve" in s)
    wait_until(lambda: len(sleepers()) == 3, "sh and both sleeps")
    assert sikte_pids(db)
    session.close()  # tmux kills the pane's processes' terminal
    wait_until(lambda: not sikte_pids(db), "sikte-tui to exit", seen=lambda: sikte_pids(db))
    wait_until(lambda: not sleepers(), "no sleep 1001/1002 or sh left", seen=sleepers)
    meta = open_session(db).meta
    # Closed, with the launched command's end: stopped by SIGTERM.
    assert meta["closed_wall_time"] and (meta["state"], meta["exit_signal"]) == ("exited", 15)
