"""Descriptor names and per-file I/O on the real kernel (root): exact bytes per file when a
descriptor number is reused, failed opens per path and errno, the descriptors of a process
attached while it runs (seeded from /proc) naming its later writes."""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.ebpf.conftest import TraceRun
from tracing.engine.tracer import TraceConfig
from tracing.model.files import FileStats
from tracing.model.selection import EventSelection

PYTHON = "/usr/bin/python3"
K, L = 12_345, 678
Trace = Callable[..., TraceRun]

REUSE = """
import os, sys
a = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(a, b"a" * int(sys.argv[3]))
os.close(a)
b = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(b, b"b" * int(sys.argv[4]))
sys.exit(0 if a == b else 3)  # b is left open: its totals arrive at exit
"""

MISSING = """
import os, sys
for i in range(int(sys.argv[2])):
    try:
        os.open(f"{sys.argv[1]}/missing-{i}", os.O_RDONLY)
    except FileNotFoundError:
        pass
"""

ATTACHED = """
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
print("ready", flush=True)
sys.stdin.read(1)
os.write(fd, b"z" * int(sys.argv[2]))
"""


def by_name(run: TraceRun) -> dict[bytes, FileStats]:
    paths = run.last.paths
    assert paths is not None
    return {paths.name(key.path_id): stats for key, stats in run.last.files.items()}


def test_a_reused_descriptor_number_counts_each_file_exactly(trace: Trace, tmp_path: Path) -> None:
    a, b = tmp_path / "A", tmp_path / "B"
    run = trace(TraceConfig(command=(PYTHON, "-c", REUSE, str(a), str(b), str(K), str(L))))
    assert run.last.target_exit is not None and run.last.target_exit.code == 0
    files = by_name(run)
    first, second = files[bytes(a)], files[bytes(b)]
    assert (first.opens, first.writes, first.bytes_written) == (1, 1, K)
    assert (second.opens, second.writes, second.bytes_written) == (1, 1, L)
    assert first.reads == second.reads == 0


def test_failed_opens_are_counted_per_path_and_errno(trace: Trace, tmp_path: Path) -> None:
    n = 40
    run = trace(TraceConfig(command=(PYTHON, "-c", MISSING, str(tmp_path), str(n))))
    files = by_name(run)
    missing = {name: s.open_errors for name, s in files.items()
               if name.startswith(bytes(tmp_path) + b"/missing-")}
    assert len(missing) == n
    assert set(missing.values()) == {((errno.ENOENT, 1),)}


def test_an_attached_process_descriptors_name_its_writes(trace: Trace, tmp_path: Path) -> None:
    out = tmp_path / "held open"
    proc = subprocess.Popen([PYTHON, "-c", ATTACHED, str(out), str(K)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdin is not None
    assert proc.stdout.readline() == b"ready\n"
    stdin = proc.stdin

    def release(_tracer: object) -> None:
        stdin.write(b"x")
        stdin.close()

    try:
        run = trace(TraceConfig(pids=(proc.pid,), events=EventSelection(all=True)),
                    while_running=release)
    finally:
        proc.wait(10)
    stats = by_name(run)[bytes(out)]
    assert (stats.opens, stats.writes, stats.bytes_written) == (0, 1, K)
    paths = run.last.paths
    assert paths is not None
    writes = [s.events[s.events["args"][:, 2] == K] for s in run.snapshots]
    named = [paths.name(int(p)) for w in writes for p in w["fd_path"].tolist()]
    assert named == [bytes(out)]


FORK_EXEC = """
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
child = os.fork()
if child == 0:
    os.write(fd, b"c" * 100)
    os._exit(0)
os.waitpid(child, 0)
os.write(fd, b"p" * 10)
kept = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.set_inheritable(kept, True)  # survives the exec; fd (O_CLOEXEC) does not
os.execv("/bin/sh", ["sh", "-c", f"printf 12345 >&{kept}; exec 3>&-"])
"""


def test_a_child_inherits_names_exec_keeps_inheritable_ones(trace: Trace, tmp_path: Path) -> None:
    shared, kept = tmp_path / "shared", tmp_path / "kept"
    run = trace(TraceConfig(command=(PYTHON, "-c", FORK_EXEC, str(shared), str(kept))))
    paths, command = run.last.paths, run.tracer.command
    assert paths is not None and command is not None
    written = {(key.pid == command.pid, paths.name(key.path_id)): s.bytes_written
               for key, s in run.last.files.items() if s.bytes_written}
    assert written == {(True, bytes(shared)): 10, (False, bytes(shared)): 100,
                       (True, bytes(kept)): 5}


@pytest.fixture(autouse=True)
def _readable(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)  # a command launched as the invoking user reaches it
