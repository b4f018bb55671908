"""Fixtures of the TUI tests: the app on the recorded replay fixture (no root), and the
process picker on a fixed process list, with the clock and the timezone pinned.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot

from tracing.model.stats import Snapshot
from tracing.session.replay import load_snapshots
from tracing.sources import ReplaySource
from tracing.system.proclist import ProcessEntry
from tui.app import SikteApp

DATA = Path(__file__).resolve().parent / "data"
SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]
FIXTURE = DATA / "session.jsonl.gz"

# 2023-11-14 22:13:20 UTC: the picker's "now".
NOW = 1_700_000_000.0
VANISHED_PID = 999_999  # in the fake list, but no such process exists

PROCESSES = (
    ProcessEntry(1, "root", "systemd", ("/sbin/init", "splash"), 0.3, 12 << 20, 1,
                 NOW - 12 * 86400),
    ProcessEntry(412, "root", "sshd", ("sshd: /usr/sbin/sshd -D",), 0.0, 9 << 20, 1,
                 NOW - 12 * 86400 + 60),
    ProcessEntry(1234, "alice", "bash", ("-bash",), 0.7, 5 << 20, 1, NOW - 3 * 3600),
    ProcessEntry(2345, "alice", "vim", ("vim", "notes.txt"), 2.5, 30 << 20, 2, NOW - 2 * 3600),
    ProcessEntry(3456, "bob", "nginx", ("nginx: worker process",), 12.0, 64 << 20, 4,
                 NOW - 5 * 86400),
    ProcessEntry(4567, "postgres", "postgres", ("postgres", "-D", "/var/lib/pg/data"), 33.5,
                 2 << 30, 8, NOW - 600),
    ProcessEntry(5678, "bob", "python3", ("python3", "-m", "http.server", "8080"), 7.25,
                 40 << 20, 3, NOW - 120),
    ProcessEntry(VANISHED_PID, "carol", "gone", ("gone", "--soon"), 1.0, 1 << 20, 1, NOW - 30),
)


@pytest.fixture(autouse=True)
def utc() -> Iterator[None]:
    """The picker formats start times in local time: pin it."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


@pytest.fixture(scope="session")
def snapshots() -> list[Snapshot]:
    return load_snapshots(FIXTURE)


@pytest.fixture
def replay_app(snapshots: list[Snapshot]) -> SikteApp:
    """The live view on the whole recording, delivered at once."""
    return SikteApp(source=ReplaySource(snapshots), clock=lambda: NOW)


@pytest.fixture
def make_replay_app(snapshots: list[Snapshot]) -> Callable[..., SikteApp]:
    def make(items: list[Snapshot] | None = None) -> SikteApp:
        return SikteApp(source=ReplaySource(snapshots if items is None else items),
                        clock=lambda: NOW)
    return make


@pytest.fixture
def processes() -> list[ProcessEntry]:
    return list(PROCESSES)


@pytest.fixture
def picker_app(processes: list[ProcessEntry]) -> SikteApp:
    return SikteApp(lister=lambda: list(processes), clock=lambda: NOW)


UNTIL_TIMEOUT_S = 10.0  # generous: a loaded 2-core machine runs the whole suite at once


async def until(pilot: Pilot, condition: Callable[[], object],
                timeout: float = UNTIL_TIMEOUT_S, *,
                seen: Callable[[], object] | None = None) -> object:
    """Wait until condition() holds, for at most `timeout` seconds (monotonic), and return
    what it returned. The screens render at most 4 times a second, so it looks every 50 ms.

    On time out the assertion says what was last seen: `seen()` when given (say, the rows'
    names, where the condition compares them), else the condition's own value, and the
    screen shown."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            last = seen() if seen is not None else value
            raise AssertionError(f"timed out after {timeout:g} s waiting for the UI; last "
                                 f"seen: {last!r} on {type(pilot.app.screen).__name__}")
        await pilot.pause(0.05)
