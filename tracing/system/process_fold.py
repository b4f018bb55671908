"""Bounding the processes a trace shows under process churn (issue 16).

A shell loop starts a process every half millisecond; a build, millions in an hour. The live
model keeps the exited ones one by one up to KEPT_EXITED of them; past that the ones that
exited first are folded into one entry, pid FOLDED_PID, "(N exited processes)": the tracer's
memory stays bounded however long the trace runs, and every process is still counted once.

Nothing is lost on disk: each exit is in the journal's process events (with its status) as
it happens, and a process is folded only FOLD_DELAY_S after its exit, so that the journal,
which writes the processes of its last snapshot at most FLUSH_INTERVAL_S (0.5 s) apart, has
written its final row first. A pid that the kernel gives to a new process while the old one
is still shown folds the old one at once (its final row is in the journal by the same
delay, or was never shown apart: either way it is counted).
"""

from __future__ import annotations

from collections.abc import Callable

# Exited processes shown one by one (a ProcessInfo with its strings: about 1 KB each, in the
# tracker and in the journal's last-written copy).
KEPT_EXITED = 5_000
# How long after its exit a process is kept apart at least: the journal writes the processes
# of its last snapshot every 0.5 s; this leaves it ten times that.
FOLD_DELAY_S = 5.0


class ExitedOrder:
    """The exited processes still shown apart, oldest exit first, and which may be folded
    now (past the bound, exited long enough ago)."""

    def __init__(self, clock: Callable[[], float], kept: int = KEPT_EXITED,
                 delay_s: float = FOLD_DELAY_S) -> None:
        self._clock = clock
        self.kept = kept
        self.delay_s = delay_s
        self._since: dict[int, float] = {}  # pid -> when its exit was noted (in that order)

    def __len__(self) -> int:
        return len(self._since)

    def __contains__(self, pid: object) -> bool:
        return pid in self._since

    def exited(self, pid: int) -> None:
        if pid not in self._since:
            self._since[pid] = self._clock()

    def forget(self, pid: int) -> None:
        """Not to be folded (any more): folded already, or shown again (a phantom)."""
        self._since.pop(pid, None)

    def due(self) -> list[int]:
        """The oldest exited processes past the bound whose exit is FOLD_DELAY_S old."""
        excess = len(self._since) - self.kept
        if excess <= 0:
            return []
        deadline = self._clock() - self.delay_s
        due: list[int] = []
        for pid, since in self._since.items():
            if len(due) >= excess or since > deadline:
                break
            due.append(pid)
        for pid in due:
            del self._since[pid]
        return due
