"""Textual's Linux driver, made to survive losing its terminal.

When the terminal goes away (the window is closed, tmux or ssh dies), the kernel sends SIGHUP
and every later write to it fails with EIO. Textual's writer thread dies on the first such
error, and the next 30 writes fill its queue: the app then hangs for ever in the middle of
quitting, and its input thread spins on the dead terminal. Here a lost terminal is only
noted: later output is dropped, so quitting (which keeps the session) runs to the end."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import termios
import threading
from typing import IO, Any

from textual.drivers.linux_driver import LinuxDriver


class _TerminalFile:
    """The driver's output file: a write that fails because the terminal is gone is dropped
    (and so is every later one), instead of killing the writer thread."""

    def __init__(self, file: IO[str]) -> None:
        self._file = file
        self.lost = threading.Event()

    def write(self, text: str) -> int:
        if not self.lost.is_set():
            try:
                return self._file.write(text)
            except (OSError, ValueError):  # EIO on a hung-up tty; ValueError once closed
                self.lost.set()
        return len(text)

    def flush(self) -> None:
        if not self.lost.is_set():
            try:
                self._file.flush()
            except (OSError, ValueError):
                self.lost.set()

    def fileno(self) -> int:
        return self._file.fileno()

    def isatty(self) -> bool:
        return True


class TerminalDriver(LinuxDriver):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self._file is None:  # Textual draws on sys.__stderr__, None without a terminal
            raise RuntimeError("sikte-tui needs a terminal on standard error to draw on")
        self._out = _TerminalFile(self._file)
        self._file = self._out  # type: ignore[assignment]  # what the writer thread writes to

    @property
    def terminal_lost(self) -> bool:
        return self._out.lost.is_set()

    def hung_up(self) -> bool:
        """Whether the terminal was hung up (closed), as opposed to a SIGHUP sent with `kill`:
        the kernel answers EIO to every ioctl on a hung-up terminal."""
        try:
            termios.tcgetattr(self.fileno)
        except termios.error as err:
            return bool(err.args[0] == errno.EIO)
        return False

    def terminal_gone(self) -> None:
        """After a hangup: drop all further output, and put /dev/null in place of the dead
        terminal on fds 0-2 (the input thread then reads end-of-file, and the lines printed
        on exit go nowhere instead of failing). A redirected stdout is left alone."""
        self._out.lost.set()
        try:
            terminal = os.fstat(self.fileno).st_rdev
        except OSError:
            return
        null = os.open(os.devnull, os.O_RDWR)
        try:
            for fd in (0, 1, 2):
                with contextlib.suppress(OSError):
                    st = os.fstat(fd)
                    if stat.S_ISCHR(st.st_mode) and st.st_rdev == terminal:
                        os.dup2(null, fd)
        finally:
            os.close(null)

    def write(self, data: str) -> None:
        writer = self._writer_thread
        if self.terminal_lost or writer is None or not writer.is_alive():
            return  # nothing can show it; a full queue would block the app for ever
        super().write(data)
