"""Issue 15's decoded events against an unprivileged attacker (`nobody`), with the real tracer:
paths, strings, socket addresses and write buffers made of terminal escapes and Textual markup
reach `record --trace -` and --json only as escaped data; a flood of failed opens of the
longest paths holds the path table to its byte bound with every failure still counted; the
--trace file refuses links and FIFOs another user planted."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.attack_helpers import NOBODY, assert_intact, make_canary, plant_link, shared_dir
from tests.ebpf.conftest import TraceRun, run_trace
from tests.helpers import wait_until
from tracing.engine.tracer import TraceConfig, Tracer
from tracing.model.paths import MAX_PATH_BYTES, OTHER_ID
from tracing.model.selection import EventSelection

pytestmark = pytest.mark.ebpf

ROOT = Path(__file__).resolve().parents[2]
PYTHON = "/usr/bin/python3"
# Control bytes a terminal acts on (C0 but TAB and LF, DEL) and C1 / bidi controls in UTF-8.
CONTROL = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]|\xe2\x80[\xaa-\xae]"
                     rb"|\xe2\x81[\xa6-\xa9]")

HOSTILE = r"""
import os, socket
names = [b"/tmp/\x1b]0;PWNED\x07", b"/tmp/[bold red]MARKUP[/]", b"/tmp/[@click=app.quit]q[/]",
         b"/tmp/\xe2\x80\xaetxt.exe", b"/tmp/l1\nl2\r\x1b[2J", b"/tmp/\xc2\x9b31m", b"/tmp/\xff"]
for name in names:
    try:
        os.open(b"/nonexistent-sikte" + name, os.O_RDONLY)
    except OSError:
        pass
try:
    os.write(987, b"\x1b]0;BUF\x07[bold]x[/]\x1b[2J")
except OSError:
    pass
s = socket.socket(socket.AF_UNIX)
for addr in (b"/tmp/\x1b]0;SOCK\x07[bold]s", b"\0\x1b]0;ABS\x07[@click=app.quit]"):
    try:
        s.connect(addr)
    except OSError:
        pass
"""


def sikte(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True,
                          timeout=timeout, cwd=ROOT)


def test_hostile_names_reach_the_trace_and_json_only_as_escaped_data() -> None:
    run = sikte("record", "--no-journal", "--json", "--user", "nobody", "--events", "failed",
                "--trace", "-", "--", PYTHON, "-c", HOSTILE)
    assert run.returncode == 0, run.stderr
    for stream in (run.stdout, run.stderr):
        assert CONTROL.search(stream) is None, CONTROL.search(stream)
    lines = run.stderr.decode("ascii").splitlines()  # the trace is printable ASCII only
    assert ('openat(AT_FDCWD, "/nonexistent-sikte/tmp/\\33]0;PWNED\\7", O_RDONLY|O_CLOEXEC)'
            in "\n".join(lines))
    opened = [ln for ln in lines if '"/nonexistent-sikte/tmp/' in ln]
    assert [ln.split('"')[1] for ln in opened] == [
        "/nonexistent-sikte/tmp/\\33]0;PWNED\\7", "/nonexistent-sikte/tmp/[bold red]MARKUP[/]",
        "/nonexistent-sikte/tmp/[@click=app.quit]q[/]",
        "/nonexistent-sikte/tmp/\\342\\200\\256txt.exe",
        "/nonexistent-sikte/tmp/l1\\nl2\\r\\33[2J", "/nonexistent-sikte/tmp/\\302\\23331m",
        "/nonexistent-sikte/tmp/\\377"]
    (write,) = [ln for ln in lines if ln.startswith("write(987, ")]
    assert write.startswith('write(987, "\\33]0;BUF\\7[bold]x[/]\\33[2J", 22) = -1 EBADF')
    connects = [ln for ln in lines if ln.startswith("connect(")]
    assert 'sun_path="/tmp/\\33]0;SOCK\\7[bold]s"' in connects[0]
    assert 'sun_path=@"\\33]0;ABS\\7[@click=app.quit]"' in connects[1]
    # --json keeps the exact names (JSON escapes them) for the tools that read it.
    paths = {f["path"] for f in json.loads(run.stdout)["files"]}
    assert "/nonexistent-sikte/tmp/\x1b]0;PWNED\x07" in paths
    assert "/nonexistent-sikte/tmp/[@click=app.quit]q[/]" in paths


FLOOD = """
import os, sys, time
n, length, chunk, gate = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
tail = b"/" + b"a" * 62
for i in range(n):
    name = (b"/nonexistent-sikte-%07d" % i + tail * 64)[:length]
    try:
        os.open(name, os.O_RDONLY)
    except OSError:
        pass
    if i % chunk == chunk - 1:  # the test lets the next chunk go once this one is accounted
        go = os.path.join(gate, str(i // chunk))
        while not os.path.exists(go):
            time.sleep(0.002)
"""
CHUNK = 500


def accounted(tracer: Tracer) -> int:
    """The flood's failed opens the tracer has accounted for: counted per path or under
    "(other)", or lost (fd_events)."""
    last = tracer.last_snapshot
    if last is None or last.paths is None:
        return 0
    paths = last.paths
    return last.drops.fd_events + sum(
        stats.open_failures for key, stats in last.files.items()
        if key.path_id == OTHER_ID or paths.name(key.path_id).startswith(b"/nonexistent"))


def flood(count: int, length: int) -> TraceRun:
    """`count` failed opens of `length`-byte paths, a chunk at a time: each chunk waits until
    the tracer has accounted for the ones before (paced by the drain itself, not by a clock,
    so a loaded machine only makes it slower)."""
    with shared_dir() as gate:
        def pace(tracer: Tracer) -> None:
            for k in range(count // CHUNK):
                wait_until(lambda k=k: accounted(tracer) >= (k + 1) * CHUNK or not tracer.running,
                           timeout=120, what=f"chunk {k} of the flood accounted")
                (gate / str(k)).touch()

        config = TraceConfig(command=(PYTHON, "-c", FLOOD, str(count), str(length), str(CHUNK),
                                      str(gate)),
                             user="nobody", events=EventSelection.parse("failed"), sample_hz=0,
                             tcp=False, docker=False)
        return run_trace(config, timeout=300, while_running=pace)


def test_failed_opens_of_the_longest_paths_hold_the_path_table_to_its_bytes() -> None:
    count, length = MAX_PATH_BYTES // 4000 + 2000, 4000
    run = flood(count, length)
    paths = run.last.paths
    assert paths is not None
    lost = run.last.drops.fd_events
    assert lost < 1000  # the flood is paced by the drain
    # Full, not past: the 2,000 paths beyond the table's room make up for any lost.
    assert MAX_PATH_BYTES - length < paths.bytes <= MAX_PATH_BYTES, (paths.bytes, lost)
    # Every failure counted: per path while the table had room, then under "(other)".
    ours = {key: stats for key, stats in run.last.files.items()
            if key.path_id == OTHER_ID or paths.name(key.path_id).startswith(b"/nonexistent")}
    assert sum(s.open_failures for s in ours.values()) + lost == count
    kept = sum(1 for key in ours if key.path_id != OTHER_ID)
    assert kept <= MAX_PATH_BYTES // length
    assert kept + paths.overflow + lost >= count


def test_the_trace_file_refuses_what_another_user_planted(tmp_path: Path) -> None:
    canary = make_canary(tmp_path)
    with shared_dir() as shared:
        link, dangling, fifo = shared / "t.trace", shared / "d.trace", shared / "f.trace"
        plant_link(link, canary)
        plant_link(dangling, shared / "made-by-root")
        os.mkfifo(fifo)
        os.chown(fifo, NOBODY, NOBODY)
        for target, why in ((link, "is a symbolic link"), (dangling, "is a symbolic link"),
                            (fifo, "is not a regular file")):
            run = sikte("record", "--no-journal", "--trace", str(target), "--", "/bin/true")
            assert run.returncode == 2, run.stderr
            (line,) = run.stderr.decode().strip().splitlines()
            assert line.startswith(f"sikte-tui: --trace {target} exists and {why}"), line
        assert not (shared / "made-by-root").exists()
        assert os.lstat(fifo).st_uid == NOBODY
    assert_intact(canary)


THREADS = """
import os, sys, threading, time
threading.stack_size(65536)
base = os.open("/dev/null", os.O_RDONLY)
for _ in range(int(sys.argv[1])):
    os.dup(base)
done = threading.Event()
threads = [threading.Thread(target=done.wait) for _ in range(int(sys.argv[2]))]
for t in threads:
    t.start()
deadline = time.monotonic() + 60
while not os.path.exists(sys.argv[3]) and time.monotonic() < deadline:  # the test says go
    time.sleep(0.01)
done.set()
for t in threads:
    t.join()
"""


def test_threads_share_their_process_descriptor_table_not_copies() -> None:
    """200 threads x 3000 descriptors would be 600,000 entries the attacker's kernel never
    paid for: the kernel flags a fork that made a thread, and threads copy nothing."""
    with shared_dir() as shared:  # the workload runs as nobody: it must see the signal
        _threads_share_tables(shared / "go")


def _threads_share_tables(go: Path) -> None:
    biggest = [0]

    def entries(tracer: Tracer) -> int:
        return sum(len(t) for t in list(tracer._files.table.tables.values()))

    def watch(tracer: Tracer) -> None:
        command = tracer.command
        assert command is not None
        # Every thread's fork event seen and a tick after it: a copy would be there now.
        wait_until(lambda: len(tracer._tracker._threads.get(command.pid, ())) >= 200,
                   "the threads' fork events", timeout=60)
        wait_until(lambda: entries(tracer) >= 3000, "the descriptors", timeout=60)
        first = tracer.last_snapshot
        wait_until(lambda: tracer.last_snapshot is not first, "a tick")
        biggest[0] = entries(tracer)
        go.touch()
        while tracer.running:
            biggest[0] = max(biggest[0], entries(tracer))
            time.sleep(0.05)

    config = TraceConfig(command=(PYTHON, "-c", THREADS, "3000", "200", str(go)),
                         user="nobody", events=EventSelection.parse("failed"), sample_hz=0,
                         tcp=False, docker=False)
    run_trace(config, timeout=120, while_running=watch)
    assert 3000 <= biggest[0] < 2 * 3100  # the process's table (and its child's at most)
