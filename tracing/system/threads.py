"""The threads of one traced process: which run, which ended, and each one's name.

Names come from /proc/PID/task/TID/comm at attach, the creator's name at thread creation and
the kernel's task_rename events after that. A process may make threads without end (a thread
per request, a storm of thousands): what is kept is bounded, and what is not is counted.
"""

from __future__ import annotations

import os

from tracing.boundary.untrusted_files import read_proc

# Names kept per process: every running thread's up to this many (the kernel bounds how many
# run), ended threads' while there is room. Past it a new thread's name is not kept (it shows
# under its process's name) and is counted.
NAMES_MAX = 4096
# Ended threads kept per process (their rows still show their names); the oldest are
# forgotten past this, and counted only in `seen`.
ENDED_KEPT = 4096
# A thread's name: the kernel's TASK_COMM_LEN (16) with its NUL; read with room to spare.
COMM_MAX = 64
# Threads read from /proc at attach (a process with more has its others found as they call).
ATTACH_MAX = NAMES_MAX
# Thread ids listed when live threads are checked against /proc (the kernel's default
# threads-max per user is far above; past this the check ends no thread).
LIST_MAX = 1 << 16


def read_thread_comm(pid: int, tid: int) -> str | None:
    """/proc/PID/task/TID/comm without its newline, bounded; None when the thread is gone."""
    content = read_proc(pid, f"task/{tid}/comm", COMM_MAX)
    if content is None:
        return None
    return content.data.decode(errors="replace").removesuffix("\n")


def list_tasks(pid: int, limit: int = ATTACH_MAX) -> list[int] | None:
    """The process's thread ids (its own included), at most `limit` of them; None when it
    is gone. /proc/PID/task is the kernel's: its entries are numbers, never links."""
    try:
        with os.scandir(f"/proc/{pid}/task") as entries:
            tids: list[int] = []
            for entry in entries:
                if entry.name.isdigit():
                    tids.append(int(entry.name))
                    if len(tids) >= limit:
                        break
            return tids
    except OSError:
        return None


def thread_exists(pid: int, tid: int) -> bool:
    """Whether tid is a running thread of pid (an ended thread's directory goes with it)."""
    return os.path.isdir(f"/proc/{pid}/task/{tid}")


class ProcessThreads:
    """The threads of one process other than its main one (whose name is the process's)."""

    __slots__ = ("ended", "live", "names", "names_dropped", "pid", "seen")

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.live: set[int] = set()
        self.ended: dict[int, None] = {}  # insertion-ordered: the oldest ended first
        self.names: dict[int, str] = {}
        self.seen = 0
        self.names_dropped = 0

    def __len__(self) -> int:
        """The threads known: running or ended (not forgotten)."""
        return len(self.live) + len(self.ended)

    def __contains__(self, tid: object) -> bool:
        return tid in self.live or tid in self.ended

    def start(self, tid: int, name: str | None) -> bool:
        """A thread that runs (made, or found running); False when it was known already."""
        if tid == self.pid or tid in self.live:
            return False
        if tid in self.ended:  # the id reused by a new thread
            del self.ended[tid]
        else:
            self.seen += 1
        self.live.add(tid)
        if name is not None:
            self.rename(tid, name)
        return True

    def end(self, tid: int, name: str | None = None) -> None:
        """A thread ended (one not known before is counted as seen)."""
        if tid == self.pid:
            return
        if tid in self.ended:  # ended already (found missing from /proc): its last name
            if name:
                self.rename(tid, name)
            return
        if tid in self.live:
            self.live.discard(tid)
        else:
            self.seen += 1
        self.ended[tid] = None
        if name:
            self.rename(tid, name)
        while len(self.ended) > ENDED_KEPT:
            self._forget_oldest()

    def end_all(self) -> None:
        """Every thread but the main one ended (an exec, the process's exit)."""
        for tid in list(self.live):
            self.end(tid)

    def rename(self, tid: int, name: str) -> None:
        """The thread's name from now on; not kept (counted) when no room can be made."""
        if tid in self.names:
            self.names[tid] = name
            return
        while len(self.names) >= NAMES_MAX and self.ended:
            if self._forget_oldest() == tid:  # an ended thread, forgotten to make room
                return
        if len(self.names) >= NAMES_MAX:
            self.names_dropped += 1
            return
        self.names[tid] = name

    def _forget_oldest(self) -> int:
        tid = next(iter(self.ended))
        del self.ended[tid]
        self.names.pop(tid, None)
        return tid

    def sync(self, running: list[int], complete: bool = True) -> tuple[set[int], set[int]]:
        """Live threads from a listing of /proc/PID/task (a backstop for lost events):
        those listed and not known run; with a `complete` listing, those not listed ended.
        Returns (ended, started)."""
        listed = set(running)
        listed.discard(self.pid)
        ended = self.live - listed if complete else set()
        for tid in ended:
            self.end(tid)
        started = listed - self.live
        for tid in started:
            self.start(tid, read_thread_comm(self.pid, tid))
        return ended, started

    def refresh_names(self) -> bool:
        """The running threads' names read again (their renames may have been lost);
        True when one changed."""
        changed = False
        for tid in list(self.live):
            name = read_thread_comm(self.pid, tid)
            if name is not None and self.names.get(tid) != name:
                self.rename(tid, name)
                changed = True
        return changed
