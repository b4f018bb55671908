"""Reads the calls in flight: each live target thread's in-flight slot, from user space.

bpf/syscalls.bpf.c keeps each traced thread's current call in `inflight_store` (struct inflight
{u64 ts; u64 nr; u64 clone_flags;}, ts 0: not in a call; nr's bits 32..33 the ABI code).
Where the kernel has BPF task storage (USE_TASK_STORAGE) the map is keyed by the task, and user
space names a task with a pidfd: pidfd_open(tid, PIDFD_THREAD) (Linux 6.9; before it only a
process's first thread has a pidfd, the others are counted as unread) then BPF_MAP_LOOKUP_ELEM.
Elsewhere it is a hash keyed by tid. Both are read with plain bpf(2) calls (ctypes): bcc's
table classes do not know task storage.

Bounded: at most `max_threads` lookups a read, each a pidfd_open, a bpf and a close; the
tracer reads at most once a second while the in-flight view is open, and once at stop. A
thread that exits in between is simply absent (ESRCH, ENOENT).

With --timing off the program keeps no slots (and, once its C says so, has no such map): the
tracer passes no map, and each live thread's /proc/PID/task/TID/syscall is read instead, within
the same bounds (ProcInFlightReader). A call's entry is then unknown: it is listed from the
first read that saw the thread in it, a lower bound.
"""

from __future__ import annotations

import ctypes
import errno
import os
import time
from collections.abc import Callable, Iterable, Mapping

from syscall_tables import ABI_TABLES, syscall_number
from tracing.model.inflight import InFlight, InFlightRead, ordered, split_nr
from tracing.model.stats import ProcessInfo

MAP_NAME = b"inflight_store"
MAX_THREADS = 4096  # lookups a read (about 3 syscalls each: a few ms)
READ_EVERY_NS = 1_000_000_000  # while the in-flight view is open
POLL_IDLE_EVERY_NS = 5_000_000_000  # /proc reads (--timing off) while nobody looks
BPF_MAP_LOOKUP_ELEM, BPF_OBJ_GET_INFO_BY_FD = 1, 15
BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_TASK_STORAGE = 1, 29
X32_BIT, ABI_X32 = 0x4000_0000, 2  # __X32_SYSCALL_BIT in an x32 task's numbers
PIDFD_THREAD = os.O_EXCL  # include/uapi/linux/pidfd.h
# bpf/syscalls.bpf.c's NR_UNTIMED: a call entered without a clock read (--timing sampled or
# off); its ts is only a time before its entry (or 1), so it is shown from the trace's start
# at the earliest.
NR_UNTIMED = 1 << 40
NR_PIDFD_OPEN = 434  # the same number on every architecture (the generic table)


class _ElemAttr(ctypes.Structure):  # union bpf_attr, BPF_MAP_*_ELEM commands
    _fields_ = (("map_fd", ctypes.c_uint32), ("pad", ctypes.c_uint32),
                ("key", ctypes.c_uint64), ("value", ctypes.c_uint64),
                ("flags", ctypes.c_uint64))


class _InfoAttr(ctypes.Structure):  # union bpf_attr, BPF_OBJ_GET_INFO_BY_FD
    _fields_ = (("bpf_fd", ctypes.c_uint32), ("info_len", ctypes.c_uint32),
                ("info", ctypes.c_uint64))


class _MapInfo(ctypes.Structure):  # struct bpf_map_info, its first fields
    _fields_ = (("type", ctypes.c_uint32), ("id", ctypes.c_uint32),
                ("key_size", ctypes.c_uint32), ("value_size", ctypes.c_uint32),
                ("max_entries", ctypes.c_uint32), ("map_flags", ctypes.c_uint32))


class _Slot(ctypes.Structure):  # struct inflight
    _fields_ = (("ts", ctypes.c_uint64), ("nr", ctypes.c_uint64),
                ("clone_flags", ctypes.c_uint64))


_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long


class InFlightReader:
    """Looks up the slots of given threads in the map whose fd it is given (not owned)."""

    def __init__(self, map_fd: int, arch: str, max_threads: int = MAX_THREADS) -> None:
        nr_bpf = syscall_number("bpf", arch)
        if nr_bpf is None:
            raise OSError(errno.ENOSYS, f"no bpf syscall number for {arch}")
        self._nr_bpf = nr_bpf
        self._fd = map_fd
        self.max_threads = max_threads
        info = self._map_info()
        if info.type not in (BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_TASK_STORAGE) \
                or info.value_size < ctypes.sizeof(_Slot) or info.key_size != 4:
            raise OSError(errno.EINVAL, f"{MAP_NAME.decode()} is map type {info.type} with "
                          f"{info.key_size}-byte keys and {info.value_size}-byte values")
        self.task_storage = info.type == BPF_MAP_TYPE_TASK_STORAGE
        # False once the kernel refuses PIDFD_THREAD (before 6.9): first threads only.
        self.thread_pidfds = True
        # The whole value (sampled timing keeps more per thread after the fields read here).
        self._value = ctypes.create_string_buffer(info.value_size)
        self._slot = _Slot.from_buffer(self._value)
        self._key = ctypes.c_uint32()
        self._attr = _ElemAttr(map_fd=map_fd, key=ctypes.addressof(self._key),
                               value=ctypes.addressof(self._value))

    def _bpf(self, cmd: int, attr: ctypes.Structure) -> int:
        return int(_syscall(ctypes.c_long(self._nr_bpf), ctypes.c_long(cmd),
                            ctypes.byref(attr), ctypes.c_uint(ctypes.sizeof(attr))))

    def _map_info(self) -> _MapInfo:
        info = _MapInfo()
        attr = _InfoAttr(bpf_fd=self._fd, info_len=ctypes.sizeof(info),
                         info=ctypes.addressof(info))
        if self._bpf(BPF_OBJ_GET_INFO_BY_FD, attr) < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"bpf(BPF_OBJ_GET_INFO_BY_FD): {os.strerror(err)}")
        return info

    def _pidfd(self, pid: int, tid: int) -> int:
        """A pidfd of the thread; -1 when it is gone or cannot have one here."""
        if self.thread_pidfds:
            fd = int(_syscall(ctypes.c_long(NR_PIDFD_OPEN), ctypes.c_int(tid),
                              ctypes.c_uint(PIDFD_THREAD)))
            if fd >= 0 or ctypes.get_errno() != errno.EINVAL:
                return fd
            self.thread_pidfds = False  # an older kernel: PIDFD_THREAD unknown
        if tid != pid:
            return -1
        return int(_syscall(ctypes.c_long(NR_PIDFD_OPEN), ctypes.c_int(tid), ctypes.c_uint(0)))

    def _lookup(self, pid: int, tid: int) -> tuple[int, int] | None:
        """(ts, nr) of the thread's slot; None when it has none (or is gone)."""
        if self.task_storage:
            fd = self._pidfd(pid, tid)
            if fd < 0:
                return None
            try:
                self._key.value = fd
                found = self._bpf(BPF_MAP_LOOKUP_ELEM, self._attr) == 0
            finally:
                os.close(fd)
        else:
            self._key.value = tid
            found = self._bpf(BPF_MAP_LOOKUP_ELEM, self._attr) == 0
        return (self._slot.ts, self._slot.nr) if found else None

    def read(self, threads: Iterable[tuple[int, int]], unread: int = 0,
             trace_start_ns: int = 0, abis: Mapping[int, int] | None = None) -> InFlightRead:
        """The calls the (pid, tid) threads are in, now; past max_threads (or threads that
        cannot be named) they are counted in `unread`, with the `unread` given.

        A thread with no slot has made no call since the trace began: if it is blocked in
        one, entered before (an attached server in accept), /proc names the call, listed as
        entered at `trace_start_ns` at the latest, in its process's ABI (`abis`: pid ->
        ABI code; the x32 bit says x32)."""
        calls, looked = [], 0
        for pid, tid in threads:
            if looked >= self.max_threads:
                unread += 1
                continue
            if self.task_storage and tid != pid and not self.thread_pidfds:
                unread += 1
                continue
            looked += 1
            slot = self._lookup(pid, tid)
            if slot is not None and slot[0]:
                nr, abi = split_nr(slot[1])
                start = slot[0]
                if slot[1] & NR_UNTIMED:  # --timing sampled/off: an earlier time, or 1
                    start = max(start, trace_start_ns)
                calls.append(InFlight(pid, tid, nr, abi, start))
            elif slot is None and trace_start_ns:
                nr_proc = blocked_call(pid, tid)
                if nr_proc is not None:
                    abi = ABI_X32 if nr_proc & X32_BIT else (abis or {}).get(pid, 0)
                    calls.append(InFlight(pid, tid, nr_proc & ~X32_BIT, abi, trace_start_ns,
                                          before_trace=True))
        # Stamped after the lookups: every call found was in flight until at least then.
        return InFlightRead(time.monotonic_ns(), ordered(calls), looked, unread)


STATUS_LIMIT = 16_384  # bytes of /proc/PID/task/TID/status read (about 1.5 KiB here)


def _proc_file(path: str, limit: int) -> bytes | None:
    """The first `limit` bytes of a /proc file (one read: /proc gives these whole); None when
    it cannot be read. Plain os calls: a buffered file object costs about as much again,
    and this runs for every traced thread once a second."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.read(fd, limit)
    except OSError:
        return None
    finally:
        os.close(fd)


def blocked_call(pid: int, tid: int) -> int | None:
    """The number of the call a thread is blocked in, from /proc/PID/task/TID/syscall; None
    when it is running, blocked outside a call (-1), gone or not readable."""
    text = _proc_file(f"/proc/{pid}/task/{tid}/syscall", 64)
    if text is None:
        return None
    first = text.split(maxsplit=1)
    if not first or not first[0].isdigit():
        return None
    nr = int(first[0])
    return nr if nr <= 0xFFFF_FFFF else None


def context_switches(pid: int, tid: int) -> int | None:
    """How many times the thread has left a CPU (voluntary and not), from its /proc status;
    None when it is gone or the counts are not there."""
    text = _proc_file(f"/proc/{pid}/task/{tid}/status", STATUS_LIMIT)
    if text is None:
        return None
    total = 0
    for name in (b"\nvoluntary_ctxt_switches:", b"\nnonvoluntary_ctxt_switches:"):
        at = text.rfind(name)  # the last lines: searched from the end
        if at < 0:
            return None
        value = text[at + len(name):].split(b"\n", 1)[0].strip()
        if not value.isdigit():
            return None
        total += int(value)
    return total


class ProcInFlightReader:
    """The calls in flight with no slots to read (--timing off): each thread's current call
    from /proc/PID/task/TID/syscall, with the first read that saw it in that call.

    A thread is taken to be in the same call as at the last read only when it is in a call
    of the same number and has not left a CPU since (its context switch count, read after
    the call's number, is the one read when it was first seen): a thread that ran in
    between may have returned and entered another call of the same number, so it starts
    again. Resetting errs short: the time shown stays a lower bound. A thread not in a call,
    gone, or not read this time is forgotten. Bounded: at most `max_threads` threads a read,
    two small /proc reads for each thread in a call, one for the others; the state kept is
    one entry per thread read.

    Times: a call's start is a clock read taken after its first sighting's switch count (it
    was in the call, off CPU, from before then); a read's ts_ns is taken before its
    lookups (each call listed was still in it after then). So ts_ns - start_ns never
    exceeds the time the call had been running.
    """

    def __init__(self, max_threads: int = MAX_THREADS,
                 syscall_of: Callable[[int, int], int | None] | None = None,
                 switches_of: Callable[[int, int], int | None] | None = None,
                 clock: Callable[[], int] = time.monotonic_ns) -> None:
        self.max_threads = max_threads
        self._syscall_of = syscall_of or blocked_call
        self._switches_of = switches_of or context_switches
        self._clock = clock
        # (pid, tid) -> (raw number from /proc, switch count, first seen at)
        self._seen: dict[tuple[int, int], tuple[int, int, int]] = {}

    def read(self, threads: Iterable[tuple[int, int]], unread: int = 0,
             abis: Mapping[int, int] | None = None) -> InFlightRead:
        """The calls the (pid, tid) threads are in now, each from when it was first seen in
        it; past max_threads they are counted in `unread` (with the `unread` given).
        `abis`: pid -> ABI code of its process (the x32 bit says x32)."""
        ts = self._clock()
        calls, looked = [], 0
        seen: dict[tuple[int, int], tuple[int, int, int]] = {}
        for pid, tid in threads:
            if looked >= self.max_threads:
                unread += 1
                continue
            looked += 1
            raw = self._syscall_of(pid, tid)
            if raw is None:
                continue
            switches = self._switches_of(pid, tid)  # after the number: see the class
            if switches is None:
                continue
            before = self._seen.get((pid, tid))
            if before is not None and before[:2] == (raw, switches):
                first = before[2]
            else:
                first = self._clock()
            seen[pid, tid] = (raw, switches, first)
            abi = ABI_X32 if raw & X32_BIT else (abis or {}).get(pid, 0)
            calls.append(InFlight(pid, tid, raw & ~X32_BIT, abi, first, seen=True))
        self._seen = seen
        return InFlightRead(ts, ordered(calls), looked, unread, polled=True)


def live_threads(pids: Iterable[int], limit: int) -> tuple[list[tuple[int, int]], int]:
    """(pid, tid) of the live threads of these processes, from /proc/PID/task (threads that
    existed before the trace included), at most `limit`; and how many more were seen. An id
    that is a thread's, not a process's, is skipped: its process lists the thread."""
    found: list[tuple[int, int]] = []
    more = 0
    for pid in pids:
        if not _is_process(pid):
            continue
        # The main thread first: thread ids are not ordered by age once pids wrap around.
        tids = sorted(_tids(pid), key=lambda t: (t != pid, t))
        for tid in tids:
            if len(found) < limit:
                found.append((pid, tid))
            else:
                more += 1
        if more:  # counting the rest would read every directory: a lower bound is enough
            break
    return found, more


def _tids(pid: int) -> list[int]:
    try:
        with os.scandir(f"/proc/{pid}/task") as entries:
            return sorted(int(e.name) for e in entries if e.name.isdigit())
    except OSError:  # exited since
        return []


def _is_process(pid: int) -> bool:
    """True when `pid` is a live process's id (a thread group's leader), not a thread's: a
    thread's /proc entry lists its whole group too, but says whose thread it is (Tgid)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    for line in head.splitlines():
        if line.startswith(b"Tgid:"):
            return line.split()[1:2] == [str(pid).encode()]
    return False


class InFlightWatch:
    """The tracer's calls in flight, read when someone looks: once a second while `watched`
    (the TUI's in-flight view is open) and at the last tick; in between, the last read again.
    Nobody looking, nothing is read and None is passed on: a read of 4,096 threads costs the
    engine thread 60-140 ms a second, which the TUI's keys felt. A map this kernel's layout
    does not match is never read (nothing shown rather than something wrong).

    With no map (map_fd None: --timing off), the threads' /proc entries are read instead
    (ProcInFlightReader), and also every POLL_IDLE_EVERY_NS while nobody looks: each call's
    time is from the first read that saw it, so a view opened (or a trace stopped) later
    still shows a bound within that period of the truth for the long calls."""

    def __init__(self, arch: str) -> None:
        self.arch = arch
        self._last: InFlightRead | None = None
        self._at_ns = 0
        self._reader: InFlightReader | None = None
        self._polls: ProcInFlightReader | None = None
        self._broken = False
        self._was_watched = False

    def read(self, map_fd: int | None, pids: Iterable[int], processes: Mapping[int, ProcessInfo],
             start_ns: int, last: bool, watched: bool = True) -> InFlightRead | None:
        now = time.monotonic_ns()
        opened, self._was_watched = watched and not self._was_watched, watched
        if self._broken:
            return None
        every = READ_EVERY_NS if watched else POLL_IDLE_EVERY_NS if map_fd is None else None
        if last or opened or (every is not None and now - self._at_ns >= every):
            self._at_ns = now
            self._last = self._read(map_fd, pids, processes, start_ns)
        return self._last if watched or last else None

    def _read(self, map_fd: int | None, pids: Iterable[int],
              processes: Mapping[int, ProcessInfo], start_ns: int) -> InFlightRead | None:
        tables = ABI_TABLES.get(self.arch, (self.arch,))
        abis = {pid: tables.index(p.abi) for pid, p in processes.items() if p.abi in tables}
        if map_fd is None:  # no slots: the threads' /proc entries, compared read to read
            if self._polls is None:
                self._polls = ProcInFlightReader()
            threads, more = live_threads(pids, self._polls.max_threads)
            return self._polls.read(threads, more, abis)
        try:
            if self._reader is None:
                self._reader = InFlightReader(map_fd, self.arch)
            threads, more = live_threads(pids, self._reader.max_threads)
            return self._reader.read(threads, more, start_ns, abis)
        except (OSError, KeyError):  # no such map or an unexpected layout
            self._broken = True
            return None
