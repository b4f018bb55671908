"""`sikte-tui diff` on real recordings (root, the real kernel): two `record` runs of a workload
that differ by known numbers of calls and failures diff by exactly those numbers, in --json,
in the plain table and in the TUI (Pilot), whether B is read from its journal or its Parquet
export; and two stretches of one recording, split where the trace had counted the first
phase, diff by exactly each phase's calls, in --json and in the TUI."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import wait_until
from tracing.model.diff import Diff
from tracing.session.diff import diff_sessions
from tracing.session.stored import open_session

pytestmark = pytest.mark.ebpf

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
GETPPID, OPENAT = 110, 257  # x86_64 numbers, for reading the journal while it is written


def sikte(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, env=root_env())


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("sikte-tui: ")
    return lines[0]


def root_env() -> dict[str, str]:
    """As root, not for a sudo caller: the launched workload makes its marker directories
    where the test can look."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SUDO_")}


@pytest.fixture(scope="module")
def diff_workload(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    out = tmp_path_factory.mktemp("diff_workload") / "diffload"
    subprocess.run(["gcc", "-O2", "-static", "-o", str(out), str(HERE / "diff_workload.c")],
                   check=True)
    yield str(out)


def record(session: Path, *command: str, parquet: Path | None = None) -> None:
    extra = ["--output", str(parquet)] if parquet is not None else []
    run = sikte("record", "--json", "--db-path", str(session), *extra, "--", *command)
    assert run.returncode == 0, run.stderr


def diff_json(*args: str) -> dict[str, Any]:
    run = sikte("diff", "--json", *args)
    assert run.returncode == 0, run.stderr
    doc: dict[str, Any] = json.loads(run.stdout)
    return doc


def by_syscall(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["syscall"]: row for row in doc["syscalls"]}


@pytest.fixture(scope="module")
def two_runs(diff_workload: str, tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[Path, Path, Path]:
    """Run A: 1000 getppid and 10 failed opens; run B: 1500 and 25, also exported."""
    where = tmp_path_factory.mktemp("runs")
    a, b, b_parquet = where / "a.sikte.db", where / "b.sikte.db", where / "b-pq"
    record(a, diff_workload, "run", "1000", "10")
    record(b, diff_workload, "run", "1500", "25", parquet=b_parquet)
    return a, b, b_parquet


def test_two_runs_differ_by_exactly_their_calls_and_failures(
        two_runs: tuple[Path, Path, Path]) -> None:
    a, b, b_parquet = two_runs
    for other in (b, b_parquet):  # a journal with a journal, and with a Parquet export
        doc = diff_json(str(a), str(other))
        assert doc["by_name"] is False and doc["notes"] == []
        rows = by_syscall(doc)
        assert (rows["getppid"]["count_a"], rows["getppid"]["count_b"]) == (1000, 1500)
        assert (rows["getppid"]["errors_a"], rows["getppid"]["errors_b"]) == (0, 0)
        openat = rows["openat"]
        assert (openat["count_a"], openat["count_b"], openat["errors_a"], openat["errors_b"]) \
            == (10, 25, 10, 25)
        # Everything else the static workload (and its launch) does is the same in both.
        same = {name: (r["count_a"], r["count_b"], r["errors_a"], r["errors_b"])
                for name, r in rows.items() if name not in ("getppid", "openat")}
        assert same and all(ca == cb and ea == eb for ca, cb, ea, eb in same.values()), same
        duration_a, duration_b = doc["a"]["duration_s"], doc["b"]["duration_s"]
        assert rows["getppid"]["calls_per_s_a"] == pytest.approx(1000 / duration_a, rel=1e-6)
        assert rows["getppid"]["calls_per_s_b"] == pytest.approx(1500 / duration_b, rel=1e-6)
        (process,) = [p for p in doc["processes"] if p["comm"] == "diffload"]
        assert process["count_b"] - process["count_a"] == 515
        assert process["errors_b"] - process["errors_a"] == 15
    text = sikte("diff", "--text", str(a), str(b))
    assert text.returncode == 0, text.stderr
    getppid = next(ln for ln in text.stdout.splitlines() if ln.endswith(" getppid")).split()
    assert getppid[:3] == ["1000", "1500", "+500"]
    # The same session twice, as a journal and as its export: one line, exit 2.
    same_session = sikte("diff", str(b), str(b_parquet))
    assert same_session.returncode == 2
    assert "the same session" in one_line_error(same_session)


def screen_lines(app: Any) -> list[list[str]]:
    """The words of each line the terminal would get for the app's screen (as
    tests/tui/test_hostile_text.screen_text reads it)."""
    update = app.screen._compositor.render_update(full=True,
                                                  screen_stack=app._background_screens)
    lines = []
    for line in update.strips:
        strips = [line] if hasattr(line, "_segments") else line
        lines.append("".join(seg.text for strip in strips for seg in strip
                             if not seg.control).split())
    return lines


async def shows(diff: Diff, **expected: list[str]) -> None:
    """The diff TUI at 160x48 shows each syscall's calls A, B and their change as expected,
    and its failures' change as its calls' (these workloads' calls all fail or none do)."""
    from tui.diff_app import DiffApp

    app = DiffApp(diff)
    async with app.run_test(size=(160, 48)) as pilot:
        def row(name: str) -> list[str]:
            return next((words for words in screen_lines(app) if words[:1] == [name]), [])

        deadline = time.monotonic() + 30
        while not all(row(name) for name in expected):
            assert time.monotonic() < deadline, screen_lines(app)
            await pilot.pause(0.05)
        for name, calls in expected.items():
            assert row(name)[1:4] == calls, row(name)
        openat = row("openat")
        assert openat.count(expected["openat"][2]) == 2, openat  # calls, and failures


async def test_the_tui_shows_those_differences(two_runs: tuple[Path, Path, Path]) -> None:
    a, _, b_parquet = two_runs
    await shows(diff_sessions(open_session(a), open_session(b_parquet), None, None),
                getppid=["1,000", "1,500", "+500"], openat=["10", "25", "+15"])


def timeline_sums(journal: Path) -> tuple[int, int, int, int]:
    """getppid calls, openat failures, and the newest snapshot's time, in the journal as far
    as it is written (it is at most a second behind the trace)."""
    if not journal.exists():
        return 0, 0, 0, 0
    db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    try:
        calls, failures, newest = db.execute(
            "SELECT coalesce(sum(CASE WHEN nr = ? THEN count END), 0), "
            "coalesce(sum(CASE WHEN nr = ? THEN errors END), 0), coalesce(max(ts_ns), 0) "
            "FROM timeline", (GETPPID, OPENAT)).fetchone()
    except sqlite3.OperationalError:  # the tables are not there yet
        return 0, 0, 0, 0
    finally:
        db.close()
    return int(calls), int(failures), int(newest), 1


@pytest.fixture(scope="module")
def phased_run(diff_workload: str, tmp_path_factory: pytest.TempPathFactory
               ) -> tuple[Path, str]:
    """One recording of 300 getppid and 4 failed opens, then 700 and 9: the journal, and
    the offset (seconds, as --window-a takes it) that splits the two phases."""
    if os.uname().machine != "x86_64":
        pytest.skip("reads x86_64 syscall numbers from the journal")
    where = tmp_path_factory.mktemp("phased")
    journal, marks = where / "phased.sikte.db", where / "marks"
    marks.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "record", "--json", "--db-path", str(journal), "--",
         diff_workload, "phased", "300", "4", "700", "9", str(marks)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=root_env())
    try:
        wait_until(lambda: (marks / "phase1").is_dir() or proc.poll() is not None,
                   "the workload's first phase", timeout=60)
        # Phase 2 starts only once the journal holds a snapshot with all of phase 1: every
        # snapshot up to then (`split`) has phase 1's calls only, every later one phase 2's.
        state = wait_until(lambda: (s := timeline_sums(journal))[:2] == (300, 4) and s,
                           "phase 1 in the journal", timeout=60,
                           seen=lambda: timeline_sums(journal))
        assert isinstance(state, tuple)
        split_ns = state[2]
        (marks / "go").mkdir()
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    start_ns = open_session(journal).start_ts_ns
    return journal, f"{(split_ns - start_ns) / 1e9 + 1e-6:.9f}"  # just past that snapshot


def test_two_stretches_of_one_run(phased_run: tuple[Path, str]) -> None:
    journal, split = phased_run
    doc = diff_json(str(journal), "--window-a", f"..{split}", "--window-b", f"{split}..")
    rows = by_syscall(doc)
    assert (rows["getppid"]["count_a"], rows["getppid"]["count_b"]) == (300, 700)
    openat = rows["openat"]
    assert (openat["count_a"], openat["count_b"], openat["errors_a"], openat["errors_b"]) \
        == (4, 9, 4, 9)
    assert doc["a"]["end_s"] == doc["b"]["start_s"] == pytest.approx(float(split), abs=1e-9)
    assert doc["files"] == [] and any("whole sessions only" in n for n in doc["notes"])
    # A window past the end of the session: one line, exit 2.
    past = sikte("diff", str(journal), "--window-a", "..1", "--window-b", "0..99999")
    assert past.returncode == 2 and "lasts" in one_line_error(past)


async def test_the_tui_shows_the_two_stretches(phased_run: tuple[Path, str]) -> None:
    journal, split = phased_run
    session = open_session(journal)
    at = float(split)
    await shows(diff_sessions(session, None, (0.0, at), (at, None)),
                getppid=["300", "700", "+400"], openat=["4", "9", "+5"])
