"""What the kernel program records, exactly as the kernel saw it (issue 16, part A): each
call's ABI in its key, syscall(-1) counted, a launched command counted from its own execve
(as strace counts it, as root and for a sudo user), exit signals from the task's exit code,
a call cut short by the task's killing not taken for a failure, and thread renames."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from syscall_tables import abi_syscall_name, syscall_number
from tests.ebpf.conftest import HERE, TraceRun
from tests.helpers import wait_until
from tracing.engine.tracer import TraceConfig, Tracer
from tracing.model.stats import ExitStatus, ProcKind
from tracing.model.timing import Timing

pytestmark = pytest.mark.ebpf

PYTHON = "/usr/bin/python3"
NOBODY = 65534
Trace = Callable[..., TraceRun]


@pytest.fixture
def devnull() -> Iterator[int]:
    fd = os.open(os.devnull, os.O_RDWR)
    yield fd
    os.close(fd)


def config(command: tuple[str, ...], stdio: int, timing: Timing = Timing.EXACT) -> TraceConfig:
    """A launched command with stdio on one fd, without the extras (samples, TCP, Docker)
    these tests do not look at."""
    return TraceConfig(command=command, command_stdin=stdio, command_stdout=stdio,
                       command_stderr=stdio, sample_hz=0, tcp=False, docker=False,
                       timing=timing)


def pid_of(run: TraceRun) -> int:
    assert run.tracer.command is not None
    return run.tracer.command.pid


def ended(status: ExitStatus | None) -> ExitStatus:
    assert status is not None, "no exit status"
    return status


def counts_of(run: TraceRun, pid: int) -> dict[tuple[int, int], tuple[int, int]]:
    """(nr, abi) -> (calls, errors) of one process."""
    found: dict[tuple[int, int], tuple[int, int]] = {}
    for key, s in run.last.stats.items():
        if key.pid == pid:
            calls, errors = found.get((key.nr, key.abi), (0, 0))
            found[(key.nr, key.abi)] = (calls + s.count, errors + s.errors)
    return found


def compile_i386(source: str, out: Path) -> str:
    try:
        subprocess.run(["gcc", "-O2", "-m32", "-nostdlib", "-static", "-ffreestanding",
                        "-fno-pie", "-no-pie", "-o", str(out), str(HERE / source)],
                       check=True, capture_output=True)
    except subprocess.CalledProcessError as err:
        pytest.fail(f"no i386 toolchain (make test installs gcc-multilib): "
                    f"{err.stderr.decode(errors='replace')[:200]}")
    out.parent.chmod(0o755)
    return str(out)


# -- ABI per call --------------------------------------------------------------------------


def test_a_short_lived_i386_process_has_its_calls_under_the_i386_abi(
        trace: Trace, tmp_path: Path, devnull: int) -> None:
    binary = compile_i386("i386_open.c", tmp_path / "i386_open")
    run = trace(config((binary,), devnull))
    pid = pid_of(run)
    execve = syscall_number("execve", run.last.arch)
    i386 = {name: syscall_number(name, "i386") for name in ("write", "read", "open", "exit")}
    # The launcher's (64-bit) execve, then the i386 program's four calls: nothing else.
    assert counts_of(run, pid) == {
        (execve, 0): (1, 0),
        (i386["write"], 1): (1, 0),
        (i386["read"], 1): (1, 0),
        (i386["open"], 1): (1, 1),  # ENOENT
        (i386["exit"], 1): (1, 0),
    }
    names = sorted(abi_syscall_name(run.last.arch, k.abi, k.nr)
                   for k in run.last.stats if k.pid == pid)
    assert names == ["execve", "exit", "open", "read", "write"]
    assert ended(run.last.processes[pid].exit).code == 0


# -- syscall(-1) ---------------------------------------------------------------------------

INVALID = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
for _ in range(3):
    assert libc.syscall(ctypes.c_long(-1)) == -1 and ctypes.get_errno() == 38  # ENOSYS
"""


def test_syscall_minus_one_is_counted(trace: Trace, devnull: int) -> None:
    run = trace(config((PYTHON, "-c", INVALID), devnull))
    pid = pid_of(run)
    assert ended(run.last.target_exit).code == 0
    assert counts_of(run, pid)[(0xFFFFFFFF, 0)] == (3, 3)


# -- the launched command from its own execve -----------------------------------------------


def strace_counts(argv: list[str]) -> dict[str, tuple[int, int]]:
    """name -> (calls, errors) by `strace -f -c`."""
    result = subprocess.run(["strace", "-f", "-c", "-U", "name,calls,errors", *argv],
                            capture_output=True, text=True, check=True)
    counts = {}
    for line in result.stderr.splitlines():
        m = re.fullmatch(r"(\w+)\s+(\d+)\s*(\d*)\s*", line)
        if m and m[1] not in ("syscall", "total"):
            counts[m[1]] = (int(m[2]), int(m[3] or 0))
    return counts


def named_counts(run: TraceRun, pid: int) -> dict[str, tuple[int, int]]:
    return {abi_syscall_name(run.last.arch, abi, nr): c
            for (nr, abi), c in counts_of(run, pid).items()}


# Counts and errors are exact in every timing mode (issue 18); as another user in one.
@pytest.mark.parametrize(("sudo_user", "timing"), [
    (False, Timing.EXACT), (True, Timing.EXACT), (False, Timing.SAMPLED), (False, Timing.OFF)],
    ids=["root", "sudo-user", "root-sampled", "root-off"])
def test_a_launched_command_counts_what_strace_counts(
        trace: Trace, devnull: int, monkeypatch: pytest.MonkeyPatch, sudo_user: bool,
        timing: Timing) -> None:
    if sudo_user:  # as `sudo sikte-tui` run by nobody: the command runs as nobody
        monkeypatch.setenv("SUDO_UID", str(NOBODY))
        monkeypatch.setenv("SUDO_GID", str(NOBODY))
    reference = strace_counts(["/bin/true"])
    run = trace(config(("/bin/true",), devnull, timing))
    counted = named_counts(run, pid_of(run))
    # strace does not list exit_group, which never returns.
    assert counted.pop("exit_group") == (1, 0)
    assert counted == reference
    assert sum(c for c, _ in counted.values()) == sum(c for c, _ in reference.values())


def test_a_launched_command_starts_with_default_signals_and_no_mask(
        trace: Trace, tmp_path: Path) -> None:
    # grep changes no disposition: its /proc status shows what it was given. An ignored
    # signal stays ignored across exec (Python ignores SIGPIPE and SIGXFSZ), a mask stays.
    with open(tmp_path / "status", "w+") as f:
        run = trace(config(("/bin/grep", "^Sig", "/proc/self/status"), f.fileno()))
        f.seek(0)
        fields = dict(line.split(":\t") for line in f.read().splitlines())
    assert ended(run.last.target_exit).code == 0
    assert int(fields["SigIgn"], 16) == 0
    assert int(fields["SigBlk"], 16) == 0


# -- exit statuses ---------------------------------------------------------------------------

VICTIMS = {"term-victim": signal.SIGTERM, "usr1-victim": signal.SIGUSR1,
           "hup-victim": signal.SIGHUP, "segv-victim": signal.SIGSEGV}


def test_killed_children_report_their_signals(trace: Trace, tmp_path: Path, devnull: int
                                               ) -> None:
    # Each victim is the shell (or Python) under its own name, so its comm tells it apart.
    for name in ("term-victim", "usr1-victim", "hup-victim"):
        (tmp_path / name).symlink_to("/bin/sh")
    (tmp_path / "segv-victim").symlink_to(PYTHON)
    script = (f"ulimit -c 0; d={tmp_path}; "
              "$d/term-victim -c 'kill -TERM $$'; $d/usr1-victim -c 'kill -USR1 $$'; "
              "$d/hup-victim -c 'kill -HUP $$'; "
              "$d/segv-victim -S -c 'import ctypes; ctypes.string_at(0)'; "
              "yes | head -1 >/dev/null; exit 3")
    run = trace(config(("/bin/sh", "-c", script), devnull))
    assert ended(run.last.target_exit).code == 3
    by_comm = {p.comm: p for p in run.last.processes.values()}
    expected = {**VICTIMS, "yes": signal.SIGPIPE}
    assert {c: ended(by_comm[c].exit).signal for c in expected} == {c: int(s)
                                                             for c, s in expected.items()}
    assert ended(by_comm["head"].exit).code == 0
    # The process events carry the same status (a wait(2) status: the signal in bits 0..6).
    exits = {e.comm: e.status & 0x7F for s in run.snapshots for e in s.proc_events
             if e.kind == ProcKind.EXIT and e.process_gone}
    assert {c: exits[c] for c in expected} == {c: int(s) for c, s in expected.items()}


# -- restart codes while killed -----------------------------------------------------------------

PAUSER = """
import os, signal, sys
signal.signal(signal.SIGUSR1, lambda *_: None)
signal.pause()  # interrupted by SIGUSR1, handled: -ERESTARTNOHAND, seen as EINTR
open(sys.argv[1], "w").close()
signal.pause()  # killed: -ERESTARTNOHAND too, but nobody ever sees it
"""


def blocked_in(pid: int, nr: int) -> bool:
    try:
        return Path(f"/proc/{pid}/syscall").read_text().split()[0] == str(nr)
    except (OSError, IndexError):
        return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["term", "kill"])
def test_a_call_cut_short_by_a_kill_is_not_a_failure(trace: Trace, tmp_path: Path, devnull: int,
                                                      sig: signal.Signals) -> None:
    marker = tmp_path / "second"
    pause = syscall_number("pause", "x86_64")
    if pause is None or os.uname().machine != "x86_64":
        pytest.skip("pause(2) is an x86_64 call")

    def drive(tracer: Tracer) -> None:
        assert tracer.command is not None
        pid = tracer.command.pid
        wait_until(lambda: blocked_in(pid, pause), "the first pause")
        tracer.command.kill(signal.SIGUSR1)
        wait_until(lambda: marker.exists() and blocked_in(pid, pause), "the second pause")
        tracer.command.kill(sig)

    run = trace(config((PYTHON, "-S", "-c", PAUSER, str(marker)), devnull),
                while_running=drive)
    assert ended(run.last.target_exit).signal == sig
    # Two pauses, both ending with ERESTARTNOHAND in the kernel: only the first failed.
    assert counts_of(run, pid_of(run))[(pause, 0)] == (2, 1)


# -- renames ------------------------------------------------------------------------------------

RENAMER = """
import ctypes, os, threading
libc = ctypes.CDLL(None, use_errno=True)
named = threading.Event()
done = threading.Event()
tids = []

def work():
    tids.append(threading.get_native_id())
    assert libc.prctl(15, b"io-0", 0, 0, 0) == 0  # PR_SET_NAME
    named.set()
    done.wait()

t = threading.Thread(target=work)
t.start()
named.wait()
# Another task renames it, through /proc: the kernel does not say whose thread it is.
with open(f"/proc/self/task/{tids[0]}/comm", "w") as f:
    f.write("worker")
assert libc.prctl(15, b"boss", 0, 0, 0) == 0
done.set()
t.join()
print(tids[0], flush=True)
"""


def test_thread_renames_are_process_events(trace: Trace, tmp_path: Path) -> None:
    out = tmp_path / "tid"
    with open(out, "w+b") as f:
        run = trace(config((PYTHON, "-S", "-c", RENAMER), f.fileno()))
        f.seek(0)
        tid = int(f.read().split()[-1])
    pid = pid_of(run)
    renames = [(e.pid, e.tid, e.comm) for s in run.snapshots for e in s.proc_events
               if e.kind == ProcKind.RENAME]
    # Its exec names it; then the thread names itself, is renamed by the main thread,
    # and the main thread names itself.
    assert renames == [(pid, pid, "python3"), (pid, tid, "io-0"), (0, tid, "worker"),
                       (pid, pid, "boss")]
    assert run.last.drops.proc_events == 0
    assert ended(run.last.target_exit).code == 0
