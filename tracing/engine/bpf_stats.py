"""The tracer's own kernel cost: BPF run-time statistics of our syscall programs.

The kernel counts each program's runs and the time spent in it (bpf_prog_info.run_cnt and
run_time_ns) only while run-time statistics are on. They are turned on with the bpf(2)
command BPF_ENABLE_STATS, which returns a file descriptor: the statistics stay on while any
such descriptor is open (a reference count on the kernel's switch, which the sysctl
/proc/sys/kernel/bpf_stats_enabled also takes when an admin sets it), so closing ours -- or
the process ending in any way, SIGKILL included -- restores what was there before. The sysctl
is never written (and does not show descriptors' holds), so nothing is left to undo.

bpf(2) is called through ctypes, not bcc: this module needs only the programs' descriptors
(SyscallProgram.program_fds) and works for any loaded program.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable, Mapping

from syscall_tables import canonical_arch, syscall_number
from tracing.model.bpf_cost import BpfTotals

BPF_OBJ_GET_INFO_BY_FD = 15  # enum bpf_cmd (include/uapi/linux/bpf.h)
BPF_ENABLE_STATS = 32
BPF_STATS_RUN_TIME = 0  # enum bpf_stats_type
# struct bpf_prog_info: run_time_ns and run_cnt (u64) at these offsets since Linux 5.1; a
# kernel fills as much of the buffer as it knows and reports the length it wrote.
RUN_TIME_NS_OFFSET = 192
RUN_CNT_OFFSET = 200
PROG_INFO_SIZE = 232
STATS_SYSCTL = "/proc/sys/kernel/bpf_stats_enabled"

# How much of the time statistics are on (see BpfCostMeter).
MODE_VARIABLE = "SIKTE_BPF_STATS"
SAMPLED, ALWAYS, OFF = "sampled", "always", "off"
# A stretch with statistics on lasts at least ON_S: it ends at the first tick after (one tick
# at the default 4 a second). Tens of thousands of calls at high rates: enough for the figure.
ON_S = 0.2
DUTY = 0.05  # at most this share of the time on: about 5 s between stretches

# The syscall programs of bpf/syscalls.bpf.c as bcc names them: the entry program runs once
# per syscall entered anywhere on the machine (its run count is the calls), the exit one once
# per return. (fentry/fexit programs for chosen syscalls would be named kfunc__/kretfunc__.)
ENTRY_PROGRAMS = ("raw_tracepoint__sys_enter",)
EXIT_PROGRAMS = ("raw_tracepoint__sys_exit",)


class _EnableStatsAttr(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint32)]


class _InfoAttr(ctypes.Structure):
    _fields_ = [("bpf_fd", ctypes.c_uint32), ("info_len", ctypes.c_uint32),
                ("info", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)


def _bpf_nr() -> int:
    nr = syscall_number("bpf", canonical_arch(platform.machine()))
    if nr is None:
        raise OSError(errno.ENOSYS, "no bpf syscall number for this architecture")
    return nr


def _bpf(cmd: int, attr: ctypes.Structure) -> int:
    ret = int(_libc.syscall(ctypes.c_long(_bpf_nr()), ctypes.c_int(cmd), ctypes.byref(attr),
                            ctypes.c_uint(ctypes.sizeof(attr))))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


def enable_run_stats() -> int:
    """Turn BPF run-time statistics on for as long as the returned descriptor is open
    (OSError: an old kernel, EINVAL; no CAP_SYS_ADMIN, EPERM)."""
    fd = _bpf(BPF_ENABLE_STATS, _EnableStatsAttr(BPF_STATS_RUN_TIME))
    os.set_inheritable(fd, False)  # a launched command must not keep them on after us
    return fd


def prog_run_stats(prog_fd: int) -> tuple[int, int]:
    """(run_time_ns, run_cnt) of one loaded program; (0, 0) from a kernel without them."""
    buf = ctypes.create_string_buffer(PROG_INFO_SIZE)
    attr = _InfoAttr(prog_fd, PROG_INFO_SIZE, ctypes.addressof(buf))
    _bpf(BPF_OBJ_GET_INFO_BY_FD, attr)
    if attr.info_len < RUN_CNT_OFFSET + 8:
        return 0, 0
    raw = buf.raw
    return (int.from_bytes(raw[RUN_TIME_NS_OFFSET:RUN_TIME_NS_OFFSET + 8], sys.byteorder),
            int.from_bytes(raw[RUN_CNT_OFFSET:RUN_CNT_OFFSET + 8], sys.byteorder))


def stats_sysctl() -> int | None:
    """/proc/sys/kernel/bpf_stats_enabled: the admin's setting (holds by descriptors do not
    show in it), None when it cannot be read."""
    try:
        with open(STATS_SYSCTL) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


class BpfCostMeter:
    """Run-time statistics on part of the time while tracing, and what our syscall programs
    cost while they were on.

    Statistics are not free: with them on the kernel reads the clock twice around every
    program run, two programs per syscall, which measured about 150 ns per call here on top
    of a tracer cost of about 470 (benchmarks/bpf_stats_cost.py). So by default ("sampled")
    they are on for a tick at a time (ON_S) and at most DUTY of the time -- the first stretch
    at the start, so a short trace is measured too -- and the figures are those of
    the stretches they were on: run time per syscall entered, and run time per second on (the
    CPU share). SIKTE_BPF_STATS=always keeps them on (exact totals, at that cost), =off never
    turns them on.

    `open` never raises: without statistics (an old kernel, no privilege) `read` gives None
    and the figures are shown as unknown, not as zero."""

    def __init__(self, entry_fds: Iterable[int], exit_fds: Iterable[int], mode: str = SAMPLED,
                 clock: Callable[[], int] = time.monotonic_ns) -> None:
        self._entry = tuple(entry_fds)
        self._exit = tuple(exit_fds)
        self._mode = mode
        self._clock = clock
        self.error: str | None = None
        self._stats_fd: int | None = None
        # Closed stretches: run time, runs, time on. The open one: its start and the
        # counters then (they count while anyone has statistics on: only our stretches are
        # taken).
        self._done = BpfTotals(0, 0, 0)
        self._on_since: int | None = None
        self._base = (0, 0)
        self._off_since = 0
        self._last_on_ns = 0
        self._failed = False
        self._told = False
        if self._entry and mode != OFF:
            self._turn_on()

    @classmethod
    def open(cls, program_fds: Mapping[str, int], exit_only: bool = False) -> BpfCostMeter:
        """For the syscall programs among a program's loaded functions (by name). With
        `exit_only` (--timing off counting at sys_exit, its sys_enter attached only while
        events are selected) the exit program's run count is the calls."""
        entry = [fd for name, fd in program_fds.items() if name in ENTRY_PROGRAMS]
        exits = [fd for name, fd in program_fds.items() if name in EXIT_PROGRAMS]
        if exit_only:
            entry, exits = exits, entry
        mode = os.environ.get(MODE_VARIABLE, SAMPLED)
        meter = cls(entry, exits, mode if mode in (SAMPLED, ALWAYS, OFF) else SAMPLED)
        if not entry:
            meter.error = "no syscall entry program found"
        return meter

    @property
    def enabled(self) -> bool:
        """Statistics are on now (held by us)."""
        return self._stats_fd is not None

    def _totals(self) -> tuple[int, int]:
        run_ns = runs = 0
        for fd in self._entry:
            ns, cnt = prog_run_stats(fd)
            run_ns += ns
            runs += cnt
        for fd in self._exit:
            run_ns += prog_run_stats(fd)[0]
        return run_ns, runs

    def _turn_on(self) -> None:
        try:
            self._stats_fd = enable_run_stats()
            self._base = self._totals()
        except OSError as err:
            self._turn_off()
            self._failed = True  # not tried again: the kernel or our privileges said no
            self.error = f"BPF statistics unavailable: {err.strerror}"
            return
        self._on_since = self._clock()

    def _turn_off(self) -> None:
        fd, self._stats_fd = self._stats_fd, None
        if fd is not None:
            os.close(fd)

    def _current(self, now: int) -> BpfTotals:
        """The closed stretches and the open one up to now."""
        done = self._done
        if self._on_since is None:
            return done
        run_ns, runs = self._totals()
        return BpfTotals(done.run_ns + run_ns - self._base[0], done.runs + runs - self._base[1],
                         done.on_ns + now - self._on_since)

    def read(self) -> BpfTotals | None:
        """Run time of the syscall programs, syscalls entered and time on, over the stretches
        statistics were on since `open` (None: never on). Called at each tick: it also turns
        them off at the end of a stretch, and on again when the next one is due."""
        if self._failed or self._mode == OFF or not self._entry:
            return None
        now = self._clock()
        try:
            totals = self._current(now)
        except OSError:
            return None
        if self._on_since is not None:
            if self._mode == SAMPLED and now - self._on_since >= ON_S * 1e9:
                self._done, self._last_on_ns = totals, now - self._on_since
                self._on_since = None
                self._turn_off()
                self._off_since = now
        elif now - self._off_since >= self._last_on_ns * (1 / DUTY - 1):
            self._turn_on()
        return totals if totals.on_ns > 0 else None

    def take_notices(self) -> tuple[str, ...]:
        """Why there are no figures, once (for the user: record prints it)."""
        if self.error is None or self._told:
            return ()
        self._told = True
        return (f"{self.error}; the BPF cost is not shown",)

    def close(self) -> None:
        """Statistics back to how they were (off unless someone else holds them on)."""
        self._on_since = None
        self._turn_off()
