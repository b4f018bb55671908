"""Threads in a real recording (root): a Python program names five threads with
prctl(PR_SET_NAME) (three end early, two wait for it), `record` keeps them in the journal and
the Parquet export, and both open with each thread's name, every thread ended and each exit
time from the kernel's exit event."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tracing.session.stored import open_session
from tracing.session.window import stored_processes

pytestmark = pytest.mark.ebpf

ROOT = Path(__file__).resolve().parents[2]
WORKLOAD = """
import ctypes, os, threading
libc = ctypes.CDLL(None)
def run(name, stay):
    libc.prctl(15, name.encode(), 0, 0, 0)  # PR_SET_NAME
    os.getppid()
    if stay:
        stay.wait()
go = threading.Event()
threads = [threading.Thread(target=run, args=(f"w-{i}", go if i < 2 else None))
           for i in range(5)]
for t in threads:
    t.start()
for t in threads[2:]:
    t.join()
go.set()
for t in threads[:2]:
    t.join()
print(os.getpid(), flush=True)
"""
NAMES = {f"w-{i}" for i in range(5)}


def test_a_recording_keeps_each_threads_name(tmp_path: Path) -> None:
    script = tmp_path / "w.py"
    script.write_text(WORKLOAD)
    db, out = tmp_path / "run.sikte.db", tmp_path / "pq"
    run = subprocess.run([sys.executable, "-m", "cli.main", "record", "--db-path", str(db),
                          "--output", str(out), "--", "/usr/bin/python3", str(script)],
                         cwd=ROOT, capture_output=True, text=True, env=dict(os.environ),
                         timeout=120)
    assert run.returncode == 0, run.stderr
    pid = int(run.stdout.split()[0])
    for path in (db, out):
        info = stored_processes(open_session(path))[pid]
        assert set(info.thread_names.values()) == NAMES, path
        assert len(info.threads) == 5 and info.thread_total == 6
        assert info.live_threads == frozenset() and info.live_thread_count == 0
        assert info.thread_names_dropped == 0
    threads = pq.read_table(out / "threads.parquet").to_pandas()
    mine = threads[threads["pid"] == pid]
    assert sorted(mine["name"]) == sorted([*NAMES, "python3"])
    assert not mine["alive"].any()
    assert mine["exit_ts"].notna().all()  # each thread's exit event, and the process's
