"""Calls in flight (issue 16): a thread blocked in read() on a FIFO for the whole trace is
shown in its call, with when it entered it, and at stop it is listed as still in flight (by
the tracer, by `record` in text and JSON, and in the saved session that `open` reads)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.ebpf.conftest import run_trace
from tests.helpers import wait_until
from tracing.engine.inflight import MAP_NAME, InFlightReader, live_threads
from tracing.engine.tracer import TraceConfig, Tracer
from tracing.model.inflight import InFlight
from tracing.model.stats import Snapshot, TraceState
from tracing.session.export import export_parquet
from tracing.session.stored import open_session
from tracing.session.window import whole, window_snapshot

pytestmark = pytest.mark.ebpf

PY = "/usr/bin/python3"
ROOT = Path(__file__).resolve().parents[2]
NR_READ = 0  # x86_64
# A thread that reads one byte from a FIFO nobody writes to (opened O_RDWR: no EOF), then
# writes "tid before returned" (monotonic ns around the read). With "signal", it starts only
# after SIGUSR1, so that a trace attached by --pid sees the read begin.
WORKLOAD = """
import os, signal, sys, threading, time
fifo, out, mode = sys.argv[1:4]
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
open(out + ".ready", "w").close()
if mode == "signal":
    signal.sigwait({signal.SIGUSR1})
def reader():
    fd = os.open(fifo, os.O_RDWR)
    before = time.monotonic_ns()
    os.read(fd, 1)
    returned = time.monotonic_ns()
    with open(out + ".tmp", "w") as f:
        f.write(f"{threading.get_native_id()} {before} {returned}\\n")
    os.rename(out + ".tmp", out)
t = threading.Thread(target=reader)
t.start()
t.join()
"""
DEADLINE_S = 30


def reading_tid(pid: int) -> int | None:
    """The thread of `pid` blocked in read (its /proc syscall line starts with 0)."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tids:
        try:
            line = Path(f"/proc/{pid}/task/{tid}/syscall").read_text()
        except OSError:
            continue
        if line.split()[0] == str(NR_READ) and int(tid) != pid:
            return int(tid)
    return None


def release(fifo: Path, out: Path) -> tuple[int, int, int]:
    """Write the byte the reader waits for; its (tid, before, returned)."""
    fd = os.open(fifo, os.O_WRONLY)
    try:
        os.write(fd, b"x")
    finally:
        os.close(fd)
    wait_until(out.exists, "the workload's report")
    tid, before, returned = map(int, out.read_text().split())
    return tid, before, returned


def calls_of(snapshot: Snapshot, tid: int) -> list[InFlight]:
    read = snapshot.inflight
    return [c for c in read.calls if c.tid == tid] if read is not None else []


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    tmp_path.chmod(0o755)
    return path


def test_tracer_shows_a_blocked_read_and_keeps_it_at_stop(fifo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    snapshots: list[Snapshot] = []
    found: dict[str, int] = {}
    config = TraceConfig(command=(PY, "-c", WORKLOAD, str(fifo), str(out), "now"),
                         tick_hz=20, sample_hz=0, tcp=False, docker=False)

    def while_running(tracer: Tracer) -> None:
        assert tracer.command is not None
        pid = found["pid"] = tracer.command.pid
        tid = found["tid"] = wait_until(lambda: reading_tid(pid), "the reader to block")
        # Nobody watching (the view closed): not read. Then the view opens.
        seen = len(snapshots)
        wait_until(lambda: len(snapshots) >= seen + 3, "three snapshots while blocked")
        unwatched = len(snapshots)
        tracer.watch_inflight(True)
        assert all(s.inflight is None for s in snapshots[:unwatched])
        wait_until(lambda: any(calls_of(s, tid) for s in list(snapshots)),
                 "a snapshot with the read in flight")
        tracer.stop()

    tracer = Tracer(config, on_snapshot=snapshots.append)
    tracer.start()
    try:
        while_running(tracer)
        assert tracer.join(DEADLINE_S)
        assert tracer.error is None
        tid, before, returned = release(fifo, out)
    finally:
        if tracer.command is not None:
            tracer.command.finish()
    assert tid == found["tid"]
    last = snapshots[-1]
    assert last.state == TraceState.STOPPED
    for snapshot in [s for s in snapshots if calls_of(s, tid)]:
        (call,) = calls_of(snapshot, tid)
        assert (call.pid, call.tid, call.nr, call.abi) == (found["pid"], tid, NR_READ, 0)
        assert before <= call.start_ns < returned  # the read's own entry, before it returned
        assert snapshot.inflight is not None and call.start_ns < snapshot.inflight.ts_ns
    # At stop: still in flight, and the only call of that thread; counted nowhere else.
    (at_stop,) = calls_of(last, tid)
    assert last.inflight is not None and last.inflight.ts_ns <= last.ts_ns
    assert at_stop.elapsed_ns(last.inflight.ts_ns) == last.inflight.ts_ns - at_stop.start_ns > 0
    assert not any(k.tid == tid and k.nr == NR_READ for k in last.stats)


def test_reader_reads_task_storage_of_each_thread(fifo: Path, tmp_path: Path) -> None:
    """The reader itself, with the tracer's map: the blocked thread is found; a thread that
    is not in a call, or gone, is absent."""
    out = tmp_path / "out"
    config = TraceConfig(command=(PY, "-c", WORKLOAD, str(fifo), str(out), "now"),
                         tick_hz=20, sample_hz=0, tcp=False, docker=False)
    result: dict[str, object] = {}

    def while_running(tracer: Tracer) -> None:
        assert tracer.command is not None and tracer._program is not None
        pid = tracer.command.pid
        tid = wait_until(lambda: reading_tid(pid), "the reader to block")
        reader = InFlightReader(tracer._program.map_fd(MAP_NAME), tracer.arch)
        threads, more = live_threads([pid], 4096)
        read = reader.read([*threads, (pid, 999_999_999)], more)
        result.update(pid=pid, tid=tid, read=read, threads=threads,
                      task_storage=reader.task_storage)
        release(fifo, out)

    run_trace(config, while_running=while_running)
    read, pid, tid = result["read"], result["pid"], result["tid"]
    assert result["task_storage"] is True  # this kernel (6.9 or later) has task storage
    assert sorted(result["threads"]) == sorted([(pid, pid), (pid, tid)])
    # The first thread waits in futex (join): in a call too. The reader: in read.
    by_tid = {c.tid: c for c in read.calls}
    assert by_tid[tid].nr == NR_READ and by_tid[tid].pid == pid
    assert set(by_tid) <= {pid, tid}
    assert read.threads == 3 and read.unread == 0  # the made-up tid: looked up, absent


def test_record_lists_calls_in_flight_at_stop(fifo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    journal = tmp_path / "session.sikte.db"
    workload = subprocess.Popen([PY, "-c", WORKLOAD, str(fifo), str(out), "signal"])
    try:
        wait_until(Path(f"{out}.ready").exists, "the workload to start")
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "record", "--json", "--db-path", str(journal),
             "--pid", str(workload.pid)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        line = proc.stderr.readline() if proc.stderr else ""
        assert line.startswith("sikte-tui: tracing "), line
        workload.send_signal(signal.SIGUSR1)  # its reader starts now: the trace sees it enter
        tid = wait_until(lambda: reading_tid(workload.pid), "the reader to block")
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=DEADLINE_S)
        stopped = time.monotonic_ns()
        assert proc.returncode == 0, stderr
        _, before, returned = release(fifo, out)
    finally:
        workload.kill()
        workload.wait()
    doc = json.loads(stdout)
    calls = [c for c in doc["in_flight"] if c["tid"] == tid]
    assert calls == [{"pid": workload.pid, "tid": tid, "comm": "python3", "syscall": "read",
                      "nr": NR_READ, "abi": "x86_64", "in_flight_ns": calls[0]["in_flight_ns"],
                      "entered_before_trace": False, "in_flight_at_least": False}]
    assert 0 < calls[0]["in_flight_ns"] <= stopped - before
    # The saved session keeps them: `open` shows the same call, as of the session's end.
    session = open_session(journal)
    snapshot = window_snapshot(session, whole(session), 1)
    assert snapshot.inflight is not None
    (call,) = [c for c in snapshot.inflight.calls if c.tid == tid]
    assert (call.pid, call.nr, call.abi) == (workload.pid, NR_READ, 0)
    assert before <= call.start_ns < returned
    assert call.elapsed_ns(snapshot.inflight.ts_ns) == calls[0]["in_flight_ns"]
    # And so does its Parquet export (session.json).
    exported = open_session(export_parquet(session, tmp_path / "parquet"))
    again = window_snapshot(exported, whole(exported), 1)
    assert again.inflight == snapshot.inflight


def test_attach_finds_a_read_entered_before_the_trace(fifo: Path, tmp_path: Path) -> None:
    """A thread blocked since before `--pid` attached has no slot: /proc names its call,
    listed as entered before the trace (its time in flight a lower bound)."""
    out = tmp_path / "out"
    workload = subprocess.Popen([PY, "-c", WORKLOAD, str(fifo), str(out), "now"])
    try:
        tid = wait_until(lambda: reading_tid(workload.pid), "the reader to block")
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "record", "--no-journal", "--pid",
             str(workload.pid)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        line = proc.stderr.readline() if proc.stderr else ""
        assert line.startswith("sikte-tui: tracing "), line
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=DEADLINE_S)
        assert proc.returncode == 0, stderr
        release(fifo, out)
    finally:
        workload.kill()
        workload.wait()
    # The text report: the blocked read, marked as a lower bound, and the summary line.
    lines = stdout.splitlines()
    (row,) = [x for x in lines if x.split()[:2] == [str(workload.pid), str(tid)]]
    assert row.split()[2].startswith(">") and row.split()[3:] == ["read", "(python3)"]
    assert any(x.startswith("in flight at stop: ") for x in lines)
