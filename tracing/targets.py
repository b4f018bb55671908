"""What to trace: running PIDs, and commands launched stopped before exec.

A launched command is forked, then waits on a pipe until the tracer has put its pid in the
target map, so its own execve is traced. Under sudo it runs as the invoking user.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pwd
import shutil
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tracing.errors import UserError

PF_KTHREAD = 0x00200000  # from include/linux/sched.h; stable since 2.6


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm may hold spaces and parentheses: the fields after it start at the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def check_pid(pid: int) -> None:
    """Raise UserError unless pid is a live user-space process."""
    fields = _stat_fields(pid)
    if pid <= 0 or fields is None:
        raise UserError(f"no process with PID {pid}; pick a running one (ps -e lists them)")
    state, flags = fields[0], int(fields[6])
    if flags & PF_KTHREAD:
        raise UserError(f"PID {pid} is a kernel thread, which makes no syscalls; pick a process")
    if state in ("Z", "X"):
        raise UserError(f"PID {pid} has already exited; pick a running process")


@dataclass(frozen=True)
class RunAs:
    uid: int
    gid: int
    name: str
    home: str


def run_as(user: str | None) -> RunAs:
    """Who a launched command runs as: --user, else the sudo caller, else ourselves."""
    if user is not None:
        try:
            entry = pwd.getpwnam(user) if not user.isdigit() else pwd.getpwuid(int(user))
        except KeyError:
            raise UserError(f"no user named {user!r}; give a login name or a uid") from None
        return RunAs(entry.pw_uid, entry.pw_gid, entry.pw_name, entry.pw_dir)
    uid, gid = os.getuid(), os.getgid()
    if uid == 0 and os.environ.get("SUDO_UID", "").isdigit():
        uid = int(os.environ["SUDO_UID"])
        gid = int(os.environ.get("SUDO_GID", uid))
    try:
        entry = pwd.getpwuid(uid)
        return RunAs(uid, gid, entry.pw_name, entry.pw_dir)
    except KeyError:  # a uid with no passwd entry (nobody-like test users)
        return RunAs(uid, gid, str(uid), "/")


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
    """A child process created stopped before exec; `release()` lets it exec."""

    def __init__(
        self,
        argv: Sequence[str],
        user: RunAs,
        stdin: int | None = None,
        stdout: int | None = None,
        stderr: int | None = None,
    ) -> None:
        self.argv = list(argv)
        self.path = resolve_command(argv)
        self.user = user
        self.returncode: int | None = None  # wait(2)-style status once reaped
        gate_r, self._gate_w = os.pipe()
        self._err_r, err_w = os.pipe2(os.O_CLOEXEC)
        self.pid = os.fork()
        if self.pid == 0:  # child: never returns
            os.close(self._gate_w)
            os.close(self._err_r)
            self._child(gate_r, err_w, stdin, stdout, stderr)
        os.close(gate_r)
        os.close(err_w)

    def _child(self, gate_r: int, err_w: int, stdin: int | None, stdout: int | None,
               stderr: int | None) -> None:
        code = 127
        try:
            # Wait until the tracer watches our pid; an empty read means it gave up.
            if not os.read(gate_r, 1):
                code = 1
                return
            os.close(gate_r)
            for fd, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
                if fd is not None and fd != target:
                    os.dup2(fd, target)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)
            env = dict(os.environ)
            if self.user.uid != os.getuid():
                os.setgroups(os.getgrouplist(self.user.name, self.user.gid)
                             if self.user.name != str(self.user.uid) else [self.user.gid])
                os.setgid(self.user.gid)
                os.setuid(self.user.uid)
                env.update(HOME=self.user.home, USER=self.user.name, LOGNAME=self.user.name)
            os.execve(self.path, self.argv, env)
        except OSError as err:
            code = 126 if err.errno in (errno.EACCES, errno.ENOEXEC, errno.EPERM) else 127
            os.write(err_w, f"{code} {err.strerror}".encode())
        finally:
            os._exit(code)

    def release(self) -> None:
        """Let the child exec; raises UserError if the exec failed."""
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
        """The wait status once the child has ended, else None (never blocks)."""
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                return self.returncode
            if pid:
                self.returncode = status
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            _, self.returncode = os.waitpid(self.pid, 0)
        return self.returncode

    def kill(self, sig: int = signal.SIGTERM) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def abandon(self) -> None:
        """Called when tracing could not start: end the stopped child."""
        with contextlib.suppress(OSError):
            os.close(self._gate_w)
        self.kill(signal.SIGKILL)
        self.wait()
