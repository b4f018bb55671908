"""`sikte-tui record --interval S` on the real kernel: each interval is printed while the
trace runs, each phase's calls fall in its intervals, and the intervals add up exactly to
the final summary."""

from __future__ import annotations

import errno
import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.ebpf.fidelity import ROOT, compile_c
from tests.helpers import wait_until

pytestmark = pytest.mark.ebpf

HERE = Path(__file__).resolve().parent
PHASE1_GETPPID, PHASE2_ENOENT = 1000, 300
EVERY_S = 1.0  # as the issue shows it: record --interval 1 --json

Doc = dict[str, Any]


@pytest.fixture(scope="module")
def phased(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("phased")
    folder.chmod(0o755)
    return compile_c(HERE / "phased.c", folder / "phased", "-static")


class Lines:
    """A process's stdout lines as they come (read by a thread: waiting on them keeps a
    deadline)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self.ended = False
        assert proc.stdout is not None
        threading.Thread(target=self._read, args=(proc.stdout,), daemon=True).start()

    def _read(self, out: Any) -> None:
        for line in out:
            self._queue.put(line)
        self._queue.put(None)

    def take(self) -> list[str]:
        """What has come so far."""
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                return self.lines
            if line is None:
                self.ended = True
            else:
                self.lines.append(line)


def calls_of(docs: list[Doc], syscall: str, field: str = "count") -> int:
    return sum(r[field] for d in docs for r in d["syscalls"] if r["syscall"] == syscall)


def open_for_writing(fifo: Path) -> Callable[[], int | None]:
    """A condition: the FIFO opened for writing once its reader is in open() (ENXIO until
    then), never blocking."""
    def attempt() -> int | None:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as err:
            if err.errno != errno.ENXIO:
                raise
            return None
    return attempt


def test_each_phase_falls_in_its_intervals_and_they_sum_to_the_summary(phased: str,
                                                                      tmp_path: Path) -> None:
    fifo, err_file = tmp_path / "go", tmp_path / "stderr"
    os.mkfifo(fifo)
    errors = err_file.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "record", "--json", "--no-journal",
         "--events", "none", "--sample-hz", "0", "--interval", str(EVERY_S), "--",
         phased, str(fifo), str(PHASE1_GETPPID), str(PHASE2_ENOENT)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=errors, text=True)
    try:
        out = Lines(proc)
        # Phase 2 starts only once an interval line shown has all of phase 1's calls.
        wait_until(lambda: calls_of([json.loads(x) for x in out.take()], "getppid")
                   == PHASE1_GETPPID or out.ended,
                   "an interval line with all of phase 1's getppid calls", timeout=90,
                   seen=lambda: out.lines[-3:])
        assert not out.ended, err_file.read_text()
        before_go = len(out.lines)
        fd = wait_until(open_for_writing(fifo), "the workload to open its FIFO", timeout=30)
        assert isinstance(fd, int)
        os.write(fd, b"g")
        os.close(fd)
        wait_until(lambda: out.take() is not None and out.ended, "the end of the output",
                   timeout=90)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        errors.close()
    assert proc.returncode == 0, err_file.read_text()
    lines = out.lines
    assert all(line.endswith("\n") for line in lines)
    *intervals, summary = [json.loads(line) for line in lines]
    phase1, phase2 = intervals[:before_go], intervals[before_go:]

    # Numbered from 1, back to back, each [(N-1)*S, N*S); the last ends with the trace.
    assert [d["interval"] for d in intervals] == list(range(1, len(intervals) + 1))
    for d in intervals[:-1]:
        assert d["start_s"] == pytest.approx((d["interval"] - 1) * EVERY_S, abs=1e-6)
        assert d["end_s"] == pytest.approx(d["interval"] * EVERY_S, abs=1e-6)
    assert intervals[-1]["end_s"] == pytest.approx(summary["target"]["duration_s"], abs=1e-6)
    assert set(intervals[0]) == {"interval", "start_s", "end_s", "syscalls", "processes",
                                 "snapshots"}
    assert set(intervals[0]["syscalls"][0]) == set(summary["syscalls"][0])

    # Each phase in its intervals: every getppid before the go-ahead, every failure after.
    assert calls_of(phase1, "getppid") == PHASE1_GETPPID
    assert calls_of(phase2, "getppid") == 0
    assert calls_of(phase1, "openat", "errors") == 0
    assert calls_of(phase2, "openat", "errors") == PHASE2_ENOENT
    pid = summary["target"]["command_pid"]
    assert all(p["pid"] == pid and p["comm"] == "phased" for d in intervals
               for p in d["processes"])
    assert sum(p["count"] for d in intervals for p in d["processes"]) == \
        sum(r["count"] for r in summary["syscalls"])

    # The intervals add up exactly to the final summary, per syscall.
    summed: dict[tuple[str, str], list[int]] = {}
    for d in intervals:
        for r in d["syscalls"]:
            s = summed.setdefault((r["syscall"], r["abi"]), [0, 0, 0])
            s[0] += r["count"]
            s[1] += r["errors"]
            s[2] += r["total_ns"]
    assert summed == {(r["syscall"], r["abi"]): [r["count"], r["errors"], r["total_ns"]]
                      for r in summary["syscalls"]}
    assert calls_of([summary], "getppid") == PHASE1_GETPPID
    assert calls_of([summary], "openat", "errors") == PHASE2_ENOENT


def test_text_intervals_then_the_total(workload: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "record", "--no-journal", "--interval", "0.25",
         "--", workload, "getppid", "1234"],
        cwd=ROOT, capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr
    blocks = result.stdout.split("\n\n")
    headings = [b.splitlines()[0] for b in blocks if b.startswith("interval ")]
    assert headings[0].startswith("interval 1: 0.000 s to 0.250 s")
    total = next(b for b in blocks if b.startswith("total: 0.000 s to "))

    def getppid_calls(block: str) -> int:
        return sum(int(line.split()[1]) for line in block.splitlines()
                   if line.split() and line.split()[-1] == "getppid")

    assert sum(getppid_calls(b) for b in blocks if b.startswith("interval ")) == 1234
    assert getppid_calls(total) == 1234
