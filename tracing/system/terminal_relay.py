"""The launched command's terminal: a pseudo-terminal of its own, never sikte-tui's.

A command given the invoking terminal could push keys into it (TIOCSTI) that root's shell
runs after sikte-tui exits, or read the keys meant for the TUI. So the command always gets
a new pty as its controlling terminal (see tracing/system/reaper.py), and each of its standard fds
is either the caller's explicit choice, or ours when ours is not a terminal (a pipe or a
file passes through unchanged, so the command behaves as it would untraced), or the pty.
Under `record` its output is relayed to our terminal and our keys are forwarded to it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import stat
import struct
import termios
import threading
from collections.abc import Callable, Iterator

WriteOutput = Callable[[bytes], None]
EOF_KEY = b"\x04"  # VEOF at the start of a line: the command reads end of file


def is_terminal(fd: int) -> bool:
    try:
        return stat.S_ISCHR(os.fstat(fd).st_mode) and os.isatty(fd)
    except OSError:
        return False


def usable(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def is_foreground(fd: int) -> bool:
    """True when we may read the terminal fd and change its modes (not a background job)."""
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False


class CommandTerminal:
    """A pseudo-terminal for one launched command. `like` is a terminal whose modes and size
    the pty starts with (ours, so line editing and colours behave as the person expects)."""

    def __init__(self, like: int | None = None) -> None:
        self.master, self.slave = os.openpty()  # both close-on-exec
        self.like = like if like is not None and is_terminal(like) else None
        if self.like is not None:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(self.slave, termios.TCSANOW, termios.tcgetattr(self.like))
            self.sync_size()
        self._stop_r, self._stop_w = os.pipe2(os.O_CLOEXEC)
        self._output: threading.Thread | None = None

    def command_fds(self, explicit: tuple[int | None, int | None, int | None]
                    ) -> tuple[int, int, int]:
        """fds 0, 1, 2 for the command: the explicit one, else ours unless it is a terminal
        (or closed), else the pty."""
        chosen = []
        for ours, fd in enumerate(explicit):
            if fd is None:
                fd = ours if usable(ours) and not is_terminal(ours) else self.slave
            chosen.append(self.slave if is_terminal(fd) else fd)
        return chosen[0], chosen[1], chosen[2]

    def close_slave(self) -> None:
        """Once the command holds the pty, our copy goes: the master then reads EIO when
        the command and all its children have closed it."""
        if self.slave >= 0:
            os.close(self.slave)
            self.slave = -1

    def sync_size(self, _signum: int = 0, _frame: object = None) -> None:
        """Copy the window size of `like` to the pty (also a SIGWINCH handler: the kernel
        then sends SIGWINCH to the command)."""
        if self.like is None:
            return
        with contextlib.suppress(OSError):
            size = fcntl.ioctl(self.like, termios.TIOCGWINSZ, struct.pack("HHHH", 0, 0, 0, 0))
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, size)

    # -- output: the command's terminal to us --------------------------------------------------

    def relay_output(self, write: WriteOutput | None) -> None:
        """Read what the command writes to its terminal, on a thread, until every process
        has closed it; `write` gets each chunk (None: drained and dropped, so a command
        writing to /dev/tty never blocks). The thread closes the master at the end."""
        self._output = threading.Thread(target=self._read_output, args=(write,), daemon=True,
                                        name="sikte-terminal-output")
        self._output.start()

    def _read_output(self, write: WriteOutput | None) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: the command and all its children closed the terminal
                break
            if not data:
                break
            if write is not None:
                write(data)
        os.close(self.master)

    def wait_output(self, timeout: float) -> None:
        """Let the last output through before the summary is printed."""
        if self._output is not None:
            self._output.join(timeout)

    # -- input: our keys to the command ---------------------------------------------------------

    def forward_input(self, fd: int) -> None:
        """Forward what fd (our terminal) reads to the command, on a thread, until `close`."""
        threading.Thread(target=self._forward, args=(fd,), daemon=True,
                         name="sikte-terminal-input").start()

    def _forward(self, fd: int) -> None:
        while True:
            readable = select.select([fd, self._stop_r], [], [])[0]
            if self._stop_r in readable:
                return
            try:
                data = os.read(fd, 4096)
                if not data:
                    return
                write_all(self.master, data)
            except OSError:  # our terminal or the command's went away
                return

    def send_eof(self) -> None:
        """The command reads end of file from its terminal (we have no input to give)."""
        with contextlib.suppress(OSError):
            os.write(self.master, EOF_KEY)

    def close(self) -> None:
        """Stop forwarding input (the output relay ends by itself)."""
        with contextlib.suppress(OSError):
            os.write(self._stop_w, b"x")
        self.close_slave()


def write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


@contextlib.contextmanager
def raw_mode(fd: int) -> Iterator[None]:
    """Our terminal in raw mode while keys go to the command (Ctrl+C included: the command's
    terminal turns it into SIGINT for the command, as under ssh or script); restored on every
    way out of the block."""
    saved = termios.tcgetattr(fd)
    raw = termios.tcgetattr(fd)
    raw[0] &= ~(termios.BRKINT | termios.ICRNL | termios.INPCK | termios.ISTRIP | termios.IXON)
    raw[2] = (raw[2] & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
    raw[3] &= ~(termios.ECHO | termios.ICANON | termios.IEXTEN | termios.ISIG)
    raw[6][termios.VMIN], raw[6][termios.VTIME] = 1, 0
    termios.tcsetattr(fd, termios.TCSAFLUSH, raw)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSAFLUSH, saved)
