"""Process churn (issue 16): a shell starting 20,000 short processes as fast as it can.

Every execve and every exit is counted, nothing is dropped, and the tracer's memory stays
bounded: exited threads leave the kernel map at each tick (tracing/engine/aggregates.py),
the snapshots fold long-gone processes' entries into one per syscall
(tracing/model/snapshots.py) and the oldest exited processes into one entry
(tracing/system/process_fold.py), while the journal keeps each process's own rows and exit.

The trace runs in a process of its own (tests/ebpf/churn_harness.py), as `record` runs it
(tracer and journal, stack sampling at record's default rate), so that its peak resident
memory, the compile's included, is the tracer's.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from syscall_tables import syscall_number
from tracing.model.stats import ProcKind

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for eBPF")

N = 20_000
PEAK_MB = 400  # the process's peak resident memory, the compile's included
ROOT = Path(__file__).resolve().parents[2]
Churn = tuple[dict[str, Any], Path]  # the harness's result, the journal


@pytest.fixture(scope="module")
def churn(tmp_path_factory: pytest.TempPathFactory) -> Churn:
    journal = tmp_path_factory.mktemp("churn") / "churn.db"
    done = subprocess.run(
        [sys.executable, "-m", "tests.ebpf.churn_harness", str(N), str(journal), "99"],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1]), journal


def test_every_execve_and_exit_is_counted(churn: Churn) -> None:
    result, _ = churn
    counts = result["counts"]
    # The shell's own execve (tracing starts there) and one per child.
    assert counts["execve"] == N + 1
    assert counts["exit_group"] == N + 1
    assert counts["vfork"] + counts.get("fork", 0) + counts.get("clone", 0) == N


def test_every_process_has_its_exit_status(churn: Churn) -> None:
    result, _ = churn
    assert result["without_exit"] == []
    assert result["exit_codes"] == [0]
    # Each process counted once: shown one by one, or folded (the oldest exited ones, and
    # the earlier process of a pid reused within the trace: pid_max may be 32768).
    assert result["processes"] + result["folded_processes"] == N + 1


def test_nothing_is_dropped(churn: Churn) -> None:
    result, _ = churn
    # Stack samples are taken (record's default rate) but not what churn tests: a sample
    # whose stack is lost (a collision in the kernel's stack map) is counted apart.
    sampling = {"events_sent", "stack_collisions", "stacks_missing"}
    drops = {k: v for k, v in result["drops"].items() if k not in sampling}
    assert drops == dict.fromkeys(drops, 0)


def test_memory_stays_bounded(churn: Churn) -> None:
    result, _ = churn
    assert result["peak_mb"] < PEAK_MB, {k: v for k, v in result.items() if k != "counts"}
    # Long-gone processes' entries were folded (one per syscall): the snapshot holds a
    # bounded number of entries, not one per process and syscall seen.
    assert result["folded_entries"] > 0
    assert result["entries"] < N * 10
    # And the oldest exited processes: a bounded number shown one by one.
    assert result["folded_processes"] > 0
    assert result["processes"] < N // 2


def test_the_journal_keeps_every_process_rows(churn: Churn) -> None:
    """Folding is the live snapshots' only: the journal adds up each entry's changes, so the
    session on disk has every execve under its own pid (a reused pid's rows hold both), a
    row for each of those pids and every process's exit with its status."""
    _, journal = churn
    execve = syscall_number("execve", "x86_64")
    with sqlite3.connect(journal) as db:
        total, pids = db.execute("SELECT SUM(count), COUNT(DISTINCT pid) FROM aggregates "
                                 "WHERE nr = ?", (execve,)).fetchone()
        rows = db.execute("SELECT COUNT(*) FROM processes WHERE pid IN "
                          "(SELECT pid FROM aggregates WHERE nr = ?)", (execve,)).fetchone()
        exits = db.execute("SELECT COUNT(*), SUM(status != 0) FROM proc_events "
                           "WHERE kind = ? AND pid = tid", (int(ProcKind.EXIT),)).fetchone()
    assert total == N + 1
    assert rows == (pids,)
    assert exits == (N + 1, 0)
