"""Ties the descriptor table and the per-file accounting to the engine's batches: each tick's
event records (with their captured fields) and process events go in, in the order they
happened; each record whose args[0] is a descriptor gets that descriptor's path id
(EVENT_DTYPE "fd_path"), and `files()` gives the per-(pid, path) totals.

Most records change no descriptor: they are found with numpy from a per-(ABI, number)
effects array built once, and cost a dictionary look-up at most (reads and writes) or
nothing. Only the calls that open, close, duplicate or name descriptors are handled one by
one, in record order, with the process events (fork, exec, exit) placed between them by
time. Failed opens are counted per distinct (pid, path, errno) once per batch. Pure: no bcc.
"""

from __future__ import annotations

import fcntl
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence

import numpy as np

from syscall_tables import table as syscall_table
from tracing.decode import argspec
from tracing.decode.argspec import ABI_TABLES, SpecTable, SyscallSpec
from tracing.model.captures import IoTotals
from tracing.model.fd_table import CallRecord, EndpointName, FdEntry, FdTable, path_in
from tracing.model.files import FileAccounts, FileKey, FileStats
from tracing.model.paths import UNKNOWN_ID, PathTable
from tracing.model.stats import ProcEvent, ProcKind

_NR_SLOTS = 1024  # the kernel's arg_kinds index: abi * 1024 + (nr & 1023)
_ABI_CODES = 256  # EVENT_DTYPE "abi" is a u8: every code has its row (unknown ones empty)
_CHANGES = (argspec.OPENS | argspec.FD_RET | argspec.FD_CLOSE | argspec.FD_CLOSE_RANGE
            | argspec.FD_DUP_TO | argspec.FD_PAIR | argspec.FD_FCNTL | argspec.NAMES_SOCKET)
# Handled whatever the result: close releases the number even when it fails, and a
# non-blocking connect names its socket with EINPROGRESS.
_CHANGES_IF_FAILED = argspec.FD_CLOSE | argspec.NAMES_SOCKET
_FCNTL_CHANGES = (fcntl.F_DUPFD, fcntl.F_DUPFD_CLOEXEC, fcntl.F_SETFD)

# How often the tracer drops the tables of processes no longer alive (their exit event lost),
# and at most how many at a time (a round costs the tracer one pass over the kernel's fd_io,
# whatever its size: enough that a churn of short processes whose exits the tracer takes in
# late, at a thousand a second, is kept up with).
RETAIN_EVERY_S, RETAIN_MAX = 5.0, 8192
LiveTotals = Mapping[tuple[int, int], IoTotals]  # (pid, fd) -> the kernel's fd_io entry


class FileTracker:
    """One trace's descriptor table, paths and per-file totals (engine thread only; the
    PathTable it shares is safe to read from others)."""

    def __init__(self, specs: SpecTable, host_arch: str, paths: PathTable | None = None,
                 endpoint: EndpointName | None = None) -> None:
        self.paths = paths if paths is not None else PathTable()
        self.table = FdTable(self.paths, endpoint)
        self.accounts = FileAccounts()
        self._specs: dict[int, SyscallSpec] = {}
        self._effects = np.zeros(_ABI_CODES * _NR_SLOTS, dtype=np.uint32)
        for code, abi in enumerate(ABI_TABLES.get(host_arch, (host_arch,))):
            self._add_abi(specs, code, abi)
        self._gone: dict[int, dict[int, FdEntry]] = {}  # exited, their last totals not yet in
        self._live: dict[tuple[int, int], IoTotals] = {}
        self._live_stale = True  # the live totals must be attributed again
        self._next_retain = 0.0
        self._suspects: set[int] = set()  # not alive at the last round of retain_now_and_then

    def _add_abi(self, specs: SpecTable, code: int, abi: str) -> None:
        try:
            numbers = syscall_table(abi)
        except (OSError, ValueError, KeyError):
            return  # no table for that ABI here: its records change nothing
        for nr in numbers:
            spec = specs.for_call(abi, nr)
            if spec is not None and spec.effects:
                slot = code * _NR_SLOTS + (nr & (_NR_SLOTS - 1))
                self._effects[slot] = spec.effects
                self._specs[slot] = spec

    def spec_at(self, abi: int, nr: int) -> SyscallSpec | None:
        return self._specs.get(abi * _NR_SLOTS + (nr & (_NR_SLOTS - 1)))

    # -- batches ---------------------------------------------------------------------------

    def apply_batch(self, records: np.ndarray, data: Sequence[bytes],
                    proc_events: Sequence[ProcEvent] = ()) -> None:
        """Apply a tick's records (writable EVENT_DTYPE; their fd_path is written) and its
        process events, in the order they happened. `data[i]` holds record i's captured
        fields (b"" or a shorter sequence: none)."""
        if not len(records):
            self.on_proc_events(proc_events)
            return
        slots = (records["abi"].astype(np.intp) * _NR_SLOTS
                 + (records["nr"] & (_NR_SLOTS - 1)).astype(np.intp))
        effects = self._effects[slots]
        if not effects.any():
            self.on_proc_events(proc_events)
            return
        args = records["args"]
        fd0 = (args[:, 0] & 0xFFFFFFFF).astype(np.uint32).view(np.int32)
        ret = records["ret"]
        failed = (ret < 0) & (ret >= -4095)
        changes = _change_mask(effects, failed, args)
        lookups = np.flatnonzero(((effects & argspec.FD_ARG0) != 0) & (fd0 >= 0))
        self._count_failed_opens(records, data, fd0,
                                 np.flatnonzero(((effects & argspec.OPENS) != 0) & failed))
        found = self._replay(records, data, slots, np.flatnonzero(changes), lookups, fd0,
                             proc_events)
        if len(lookups):
            records["fd_path"][lookups] = found

    def _replay(self, records: np.ndarray, data: Sequence[bytes], slots: np.ndarray,
                changed: np.ndarray, lookups: np.ndarray, fd0: np.ndarray,
                proc_events: Sequence[ProcEvent]) -> list[int]:
        """Apply the changes and process events in order; the path of each look-up's
        descriptor as it was at its record."""
        steps: list[tuple[float, int]] = [(float(i), -1 - k)
                                          for k, i in enumerate(changed.tolist())]
        if proc_events:
            # Records arrive in the order their calls ended (ts: the end); a process event
            # goes before the first record that ended after it.
            ends = np.maximum.accumulate(records["ts"])
            places = np.searchsorted(ends, [e.ts_ns for e in proc_events], side="right")
            steps += [(p - 0.5, k) for k, p in enumerate(places.tolist())]
            steps.sort()
        pids = records["pid"][lookups].tolist()
        fds = fd0[lookups].tolist()
        # The changed records as plain ints: numpy scalars cost more than the change.
        calls = [CallRecord(pid, ret, tuple(args)) for pid, ret, args in zip(
            records["pid"][changed].tolist(), records["ret"][changed].tolist(),
            records["args"][changed].tolist(), strict=True)]
        call_slots = slots[changed].tolist()
        cuts = np.searchsorted(lookups, [s[0] for s in steps], side="right").tolist()
        found: list[int] = []
        done = 0
        for (place, event), cut in zip(steps, cuts, strict=True):
            if cut > done:
                found += self.table.paths_of(pids[done:cut], fds[done:cut])
                done = cut
            if event >= 0:
                self._proc_event(proc_events[event])
            else:
                i = int(place)
                self._apply_record(calls[-1 - event], data[i] if i < len(data) else b"",
                                   self._specs[call_slots[-1 - event]])
        found += self.table.paths_of(pids[done:], fds[done:])
        if steps:
            self._live_stale = True
        return found

    def _apply_record(self, call: CallRecord, data: bytes, spec: SyscallSpec) -> None:
        done = self.table.apply(call, data, spec)
        for path_id, totals in done.handovers:
            self.accounts.closed(FileKey(call.pid, path_id), totals)
        if done.opened is not None:
            self.accounts.opened(FileKey(call.pid, done.opened))

    def _count_failed_opens(self, records: np.ndarray, data: Sequence[bytes],
                            fd0: np.ndarray, rows: np.ndarray) -> None:
        if not len(rows):
            return
        bodies: Sequence[bytes]
        if len(data) != len(records):
            bodies = [b""] * len(rows)
        elif len(rows) == len(records):
            bodies = data
        else:
            bodies = list(map(data.__getitem__, rows.tolist()))
        for (pid, dfd, errno, body), n in _failed_open_counts(
                records["pid"][rows], fd0[rows], -records["ret"][rows], bodies).items():
            path_id = self.table.open_path(CallRecord(pid, -errno, (dfd,)), path_in(body))
            self.accounts.open_failed(FileKey(pid, path_id), errno, n)

    # -- processes and the kernel's per-descriptor totals ------------------------------------

    def on_proc_events(self, proc_events: Iterable[ProcEvent]) -> None:
        for event in proc_events:
            self._proc_event(event)
            self._live_stale = True

    def _proc_event(self, e: ProcEvent) -> None:
        if e.kind == ProcKind.FORK:
            # A new thread shares its process's table (its calls carry the process id); a
            # fork the kernel could not tell (begun before tracing) is copied: that copy is
            # never looked up and goes at the task's exit, or at retain().
            if not e.thread:
                self.table.fork(e.pid, e.tid)
        elif e.kind == ProcKind.EXEC:
            self.table.exec(e.pid)
        elif e.kind == ProcKind.EXIT:
            if e.process_gone:
                last = self.table.exit(e.pid)
                self._gone[e.pid] = {**self._gone.get(e.pid, {}), **last}
            elif e.tid != e.pid:
                self.table.tables.pop(e.tid, None)

    def retain(self, alive: Collection[int]) -> set[int]:
        """Forget at once the tables of processes not in `alive` (at most RETAIN_MAX), as
        their exit would; the pids forgotten, whose kernel totals the caller hands to
        process_gone as at an exit."""
        return self._forget(self._not_alive(alive))

    def retain_now_and_then(self, alive: Collection[int], now: float) -> set[int]:
        """The tracer's backstop for lost exit events, at most once every RETAIN_EVERY_S
        (`now`: time.monotonic()): forgets the processes found not alive at two rounds in
        a row, so that the records of one that just ended are all in first."""
        if now < self._next_retain:
            return set()
        self._next_retain = now + RETAIN_EVERY_S
        dead = self._not_alive(alive)
        lost = self._forget(dead & self._suspects)
        self._suspects = dead - lost
        return lost

    def _not_alive(self, alive: Collection[int]) -> set[int]:
        pids = self.table.tables.keys() | {pid for pid, _fd in self.table.stale}
        return {pid for pid in pids if pid not in alive}

    def _forget(self, pids: set[int]) -> set[int]:
        lost = set(sorted(pids)[:RETAIN_MAX])
        for pid, last in self.table.exit_many(lost).items():
            self._gone[pid] = {**self._gone.get(pid, {}), **last}
        if lost:
            self._live_stale = True
        return lost

    def seed(self, pid: int, fds: Mapping[int, bytes], cloexec: Iterable[int] = ()) -> None:
        """The descriptors a target had when tracing began (tracing.system.fd_seed)."""
        self.table.seed(pid, fds, cloexec)
        self._live_stale = True

    def live(self, entries: LiveTotals) -> None:
        """The kernel's totals of every descriptor still open (read each tick). Call it
        before process_gone, which takes the gone processes' entries out."""
        if entries != self._live:
            self._live = dict(entries)
            self._live_stale = True

    def process_gone(self, pid: int, final: Mapping[int, IoTotals]) -> None:
        """A process has exited: its descriptors' last totals (fd -> totals, read from the
        kernel and deleted there) go to the files they named."""
        last = self._gone.pop(pid, None)
        if last is None:
            last = self.table.exit(pid)
        for fd, totals in final.items():
            entry = last.get(fd)
            self.accounts.closed(FileKey(pid, entry.path_id if entry else UNKNOWN_ID), totals)
        if any(key[0] == pid for key in self._live):
            self._live = {k: v for k, v in self._live.items() if k[0] != pid}
        self._live_stale = True

    def files(self) -> Mapping[FileKey, FileStats]:
        """Per (pid, path), cumulative since the trace began (immutable)."""
        if self._live_stale:
            self._live_stale = False
            self.accounts.set_live(self._attribute_live())
        return self.accounts.totals()

    def _attribute_live(self) -> dict[FileKey, IoTotals]:
        """The open descriptors' totals by the path each names now. A descriptor whose
        name is not known yet (its open is in a batch still to come) is left out until it
        is: counted later, never for a wrong path."""
        by_key: dict[FileKey, IoTotals] = {}
        owner_of = self.table.owner_of
        for (pid, fd), totals in self._live.items():
            owner = owner_of(pid, fd)
            if owner is None:
                gone = self._gone.get(pid, {}).get(fd)
                if gone is None:
                    continue
                owner = gone.path_id
            key = FileKey(pid, owner)
            before = by_key.get(key)
            by_key[key] = totals if before is None else before.plus(totals)
        return by_key


def _failed_open_counts(pids: np.ndarray, dfds: np.ndarray, errnos: np.ndarray,
                        bodies: Sequence[bytes]) -> Counter[tuple[int, int, int, bytes]]:
    """(pid, dfd, errno, captured fields) -> how many. Failures mostly repeat a few
    (pid, dfd, errno): those are grouped by numpy and only the bodies counted one by one
    (a tuple made and hashed per record cost most of a flood of failed opens)."""
    # One integer per caller: pid (< 2^22) and errno (< 2^12, a failure) in 34 bits, then
    # the dfd's place among the distinct dfds (fewer than the records).
    dfd_values, dfd_ids = np.unique(dfds, return_inverse=True)
    keys = ((pids.astype(np.uint64) << np.uint64(12)) | (errnos.astype(np.uint64)
            & np.uint64(0xFFF))) * np.uint64(len(dfd_values)) + dfd_ids.astype(np.uint64)
    callers, which = np.unique(keys, return_inverse=True)
    if len(callers) * 16 > len(keys):
        return Counter(zip(pids.tolist(), dfds.tolist(), errnos.tolist(), bodies, strict=True))
    counts: Counter[tuple[int, int, int, bytes]] = Counter()
    rest = callers // np.uint64(len(dfd_values))
    for group, (pid, dfd, errno) in enumerate(zip(
            (rest >> np.uint64(12)).tolist(),
            dfd_values[(callers % np.uint64(len(dfd_values))).astype(np.intp)].tolist(),
            (rest & np.uint64(0xFFF)).tolist(), strict=True)):
        caller = (pid, dfd, errno)
        mine = bodies if len(callers) == 1 else \
            map(bodies.__getitem__, np.flatnonzero(which == group).tolist())
        for body, n in Counter(mine).items():
            counts[(*caller, body)] = n
    return counts


def _change_mask(effects: np.ndarray, failed: np.ndarray, args: np.ndarray) -> np.ndarray:
    """The records that change the descriptor table."""
    changes = ((effects & _CHANGES) != 0) & ~failed
    changes |= (effects & _CHANGES_IF_FAILED) != 0
    fcntl_calls = (effects & argspec.FD_FCNTL) != 0
    if fcntl_calls.any():  # F_GETFL and the like change nothing
        cmd = (args[:, 1] & 0xFFFFFFFF).astype(np.int64)
        changes &= ~fcntl_calls | np.isin(cmd, _FCNTL_CHANGES)
    return np.asarray(changes, dtype=bool)
