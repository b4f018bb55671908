"""What to trace: running PIDs, and commands launched stopped before exec.

A launched command is forked by its launcher (tracing/system/reaper.py), then waits on a pipe until
the tracer has put its pid in the target map, so its own execve is traced. Under sudo it
runs as the invoking user. A PID is bound to the process that was checked (BoundPid).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from syscall_tables import host_arch, syscall_number
from tracing.boundary.userfiles import invoking_user
from tracing.errors import UserError
from tracing.system.reaper import LaunchSpec
from tracing.system.terminal_relay import CommandTerminal

REAPER = str(Path(__file__).with_name("reaper.py"))

PF_KTHREAD = 0x00200000  # from include/linux/sched.h; stable since 2.6
_STAT_MAX = 4096  # /proc/PID/stat: 52 numbers and a 15-byte comm fit many times over


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read(_STAT_MAX)
    except OSError:
        return None
    # comm is the process's choice: any bytes (not UTF-8), spaces and parentheses. The
    # kernel's fields after it start at the last ')' and are ASCII.
    end = raw.rfind(b")")
    return raw[end + 2 :].decode("ascii", errors="replace").split() if end >= 0 else None


def check_pid(pid: int) -> None:
    """Raise UserError unless pid is a live user-space process."""
    fields = _stat_fields(pid) if pid > 0 else None
    if fields is None:
        raise UserError(f"no process with PID {pid}; pick a running one (ps -e lists them)")
    state, flags = fields[0], int(fields[6])
    if flags & PF_KTHREAD:
        raise UserError(f"PID {pid} is a kernel thread, which makes no syscalls; pick a process")
    if state in ("Z", "X"):
        raise UserError(f"PID {pid} has already exited; pick a running process")


class BoundPid:
    """A PID checked once and pinned to that process: a pidfd and the start time (field 22
    of /proc/PID/stat), so a number reused by another process is never taken for it."""

    def __init__(self, pid: int) -> None:
        check_pid(pid)
        self.pid = pid
        try:
            self._pidfd: int | None = os.pidfd_open(pid)
        except ProcessLookupError:
            raise self._gone() from None
        self.start_time = _start_time(pid)
        if self.start_time is None:
            raise self._gone()

    def verify(self) -> None:
        """Raise UserError unless the process checked is still the one with this number."""
        if self._pidfd is None or self.start_time is None:
            raise self._gone()
        try:
            signal.pidfd_send_signal(self._pidfd, 0)  # fails once that process has exited
        except ProcessLookupError:
            raise self._gone() from None
        fields = _stat_fields(self.pid)
        if _start_time(self.pid) != self.start_time or fields is None or fields[0] in "ZX":
            raise self._gone()

    def close(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None

    def _gone(self) -> UserError:
        return UserError(f"PID {self.pid} exited before tracing started; pick a running "
                         "process (ps -e lists them)")


def _start_time(pid: int) -> int | None:
    fields = _stat_fields(pid)
    # Field 22 of the whole line is the 20th after comm (fields[0] is field 3).
    return int(fields[19]) if fields is not None and len(fields) > 19 else None


@dataclass(frozen=True)
class RunAs:
    uid: int
    gid: int
    name: str
    home: str

    def groups(self) -> list[int]:
        """Supplementary groups: the user's own, or only its gid for a uid without a name."""
        if self.name == str(self.uid):
            return [self.gid]
        return os.getgrouplist(self.name, self.gid)


def run_as(user: str | None) -> RunAs:
    """Who a launched command runs as: --user, else the invoking user (the sudo caller)."""
    if user is not None:
        try:
            entry = pwd.getpwnam(user) if not user.isdigit() else pwd.getpwuid(int(user))
        except KeyError:
            raise UserError(f"no user named {user!r}; give a login name or a uid") from None
        return RunAs(entry.pw_uid, entry.pw_gid, entry.pw_name, entry.pw_dir)
    owner = invoking_user()
    try:
        name = pwd.getpwuid(owner.uid).pw_name
    except KeyError:  # a uid with no passwd entry (nobody-like test users)
        name = str(owner.uid)
    return RunAs(owner.uid, owner.gid, name, str(owner.home))


# What a command run as another user keeps of our environment, as `sudo -u` keeps it: the
# terminal, the locale and the time zone, never what root's own shell may hold (tokens,
# credentials, library paths).
KEPT_FOR_ANOTHER_USER = ("TERM", "COLORTERM", "LANG", "LANGUAGE", "TZ", "PATH", "DISPLAY",
                         "WAYLAND_DISPLAY", "NO_COLOR")


def launch_environment(user: RunAs, environ: Mapping[str, str], uid: int) -> dict[str, str]:
    """The launched command's environment. Run as ourselves, or as the sudo caller (whose
    environment this is, through sudo), it is ours, with the user's HOME, USER and LOGNAME;
    run as anyone else (--user), only KEPT_FOR_ANOTHER_USER and LC_* pass."""
    if user.uid == uid:
        return dict(environ)
    if str(user.uid) == environ.get("SUDO_UID"):
        env = dict(environ)
    else:
        env = {k: v for k, v in environ.items()
               if k in KEPT_FOR_ANOTHER_USER or k.startswith("LC_")}
        env.setdefault("PATH", os.defpath)
    env.update(HOME=user.home, USER=user.name, LOGNAME=user.name)
    return env


def resolve_command(argv: Sequence[str]) -> str:
    """The executable path for argv[0], or UserError with a shell's exit code (127, 126)."""
    if not argv:
        raise UserError("no command given after '--'; for example: sikte-tui record -- ls -l")
    name = argv[0]
    path = name if "/" in name else shutil.which(name)
    if path is None or not os.path.exists(path):
        raise UserError(f"{name}: command not found; check the name and PATH", exit_code=127)
    if os.path.isdir(path) or not os.access(path, os.X_OK):
        raise UserError(f"{name}: permission denied (not an executable file)", exit_code=126)
    return path


class LaunchedCommand:
    """A command started stopped before exec by its launcher (tracing/system/reaper.py), in a
    session and on a terminal of its own; `release()` lets it exec. The launcher ends the
    command's whole tree when we stop it, and when we go away, even on kill -9."""

    def __init__(self, argv: Sequence[str], user: RunAs, terminal: CommandTerminal,
                 stdio: tuple[int | None, int | None, int | None] = (None, None, None)
                 ) -> None:
        self.argv = list(argv)
        self.path = resolve_command(argv)
        self.user = user
        self.terminal = terminal
        self.returncode: int | None = None  # wait(2)-style status once reaped
        self._ended = threading.Event()
        gate_r, self._gate_w = os.pipe2(os.O_CLOEXEC)
        self._err_r, err_w = os.pipe2(os.O_CLOEXEC)
        try:
            self._launcher = self._spawn(gate_r, err_w, terminal.command_fds(stdio))
        finally:
            os.close(gate_r)
            os.close(err_w)
        self.pid = self._read_pid()
        threading.Thread(target=self._read_status, daemon=True, name="sikte-reaper").start()

    def _spawn(self, gate_r: int, err_w: int, stdio: tuple[int, int, int]
               ) -> subprocess.Popen[bytes]:
        # Our own 0, 1, 2 are the launcher's pipes there: pass copies under other numbers.
        copies = [os.dup(fd) for fd in stdio if fd < 3]
        moved = iter(copies)
        stdio_fds = [fd if fd >= 3 else next(moved) for fd in stdio]
        spec: LaunchSpec = {
            "path": self.path, "argv": self.argv, "env": self._environment(),
            "uid": self.user.uid, "gid": self.user.gid, "groups": self.user.groups(),
            "gate_r": gate_r, "err_w": err_w, "tty": self.terminal.slave,
            "stdio": stdio_fds, "master": self.terminal.master,
            "rt_sigaction": _rt_sigaction_number(),
        }
        fds = {gate_r, err_w, self.terminal.slave, self.terminal.master, *stdio_fds}
        try:
            # Its own session: the signals of our terminal (Ctrl+C, hangup) never reach it.
            # Its stdout is a pipe and its stderr /dev/null: it holds none of our streams.
            launcher = subprocess.Popen(
                [sys.executable, "-I", "-S", REAPER], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, pass_fds=tuple(fds),
                start_new_session=True,
            )
        finally:
            for fd in copies:
                os.close(fd)
        assert launcher.stdin is not None
        launcher.stdin.write(json.dumps(spec).encode() + b"\n")
        launcher.stdin.flush()
        return launcher

    def _environment(self) -> dict[str, str]:
        return launch_environment(self.user, os.environ, os.getuid())

    def _read_pid(self) -> int:
        assert self._launcher.stdout is not None
        words = self._launcher.stdout.readline().decode().split(maxsplit=1)
        if words[:1] != ["pid"]:
            reason = words[1].strip() if words[:1] == ["error"] else "it ended at once"
            raise UserError(f"{self.argv[0]}: could not start ({reason})", exit_code=1)
        return int(words[1])

    def _read_status(self) -> None:
        assert self._launcher.stdout is not None
        for line in self._launcher.stdout:
            words = line.decode().split()
            if words[:1] == ["exit"]:
                self.returncode = int(words[1])
                break
        self._ended.set()
        self._launcher.wait()  # it ends once the tree is gone: no zombie left

    def release(self) -> None:
        """Let the child exec; raises UserError if the exec failed."""
        with contextlib.suppress(BrokenPipeError):  # it died preparing: its error says why
            os.write(self._gate_w, b"g")
        os.close(self._gate_w)
        message = os.read(self._err_r, 512).decode()
        os.close(self._err_r)
        if message:
            code, _, reason = message.partition(" ")
            self.wait()
            raise UserError(f"{self.argv[0]}: cannot execute ({reason}); check that it is a "
                            "program for this machine", exit_code=int(code))

    def poll(self) -> int | None:
        """The wait status once the command has ended, else None (never blocks)."""
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        self._ended.wait(timeout)
        return self.returncode

    def kill(self, sig: int = signal.SIGTERM) -> None:
        """Signal the command itself (its launcher knows whether it was reaped)."""
        self._tell(f"kill {int(sig)}")

    def stop_tree(self, sig: int = signal.SIGTERM) -> None:
        """Signal every process of the command's session; SIGKILL follows after a short
        grace (tracing/system/reaper.py GRACE_S) for those still there."""
        self._tell(f"stop {int(sig)}")

    def leave_running(self) -> None:
        """We are quitting and the person chose to leave the command running."""
        self._tell("leave")

    def finish(self) -> None:
        """We are done with the command: whatever is left of its tree is stopped."""
        with contextlib.suppress(OSError):
            assert self._launcher.stdin is not None
            self._launcher.stdin.close()

    def _tell(self, line: str) -> None:
        assert self._launcher.stdin is not None
        with contextlib.suppress(OSError, ValueError):  # the launcher already ended
            self._launcher.stdin.write(line.encode() + b"\n")
            self._launcher.stdin.flush()

    def abandon(self) -> None:
        """Called when tracing could not start: end the stopped child."""
        with contextlib.suppress(OSError):
            os.close(self._gate_w)  # it reads EOF at the gate and exits
        self.wait(5)
        self.finish()


def _rt_sigaction_number() -> int:
    """This machine's rt_sigaction, for the launcher's reset of the C library's own signals
    (the launcher imports nothing of ours); -1 where the table does not know it."""
    try:
        number = syscall_number("rt_sigaction", host_arch())
    except ValueError:  # an architecture without a table
        return -1
    return -1 if number is None else number
