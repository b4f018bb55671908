"""The traced process tree: built from the kernel's fork, exec and exit events, with details
read from /proc while the process lives (comm, exe, command line, ABI)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from syscall_tables.abi import abi_of_pid
from tracing.boundary.untrusted_files import read_proc
from tracing.model.snapshots import FOLDED_PID, folded_entry
from tracing.model.stats import ExitStatus, ProcessInfo, ProcEvent, ProcKind
from tracing.system.process_fold import KEPT_EXITED, ExitedOrder
from tracing.system.threads import (
    LIST_MAX,
    ProcessThreads,
    list_tasks,
    read_thread_comm,
    thread_exists,
)

# What is read of a process's /proc files: the process chooses how long its command line is
# (megabytes, with execve or prctl); the kernel bounds stat and status.
CMDLINE_MAX = 8192
STAT_MAX = 4096
STATUS_MAX = 64 << 10
CUT = "…"  # ends a command line that was longer than CMDLINE_MAX
# How long a process's container label is waited for (it is looked up off the engine thread).
LABEL_RETRY_S = 10.0
# Forks of tasks gone before they could be told a thread or a process, kept until their exit
# event (or their calls) tells which; the oldest are dropped past this.
PENDING_MAX = 4096
# How often the live threads are checked against /proc/PID/task (lost exit events).
THREAD_CHECK_S = 2.0


def _read(pid: int, name: str, max_bytes: int) -> tuple[str, bool] | None:
    """(text, truncated) of /proc/PID/NAME, at most max_bytes of it; None when gone."""
    content = read_proc(pid, name, max_bytes)
    if content is None:
        return None
    return content.data.decode(errors="replace"), content.truncated


def _tgid_of(tid: int) -> int | None:
    status = _read(tid, "status", STATUS_MAX)
    for line in status[0].splitlines() if status else ():
        if line.startswith("Tgid:"):
            fields = line.split()
            return int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None
    return None


def _comm_and_ppid(stat: str) -> tuple[str, int] | None:
    """From /proc/PID/stat: the comm is between the first "(" and the last ")" (it may hold
    either), the ppid the second field after it."""
    try:
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        return comm, int(stat[stat.rindex(")") + 2 :].split()[1])
    except (ValueError, IndexError):  # an exited process's empty file
        return None


def read_cmdline(pid: int) -> tuple[str, ...] | None:
    """The command line, at most CMDLINE_MAX bytes of it (the last argument then ends in
    CUT); None when the process is gone."""
    read = _read(pid, "cmdline", CMDLINE_MAX)
    if read is None:
        return None
    text, truncated = read
    args = tuple(a for a in text.split("\0") if a)
    if truncated and args:
        args = (*args[:-1], args[-1] + CUT)
    return args


def describe(pid: int, ppid: int = 0, comm: str = "", start_ts_ns: int = 0) -> ProcessInfo:
    """What /proc says of a process now; what it cannot say stays as given. A given parent
    stays: it is the one its fork event named, while /proc names whoever adopted the process
    once that parent ended (read a tick late, a process whose parent is gone shows pid 1 or
    a subreaper there, and its whole subtree would leave the trace's tree)."""
    stat = _read(pid, "stat", STAT_MAX)
    parsed = _comm_and_ppid(stat[0]) if stat else None
    if parsed is not None:
        comm, ppid = parsed[0], ppid or parsed[1]
    try:
        exe = str(Path(f"/proc/{pid}/exe").readlink())
    except OSError:
        exe = ""
    return ProcessInfo(
        pid=pid,
        ppid=ppid,
        comm=comm,
        exe=exe,
        cmdline=read_cmdline(pid) or (),
        abi=abi_of_pid(pid),
        start_ts_ns=start_ts_ns,
    )


class ProcessTracker:
    """Processes seen in this trace, keyed by pid; knows which are still alive."""

    def __init__(self, container_of: Callable[[int], str | None] = lambda _pid: "",
                 clock: Callable[[], float] = time.monotonic,
                 kept_exited: int = KEPT_EXITED) -> None:
        """`container_of(pid)`: the label of a live process's container (or unit), None
        while it is not known yet (it is looked up elsewhere: asked again each snapshot,
        for up to LABEL_RETRY_S). `kept_exited`: exited processes shown one by one."""
        self._container_of = container_of
        self._clock = clock
        # pid -> (since when, whose label it takes: its own pid, or the parent it was forked
        # from while the parent's was not known yet).
        self._unlabelled: dict[int, tuple[float, int]] = {}
        self.processes: dict[int, ProcessInfo] = {}
        self.alive: set[int] = set()
        # pid -> its threads (other than the main one): created at the first thread seen.
        self._threads: dict[int, ProcessThreads] = {}
        self._owner: dict[int, int] = {}  # a running thread's tid -> its pid (for renames)
        # tid -> (the fork event, follow) of a task that was gone when its fork was read.
        self._pending: dict[int, tuple[ProcEvent, bool]] = {}
        self._threads_checked = float("-inf")
        self._names_stale = False  # process events were lost: renames may be missing
        # The last snapshot() and the pids changed since: a tick with fork/exec/exit events
        # re-describes those processes only.
        self._shown: dict[int, ProcessInfo] = {}
        self._dirty: set[int] = set()
        # Exited processes past a bound are folded into one entry (process_fold.py).
        self._exited = ExitedOrder(clock, kept_exited)
        self.folded = 0  # processes folded so far (every one counted once)

    def add_root(self, pid: int, start_ts_ns: int) -> None:
        self._dirty.add(pid)
        self.processes[pid] = describe(pid, start_ts_ns=start_ts_ns).replace(
            container=self._label(pid, pid))
        self.alive.add(pid)
        for tid in list_tasks(pid) or ():  # its threads running now, with their names
            if tid != pid:
                self._start_thread(pid, tid, read_thread_comm(pid, tid))

    def apply(self, events: Sequence[ProcEvent], follow: bool) -> None:
        for e in events:
            self._dirty.update((e.pid, e.tid, e.ppid))
            if e.kind == ProcKind.FORK:
                self._fork(e, follow)
            elif e.kind == ProcKind.EXEC:
                self._exec(e)
            elif e.kind == ProcKind.EXIT:
                self._exit(e)
            elif e.kind == ProcKind.RENAME:
                self._rename(e)

    # -- threads ---------------------------------------------------------------------------

    def _start_thread(self, pid: int, tid: int, name: str | None) -> None:
        threads = self._threads.get(pid)
        if threads is None:
            threads = self._threads[pid] = ProcessThreads(pid)
        if threads.start(tid, name):
            self._owner[tid] = pid
            self._dirty.add(pid)
        self._unphantom(pid, tid)

    def _end_thread(self, pid: int, tid: int, name: str | None = None) -> None:
        threads = self._threads.get(pid)
        if threads is None:
            threads = self._threads[pid] = ProcessThreads(pid)
        threads.end(tid, name)
        self._owner.pop(tid, None)
        self._dirty.add(pid)
        self._unphantom(pid, tid)

    def _end_threads(self, pid: int) -> None:
        """Every thread of pid but its main one is gone (exec, exit)."""
        threads = self._threads.get(pid)
        if threads is not None and threads.live:
            for tid in threads.live:
                self._owner.pop(tid, None)
            threads.end_all()
            self._dirty.add(pid)

    def _unphantom(self, pid: int, tid: int) -> None:
        """A task known to be pid's thread is no process: an entry under its id that was
        never seen to end, or that pid forked and that ended unseen, was that thread (an
        ended process whose id the thread reuses stays)."""
        self._pending.pop(tid, None)
        info = self.processes.get(tid)
        if info is not None and (info.exit is None or (
                info.ppid == pid and info.exit == ExitStatus())):
            del self.processes[tid]
            self.alive.discard(tid)
            self._unlabelled.pop(tid, None)
            self._dirty.add(tid)

    def _rename(self, e: ProcEvent) -> None:
        """task_rename: pid is 0 when the kernel could not tell whose thread it renamed."""
        pid = e.pid or self._owner.get(e.tid) or (e.tid if e.tid in self.processes else 0)
        if not pid:
            pid = _tgid_of(e.tid) or 0
            if pid not in self.processes and pid not in self._threads:
                return  # not a task of this trace (or gone with its process)
        self._dirty.add(pid)
        if e.tid == pid:
            info = self.processes.get(pid)
            if info is not None:
                self.processes[pid] = info.replace(comm=e.comm)
            return
        threads = self._threads.get(pid)
        if threads is None or e.tid not in threads:  # its creation was not seen: it runs
            self._start_thread(pid, e.tid, e.comm)
        else:
            threads.rename(e.tid, e.comm)

    # -- processes -------------------------------------------------------------------------

    def _fork(self, e: ProcEvent, follow: bool) -> None:
        # The kernel reports a task id: a new thread of the parent, or a new process. It
        # tells a thread when it saw the clone call's flags; otherwise /proc says.
        if e.thread:
            self._start_thread(e.pid, e.tid, e.comm)  # named as its creator is
            return
        tgid = _tgid_of(e.tid)
        if tgid is None:
            # Gone already: its exit event (or its calls) tells a thread from a process;
            # never taken for a process that would then live on when that event is lost.
            self._pending[e.tid] = (e, follow)
            while len(self._pending) > PENDING_MAX:
                del self._pending[next(iter(self._pending))]
            return
        if tgid == e.ppid and tgid != e.tid:
            self._start_thread(e.ppid, e.tid, e.comm)
            return
        if tgid != e.tid or not follow:  # the id is already another process's thread
            return
        parent = self.processes.get(e.ppid)
        if parent is not None and parent.exit is None:
            # Until it execs, a child is its parent's copy: the same executable, command
            # line and ABI (no /proc reads on the engine thread; its exec reads them).
            info = ProcessInfo(pid=e.tid, ppid=e.ppid, comm=e.comm, exe=parent.exe,
                               cmdline=parent.cmdline, abi=parent.abi, start_ts_ns=e.ts_ns)
        else:
            info = describe(e.tid, ppid=e.ppid, comm=e.comm, start_ts_ns=e.ts_ns)
        self._new_process(e, info)

    def _new_process(self, e: ProcEvent, info: ProcessInfo) -> None:
        """A process forked by e.ppid (e: its fork event)."""
        self._fold_reused(e.tid, e.ts_ns)
        parent = self.processes.get(e.ppid)
        # A child starts in its parent's cgroup: ask only when the parent is unknown. A
        # parent whose label is still being looked up passes it on once it is known.
        if parent is None:
            container = self._label(e.tid, e.tid)
        elif e.ppid in self._unlabelled:
            container = self._label(e.tid, e.ppid)
        else:
            container = parent.container
        self.processes[e.tid] = info.replace(container=container)
        self.alive.add(e.tid)

    def _abi_of(self, pid: int) -> str:
        parent = self.processes.get(pid)
        return parent.abi if parent else ""

    def _exec(self, e: ProcEvent) -> None:
        if e.pid in self._pending:  # only a process execs under its own id: its fork said
            self._gone_before_seen(*self._pending.pop(e.pid))
        self._fold_reused(e.pid, e.ts_ns)  # a new process in an ended one's pid (fork unseen)
        old = self.processes.get(e.pid) or ProcessInfo(pid=e.pid, start_ts_ns=e.ts_ns)
        now = describe(e.pid, ppid=old.ppid, comm=e.comm, start_ts_ns=old.start_ts_ns)
        exe = now.exe or e.filename
        self.processes[e.pid] = now.replace(exe=exe, abi=now.abi or old.abi,
                                            container=old.container)
        self.alive.add(e.pid)
        self._end_threads(e.pid)  # exec ends every other thread

    def _gone_before_seen(self, fork: ProcEvent, follow: bool) -> None:
        """A process gone before its fork event was read: what its fork said."""
        earlier = self.processes.get(fork.tid)  # an ended one: the pid's earlier process
        if follow and (earlier is None or 0 < earlier.exit_ts_ns <= fork.ts_ns):
            self._dirty.add(fork.tid)
            self._new_process(fork, ProcessInfo(
                pid=fork.tid, ppid=fork.ppid, comm=fork.comm, abi=self._abi_of(fork.ppid),
                start_ts_ns=fork.ts_ns))

    def _exit(self, e: ProcEvent) -> None:
        if e.tid != e.pid:  # a thread, whatever was thought of it before
            self._end_thread(e.pid, e.tid, e.comm)
        elif e.tid in self._pending:
            self._gone_before_seen(*self._pending.pop(e.tid))
        if not e.process_gone:
            return
        self._end_threads(e.pid)
        info = self.processes.get(e.pid) or ProcessInfo(pid=e.pid)
        # The main thread's comm at exit is the last one (a process may rename itself
        # without exec); the last thread to exit may be another, with a name of its own.
        comm = e.comm if e.tid == e.pid and e.comm else info.comm
        self.processes[e.pid] = info.replace(
            comm=comm, exit_ts_ns=e.ts_ns, exit=ExitStatus.from_wait_status(e.status))
        self.alive.discard(e.pid)

    def set_exit(self, pid: int, status: ExitStatus, ts_ns: int) -> None:
        """The launched command's status from waitpid, which beats what the kernel saw."""
        self._dirty.add(pid)
        info = self.processes.get(pid) or ProcessInfo(pid=pid)
        self.processes[pid] = info.replace(exit=status, exit_ts_ns=info.exit_ts_ns or ts_ns)
        self.alive.discard(pid)
        self._end_threads(pid)

    def note_threads(self, pid_tids: Iterable[tuple[int, int]]) -> None:
        """Tasks seen through their calls (the kernel keys them by process and thread): a tid
        whose process is another pid is a thread of it, even when its creation was lost."""
        for pid, tid in pid_tids:
            if pid != tid:
                threads = self._threads.get(pid)
                if threads is not None and tid in threads:
                    continue
                if thread_exists(pid, tid):
                    self._start_thread(pid, tid, read_thread_comm(pid, tid))
                else:
                    self._end_thread(pid, tid)
            elif self._pending and tid in self._pending:
                # Calls of its own: a process, gone (its exit event, if any, comes later).
                fork, follow = self._pending.pop(tid)
                self._gone_before_seen(fork, follow)
                info = self.processes.get(tid)
                if info is not None and info.exit is None:
                    self.processes[tid] = info.replace(exit=ExitStatus())
                    self.alive.discard(tid)

    def note_lost_events(self) -> None:
        """Process events were lost: the next check of the threads (prune_vanished) also
        reads the running threads' names again."""
        self._names_stale = True

    def prune_vanished(self) -> None:
        """A backstop for lost exit events: forget live processes that /proc no longer has,
        and (every THREAD_CHECK_S) end the threads it no longer lists."""
        for pid in list(self.alive):
            if not Path(f"/proc/{pid}").exists():
                self._dirty.add(pid)
                self.alive.discard(pid)
                self._end_threads(pid)
                info = self.processes.get(pid)
                if info is not None and info.exit is None:
                    self.processes[pid] = info.replace(exit=ExitStatus())
        now = self._clock()
        if now - self._threads_checked < THREAD_CHECK_S:
            return
        self._threads_checked = now
        refresh, self._names_stale = self._names_stale, False
        for pid, threads in self._threads.items():
            if not threads.live or pid not in self.alive:
                continue
            listed = list_tasks(pid, LIST_MAX)
            if listed is None:
                continue
            ended, started = threads.sync(listed, complete=len(listed) < LIST_MAX)
            if refresh and threads.refresh_names():
                self._dirty.add(pid)
            for tid in ended:
                self._owner.pop(tid, None)
            for tid in started:
                self._owner[tid] = pid
                self._unphantom(pid, tid)
            if ended or started:
                self._dirty.add(pid)

    def _label(self, pid: int, source: int) -> str:
        """pid's label, from `source` (itself or its parent); "" for now when it is not
        known yet, and pid is labelled by a later snapshot()."""
        found = self._container_of(pid) if source == pid else None
        if found is None:
            self._unlabelled[pid] = (self._clock(), source)
            return ""
        return found

    def _label_late(self) -> None:
        """Labels that became known since the last snapshot; those still unknown after
        LABEL_RETRY_S stay "" (the look-up failed, or its answer was pushed out)."""
        now = self._clock()
        for pid, (since, source) in list(self._unlabelled.items()):
            if source == pid:
                found = self._container_of(pid)
            else:  # forked from a parent whose label was not known then
                parent = self.processes.get(source)
                found = None if source in self._unlabelled else (
                    parent.container if parent else "")
            if found is None and now - since < LABEL_RETRY_S:
                continue
            del self._unlabelled[pid]
            info = self.processes.get(pid)
            if found and info is not None and info.container != found:
                self.processes[pid] = info.replace(container=found)
                self._dirty.add(pid)

    # -- folding exited processes (process_fold.py) ----------------------------------------

    def _fold_reused(self, pid: int, ts_ns: int) -> None:
        """A new process, started at ts_ns, takes the pid of an ended one still shown: the
        old one is folded. Only one seen to exit before (one taken for ended because it was
        gone from /proc, or made calls with its fork unseen, may be this very process)."""
        old = self.processes.get(pid)
        if old is not None and old.exit is not None and 0 < old.exit_ts_ns <= ts_ns:
            self._exited.forget(pid)
            self._fold(pid)

    def _fold(self, pid: int) -> None:
        self.processes.pop(pid, None)
        self._threads.pop(pid, None)
        self._unlabelled.pop(pid, None)
        self.folded += 1
        self._dirty.update((pid, FOLDED_PID))

    def _fold_due(self) -> None:
        """Note the processes that ended since the last snapshot; fold the oldest past the
        bound (whose exit is old enough: they may be due with nothing else changed)."""
        for pid in self._dirty:
            info = self.processes.get(pid)
            if info is None or info.exit is None:
                self._exited.forget(pid)
            else:
                self._exited.exited(pid)
        for pid in self._exited.due():
            self._fold(pid)

    def snapshot(self) -> dict[int, ProcessInfo]:
        """The processes with their threads: the same dict while nothing changed, else a copy
        with the changed processes replaced (a handed-out dict is never mutated). Past
        KEPT_EXITED exited processes, the oldest are one entry, FOLDED_PID."""
        if self._unlabelled:
            self._label_late()
        self._fold_due()
        if not self._dirty:
            return self._shown
        shown = dict(self._shown)
        for pid in self._dirty:
            info = self.processes.get(pid)
            if pid == FOLDED_PID and self.folded:
                shown[pid] = folded_entry(self.folded)
                continue
            if info is None:
                shown.pop(pid, None)  # a task once taken for a process (a thread), or folded
                continue
            threads = self._threads.get(pid)
            if threads is not None:
                live = frozenset(threads.live)
                info = info.replace(
                    threads=live | frozenset(threads.ended), live_threads=live,
                    thread_names=dict(threads.names), threads_seen=threads.seen,
                    thread_names_dropped=threads.names_dropped)
            shown[pid] = info
        self._shown, self._dirty = shown, set()
        return shown
