"""Calls in flight with --timing off (issue 18): the program keeps no in-flight slots, so the
tracer reads each thread's /proc/PID/task/TID/syscall once a second instead. A launched
a long `time.sleep` is listed in clock_nanosleep, timed from the first read that saw it (the
same start at every later read), never longer than it has really been asleep; `record
--timing off --json` lists it at stop as a lower bound, and the saved session keeps it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import wait_until
from tracing.engine.tracer import TraceConfig, Tracer
from tracing.model.inflight import InFlight, call_name
from tracing.model.stats import Snapshot, TraceState
from tracing.model.timing import Timing
from tracing.session.export import export_parquet
from tracing.session.stored import open_session
from tracing.session.window import whole, window_snapshot

pytestmark = pytest.mark.ebpf

PY = "/usr/bin/python3"
ROOT = Path(__file__).resolve().parents[2]
NR_CLOCK_NANOSLEEP = 230  # x86_64; Python 3.11's time.sleep
DEADLINE_S = 30
# Writes the monotonic time just before it goes to sleep (atomically: rename), then sleeps far
# longer than any deadline here (a loaded machine may take most of one to start a trace): the
# tests end it.
SLEEPER = """
import os, sys, time
out = sys.argv[1]
with open(out + ".tmp", "w") as f:
    f.write(str(time.monotonic_ns()))
os.rename(out + ".tmp", out)
time.sleep(600)
"""


def sleeping(pid: int) -> bool:
    """The process's only thread is in clock_nanosleep, as /proc says."""
    try:
        line = Path(f"/proc/{pid}/task/{pid}/syscall").read_text()
    except OSError:
        return False
    return line.split()[:1] == [str(NR_CLOCK_NANOSLEEP)]


def sleeps(snapshot: Snapshot, pid: int) -> list[InFlight]:
    read = snapshot.inflight
    if read is None:
        return []
    return [c for c in read.calls if c.tid == pid and c.nr == NR_CLOCK_NANOSLEEP]


def test_tracer_lists_a_sleep_from_proc_reads(tmp_path: Path) -> None:
    out = tmp_path / "before"
    tmp_path.chmod(0o755)
    snapshots: list[Snapshot] = []
    config = TraceConfig(command=(PY, "-c", SLEEPER, str(out)), timing=Timing.OFF,
                         tick_hz=20, sample_hz=0, tcp=False, docker=False)
    tracer = Tracer(config, on_snapshot=snapshots.append)
    tracer.watch_inflight(True)  # the in-flight view open: read each second
    tracer.start()
    try:
        assert tracer.command is not None
        pid = tracer.command.pid
        wait_until(lambda: sleeping(pid), "the sleep to begin")

        def two_reads() -> bool:  # two reads (a second apart) that saw it
            found = {s.inflight.ts_ns for s in list(snapshots)
                     if s.inflight is not None and sleeps(s, pid)}
            return len(found) >= 2

        wait_until(two_reads, "two reads listing the sleep", timeout=DEADLINE_S)
        tracer.stop()
        assert tracer.join(DEADLINE_S)
        assert tracer.error is None
        stopped = time.monotonic_ns()
    finally:
        if tracer.command is not None:
            tracer.command.finish()
    before = int(out.read_text())
    last = snapshots[-1]
    assert last.state == TraceState.STOPPED and last.timing == Timing.OFF
    listed = [s for s in snapshots if sleeps(s, pid)]
    starts = set()
    for snapshot in listed:
        read = snapshot.inflight
        assert read is not None and read.polled
        (call,) = sleeps(snapshot, pid)
        assert (call.pid, call.abi, call.seen, call.before_trace) == (pid, 0, True, False)
        assert call_name("x86_64", call) == "clock_nanosleep"
        # First seen after it began; its time in flight a lower bound of the real one.
        assert before < call.start_ns
        assert 0 <= call.elapsed_ns(read.ts_ns) <= read.ts_ns - before
        starts.add(call.start_ns)
    assert len(starts) == 1  # every later read kept the first sighting
    assert listed[-1] is last  # still in flight at stop
    assert last.inflight is not None
    elapsed = last.inflight.ts_ns - starts.pop()
    assert 0 < elapsed < stopped - before  # at least a second's reads apart
    # Never returned: counted nowhere else.
    assert not any(k.tid == pid and k.nr == NR_CLOCK_NANOSLEEP for k in last.stats)


def test_record_timing_off_lists_a_sleep_as_a_lower_bound(tmp_path: Path) -> None:
    out = tmp_path / "before"
    journal = tmp_path / "session.sikte.db"
    tmp_path.chmod(0o755)
    workload = subprocess.Popen([PY, "-c", SLEEPER, str(out)])
    try:
        wait_until(lambda: out.exists() and sleeping(workload.pid), "the sleep to begin")
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "record", "--timing", "off", "--json",
             "--db-path", str(journal), "--pid", str(workload.pid)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        line = proc.stderr.readline() if proc.stderr else ""
        assert line.startswith("sikte-tui: tracing "), line
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=DEADLINE_S)
        stopped = time.monotonic_ns()
        assert proc.returncode == 0, stderr
        assert sleeping(workload.pid)  # still asleep: every read saw the same call
    finally:
        workload.kill()
        workload.wait()
    before = int(out.read_text())
    doc = json.loads(stdout)
    assert doc["target"]["timing"] == "off"
    (call,) = [c for c in doc["in_flight"] if c["tid"] == workload.pid]
    assert call == {"pid": workload.pid, "tid": workload.pid, "comm": "python3",
                    "syscall": "clock_nanosleep", "nr": NR_CLOCK_NANOSLEEP, "abi": "x86_64",
                    "in_flight_ns": call["in_flight_ns"], "entered_before_trace": False,
                    "in_flight_at_least": True}
    assert 0 <= call["in_flight_ns"] < stopped - before
    # The saved session keeps it, marked as found by /proc reads.
    session = open_session(journal)
    snapshot = window_snapshot(session, whole(session), 1)
    assert snapshot.inflight is not None and snapshot.inflight.polled
    (kept,) = [c for c in snapshot.inflight.calls if c.tid == workload.pid]
    assert (kept.pid, kept.nr, kept.abi, kept.seen) == (workload.pid, NR_CLOCK_NANOSLEEP, 0,
                                                        True)
    assert before < kept.start_ns
    assert kept.elapsed_ns(snapshot.inflight.ts_ns) == call["in_flight_ns"]
    # And so does its Parquet export (session.json).
    exported = open_session(export_parquet(session, tmp_path / "parquet"))
    assert window_snapshot(exported, whole(exported), 1).inflight == snapshot.inflight
