"""The launcher and reaper of a launched command: a small process of its own, started by
sikte-tui with subprocess, that forks the command, reports its pid and wait status, and
ends the command's whole tree when sikte-tui goes away.

Why a process of its own: the command must die with sikte-tui even on `kill -9`. This
process holds the read end of a pipe whose write end only sikte-tui holds (close-on-exec,
never inherited by the command), so sikte-tui's end, however it comes, reads as EOF here,
and then every process of the command's session gets SIGTERM, then SIGKILL. Being the
command's parent, it also lets the command set PR_SET_PDEATHSIG(SIGKILL) against a process
that lives as long as the command is wanted (a thread of sikte-tui would not: the TUI starts
traces from short-lived worker threads), forks from a single-threaded interpreter, and can
keep the command running when the person chooses to leave it (it then holds the terminal).

Run as a script (`python3 -I -S reaper.py`): the standard library only.

Protocol. stdin, lines: first the launch spec as JSON; then any of `kill SIG` (signal the
command), `stop SIG` (signal its whole session, SIGKILL after the grace), `leave` (let it run
on); EOF: stop with SIGTERM. stdout, lines: `pid N`, later `exit STATUS` (a wait status),
or `error MESSAGE` if the fork failed.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import select
import signal
import sys
import time
from collections.abc import Iterator
from typing import NotRequired, TypedDict

GRACE_S = 1.0  # from SIGTERM to SIGKILL: the whole stop stays under 2 s
SCAN_S = 0.5  # how often a finished command's session is checked for leftovers
PR_SET_PDEATHSIG = 1
TIOCSCTTY = 0x540E  # asm-generic/ioctls.h (x86, arm64, riscv)


class LaunchSpec(TypedDict):
    """The first line of stdin, as JSON (written by tracing/system/targets.py); fds are
    inherited from sikte-tui."""

    path: str
    argv: list[str]
    env: dict[str, str]
    uid: int
    gid: int
    groups: list[int]
    gate_r: int  # read end of the gate: a byte once the tracer watches the command
    err_w: int  # write end for an exec failure
    tty: int  # the command's pty (slave side)
    stdio: list[int]  # what becomes its fds 0, 1, 2
    master: int | None  # the pty's master side; None once closed (left running, then hung up)
    rt_sigaction: int  # this machine's syscall number (-1: unknown), see reset_signals
    ready_w: NotRequired[int]  # added here, before the fork


# -- the session of the command: its whole tree ----------------------------------------------

def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode(errors="replace")
    except OSError:
        return None
    # comm may hold spaces and parentheses: the fields after it start at the last ')'.
    return raw[raw.rindex(")") + 2:].split()


def _in_session(pid: int, sid: int) -> bool:
    fields = _stat_fields(pid)
    # fields: state, ppid, pgrp, session, ... ; zombies are already dead.
    return fields is not None and fields[0] not in ("Z", "X") and int(fields[3]) == sid


def session_members(sid: int) -> Iterator[int]:
    """The live processes of session sid: the command and every descendant that kept its
    session (changing process group keeps it; only setsid leaves)."""
    for name in os.listdir("/proc"):
        if name.isdigit() and _in_session(int(name), sid):
            yield int(name)


def signal_session(sid: int, sig: int) -> int:
    """Send sig to every live process of session sid; how many were signalled. Each is
    pinned with a pidfd and checked again, so a reused PID is never signalled."""
    sent = 0
    for pid in session_members(sid):
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            continue  # it exited since the scan
        try:
            if _in_session(pid, sid):
                signal.pidfd_send_signal(pidfd, sig)
                sent += 1
        except ProcessLookupError:
            pass  # it exited between the check and the signal: nothing to do
        finally:
            os.close(pidfd)
    return sent


# -- the child: becomes the command ------------------------------------------------------------

def _child(spec: LaunchSpec, parent: int) -> None:
    """In the forked child: a session and a terminal of its own, only its three standard
    fds, the user's credentials, a parent-death signal; then wait for the tracer and exec."""
    code = 127
    err_w = spec["err_w"]
    try:
        _prepare_child(spec, parent)
        # Ready: the launcher reports our pid only now, so none of the work above is traced.
        os.close(spec["ready_w"])
        # Wait until the tracer watches our pid; an empty read means it gave up.
        if not os.read(spec["gate_r"], 1):
            os._exit(1)
        os.close(spec["gate_r"])
        os.execve(spec["path"], spec["argv"], spec["env"])
    except OSError as err:
        code = 126 if err.errno in (errno.EACCES, errno.ENOEXEC, errno.EPERM) else 127
        os.write(err_w, f"{code} {err.strerror}".encode())
    finally:
        os._exit(code)


def reset_signals(rt_sigaction: int = -1) -> None:
    """Every signal disposition to its default (Python ignores SIGPIPE and SIGXFSZ, and an
    ignored signal stays ignored across exec) and an empty mask: the command starts as from
    a shell. SIGKILL and SIGSTOP cannot be changed. The C library keeps 32 and 33 for itself
    and its sigaction refuses them, yet one ignored by whoever started us would stay ignored
    in the command: those are reset with the raw call (`rt_sigaction`, its number)."""
    valid = signal.valid_signals()
    for sig in valid:
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):  # a number this kernel keeps for itself
            continue
    if rt_sigaction >= 0:
        libc = ctypes.CDLL(None, use_errno=True)
        default = (ctypes.c_ulong * 4)()  # struct sigaction: SIG_DFL, no flags, empty mask
        for number in range(1, signal.NSIG):
            if number not in valid and number not in (signal.SIGKILL, signal.SIGSTOP):
                libc.syscall(ctypes.c_long(rt_sigaction), ctypes.c_long(number),
                             ctypes.byref(default), None, ctypes.c_long(8))
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def _close_all_but(*keep: int) -> None:
    """Close every fd above 2 but `keep`: nothing of sikte-tui's (BPF and perf fds, the
    journal, its terminal) reaches the command."""
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, os.sysconf("SC_OPEN_MAX"))


def _prepare_child(spec: LaunchSpec, parent: int) -> None:
    os.setsid()
    libc = ctypes.CDLL(None, use_errno=True)
    # Our own pseudo-terminal becomes the controlling terminal: /dev/tty is it, never
    # the terminal sikte-tui was started from, so TIOCSTI cannot reach the invoker's shell.
    import fcntl

    fcntl.ioctl(spec["tty"], TIOCSCTTY, 0)
    for target, fd in enumerate(spec["stdio"]):
        os.dup2(fd, target)
    _close_all_but(spec["gate_r"], spec["err_w"], spec["ready_w"])
    os.set_inheritable(spec["err_w"], False)
    reset_signals(spec.get("rt_sigaction", -1))
    if spec["uid"] != os.getuid():
        os.setgroups(spec["groups"])
        os.setgid(spec["gid"])
        os.setuid(spec["uid"])
    # After setuid: a credential change clears the parent-death signal.
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the launcher died before the signal was armed
        os._exit(1)


# -- the launcher: watches the control pipe and the command ---------------------------------

class Launcher:
    def __init__(self, spec: LaunchSpec) -> None:
        self.spec = spec
        self.pid = 0
        self.pidfd: int | None = None
        self.status: int | None = None  # the command's wait status once reaped
        self.leaving = False
        self.kill_at: float | None = None  # when the session gets SIGKILL
        self.next_scan = 0.0
        self.control = b""

    def launch(self) -> None:
        parent = os.getpid()
        ready_r, self.spec["ready_w"] = os.pipe2(os.O_CLOEXEC)
        self.pid = os.fork()
        if self.pid == 0:
            _child(self.spec, parent)
        for fd in {self.spec["gate_r"], self.spec["err_w"], self.spec["tty"],
                   self.spec["ready_w"], *self.spec["stdio"]}:
            os.close(fd)
        os.read(ready_r, 1)  # EOF once the child is ready (or died preparing)
        os.close(ready_r)
        self.pidfd = os.pidfd_open(self.pid)
        _report(f"pid {self.pid}")

    def run(self) -> None:
        while True:
            readable = self._wait()
            if self.pidfd in readable:
                self._reap()
            if sys.stdin.fileno() in readable and not self._read_control():
                return
            master = self.spec["master"]
            if master is not None and master in readable:
                self._drain_terminal(master)
            if self.kill_at is not None and time.monotonic() >= self.kill_at:
                signal_session(self.pid, signal.SIGKILL)
                self.kill_at = time.monotonic() + GRACE_S  # again, for late forks
            if self._finished():
                return

    def _wait(self) -> list[int]:
        fds = [sys.stdin.fileno()] if not self.leaving else []
        if self.pidfd is not None:
            fds.append(self.pidfd)
        if self.leaving and self.spec["master"] is not None:
            fds.append(self.spec["master"])
        timeout = SCAN_S if self.kill_at is None else max(0.0, self.kill_at - time.monotonic())
        return select.select(fds, [], [], min(timeout, SCAN_S))[0]

    def _reap(self) -> None:
        _, self.status = os.waitpid(self.pid, 0)
        if self.pidfd is not None:
            os.close(self.pidfd)
        self.pidfd = None
        _report(f"exit {self.status}")

    def _read_control(self) -> bool:
        """Apply what sikte-tui asked; False once it is gone (EOF) and the tree is stopped."""
        data = os.read(sys.stdin.fileno(), 4096)
        if not data:
            self._stop(signal.SIGTERM)
            self._finish_stop()
            return False
        self.control += data
        while b"\n" in self.control:
            line, self.control = self.control.split(b"\n", 1)
            self._command(line.decode().split())
        return True

    def _command(self, words: list[str]) -> None:
        if words[:1] == ["kill"] and self.status is None:
            os.kill(self.pid, int(words[1]))  # not reaped yet: the pid is still ours
        elif words[:1] == ["stop"]:
            self._stop(int(words[1]))
        elif words[:1] == ["leave"]:
            self.leaving = True

    def _stop(self, sig: int) -> None:
        if self.kill_at is None:
            signal_session(self.pid, sig)
            self.kill_at = time.monotonic() + GRACE_S

    def _finish_stop(self) -> None:
        """sikte-tui is gone: nobody is left to wait for; end the tree here."""
        while self.kill_at is not None and any(session_members(self.pid)):
            if time.monotonic() >= self.kill_at:
                signal_session(self.pid, signal.SIGKILL)
                self.kill_at = time.monotonic() + 0.1
            time.sleep(0.02)
        if self.pidfd is not None:
            self._reap()

    def _drain_terminal(self, master: int) -> None:
        """Left running: the terminal stays open (no hangup) and its output goes nowhere."""
        try:
            if os.read(master, 65536):
                return
        except OSError:
            pass  # EIO: every process closed the terminal
        os.close(master)
        self.spec["master"] = None

    def _finished(self) -> bool:
        if self.status is None:
            return False
        if self.leaving and self.spec["master"] is None:
            return True  # nobody holds the terminal any more: nothing left to keep open
        if time.monotonic() < self.next_scan:
            return False
        self.next_scan = time.monotonic() + SCAN_S
        # Stop scanning once the session is empty: its number may then be reused.
        return not any(session_members(self.pid))


def _report(line: str) -> None:
    # sikte-tui may be gone (EPIPE); its end of the control pipe then tells us the rest.
    with contextlib.suppress(BrokenPipeError):
        os.write(sys.stdout.fileno(), f"{line}\n".encode())


def _read_spec() -> tuple[bytes, bytes]:
    """The first line of stdin, unbuffered: what follows it is read by select later."""
    data = b""
    while b"\n" not in data:
        chunk = os.read(sys.stdin.fileno(), 65536)
        if not chunk:
            return b"", b""
        data += chunk
    line, rest = data.split(b"\n", 1)
    return line, rest


def main() -> int:
    # Signals for sikte-tui's terminal never reach us (own session); a stray SIGPIPE must
    # not kill us before the tree is stopped.
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    line, rest = _read_spec()
    if not line:
        return 1
    launcher = Launcher(json.loads(line))
    launcher.control = rest
    try:
        launcher.launch()
    except OSError as err:
        _report(f"error {err.strerror}")
        return 1
    launcher.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
