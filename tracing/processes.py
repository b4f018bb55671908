"""The traced process tree: built from the kernel's fork, exec and exit events, with details
read from /proc while the process lives (comm, exe, command line, ABI)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from syscall_tables.abi import abi_of_pid
from tracing.model import ExitStatus, ProcessInfo, ProcEvent, ProcKind


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def _tgid_of(tid: int) -> int | None:
    status = _read(f"/proc/{tid}/status")
    if status is None:
        return None
    for line in status.splitlines():
        if line.startswith("Tgid:"):
            return int(line.split()[1])
    return None


def describe(pid: int, ppid: int = 0, comm: str = "", start_ts_ns: int = 0) -> ProcessInfo:
    """What /proc says of a process now; what it cannot say stays as given."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is not None:
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
    cmdline = _read(f"/proc/{pid}/cmdline") or ""
    try:
        exe = str(Path(f"/proc/{pid}/exe").readlink())
    except OSError:
        exe = ""
    return ProcessInfo(
        pid=pid,
        ppid=ppid,
        comm=comm,
        exe=exe,
        cmdline=tuple(a for a in cmdline.split("\0") if a),
        abi=abi_of_pid(pid),
        start_ts_ns=start_ts_ns,
    )


class ProcessTracker:
    """Processes seen in this trace, keyed by pid; knows which are still alive."""

    def __init__(self, container_of: Callable[[int], str] = lambda _pid: "") -> None:
        """`container_of(pid)`: the label of a live process's container (or unit)."""
        self._container_of = container_of
        self.processes: dict[int, ProcessInfo] = {}
        self.alive: set[int] = set()
        self._threads: dict[int, set[int]] = {}
        # The last snapshot() and the pids changed since: a tick with fork/exec/exit events
        # re-describes those processes only.
        self._shown: dict[int, ProcessInfo] = {}
        self._dirty: set[int] = set()

    def add_root(self, pid: int, start_ts_ns: int) -> None:
        self._dirty.add(pid)
        self.processes[pid] = describe(pid, start_ts_ns=start_ts_ns).replace(
            container=self._container_of(pid))
        self.alive.add(pid)

    def apply(self, events: Sequence[ProcEvent], follow: bool) -> None:
        for e in events:
            self._dirty.update((e.pid, e.tid, e.ppid))
            if e.kind == ProcKind.FORK:
                self._fork(e, follow)
            elif e.kind == ProcKind.EXEC:
                self._exec(e)
            elif e.kind == ProcKind.EXIT:
                self._exit(e)

    def _fork(self, e: ProcEvent, follow: bool) -> None:
        # The kernel reports a task id: a new thread of the parent, or a new process.
        tgid = _tgid_of(e.tid)
        if tgid == e.ppid:
            self._threads.setdefault(e.ppid, set()).add(e.tid)
            return
        if not follow:
            return
        info = describe(e.tid, ppid=e.ppid, comm=e.comm, start_ts_ns=e.ts_ns)
        if tgid is None:  # gone already: its exit event follows
            info = info.replace(ppid=e.ppid, comm=e.comm, abi=self._abi_of(e.ppid))
        parent = self.processes.get(e.ppid)
        # A child starts in its parent's cgroup: ask only when the parent is unknown.
        container = parent.container if parent else self._container_of(e.tid)
        self.processes[e.tid] = info.replace(container=container)
        self.alive.add(e.tid)

    def _abi_of(self, pid: int) -> str:
        parent = self.processes.get(pid)
        return parent.abi if parent else ""

    def _exec(self, e: ProcEvent) -> None:
        old = self.processes.get(e.pid) or ProcessInfo(pid=e.pid, start_ts_ns=e.ts_ns)
        now = describe(e.pid, ppid=old.ppid, comm=e.comm, start_ts_ns=old.start_ts_ns)
        exe = now.exe or e.filename
        self.processes[e.pid] = now.replace(exe=exe, abi=now.abi or old.abi,
                                            container=old.container)
        self.alive.add(e.pid)

    def _exit(self, e: ProcEvent) -> None:
        if e.tid != e.pid and self.processes.pop(e.tid, None) is not None:
            # A thread that ended before its fork event could be told from a process.
            self.alive.discard(e.tid)
            self._threads.setdefault(e.pid, set()).add(e.tid)
        if not e.process_gone:
            return
        info = self.processes.get(e.pid) or ProcessInfo(pid=e.pid)
        # The comm at exit is the last one (a process may rename itself without exec).
        self.processes[e.pid] = info.replace(
            comm=e.comm or info.comm, exit_ts_ns=e.ts_ns,
            exit=ExitStatus.from_wait_status(e.status),
        )
        self.alive.discard(e.pid)

    def set_exit(self, pid: int, status: ExitStatus, ts_ns: int) -> None:
        """The launched command's status from waitpid, which beats what the kernel saw."""
        self._dirty.add(pid)
        info = self.processes.get(pid) or ProcessInfo(pid=pid)
        self.processes[pid] = info.replace(exit=status, exit_ts_ns=info.exit_ts_ns or ts_ns)
        self.alive.discard(pid)

    def note_threads(self, pid_tids: Iterable[tuple[int, int]]) -> None:
        for pid, tid in pid_tids:
            if pid != tid:
                threads = self._threads.setdefault(pid, set())
                if tid not in threads:
                    threads.add(tid)
                    self._dirty.add(pid)

    def prune_vanished(self) -> None:
        """A backstop for lost exit events: forget live processes that /proc no longer has."""
        for pid in list(self.alive):
            if not Path(f"/proc/{pid}").exists():
                self._dirty.add(pid)
                self.alive.discard(pid)
                info = self.processes.get(pid)
                if info is not None and info.exit is None:
                    self.processes[pid] = info.replace(exit=ExitStatus())

    def snapshot(self) -> dict[int, ProcessInfo]:
        """The processes with their threads: the same dict while nothing changed, else a copy
        with the changed processes replaced (a handed-out dict is never mutated)."""
        if not self._dirty:
            return self._shown
        shown = dict(self._shown)
        for pid in self._dirty:
            info = self.processes.get(pid)
            if info is not None:
                shown[pid] = info.replace(threads=frozenset(self._threads.get(pid, ())))
        self._shown, self._dirty = shown, set()
        return shown
