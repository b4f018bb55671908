"""The bcc loader: the only module that imports bcc.

Compiles bpf/syscalls.bpf.c with options passed as -D flags, attaches it, and turns its maps
and ring buffers into plain data (tracing.model types, bytes and ints). Nothing here knows
about snapshots, the UI or the session store.
"""

from __future__ import annotations

import ctypes
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from syscall_tables import syscall_number
from tracing import kheaders, tracefs
from tracing.errors import UserError
from tracing.model import HIST_BUCKETS, Drops, ProcEvent, StatKey, SyscallStats, hist_from_dense

BPF_DIR = Path(__file__).resolve().parent.parent / "bpf"
SYSCALLS_PROGRAM = BPF_DIR / "syscalls.bpf.c"

# The layout of struct sys_event in bpf/syscalls.bpf.c, for parsing batches with numpy.
SYS_EVENT_DTYPE = np.dtype(
    [
        ("ts", "<u8"),
        ("pid", "<u4"),
        ("tid", "<u4"),
        ("nr", "<u8"),
        ("ret", "<i8"),
        ("duration_ns", "<u8"),
        ("args", "<u8", (6,)),
    ]
)


class _ProcEventC(ctypes.Structure):
    _fields_ = [
        ("ts", ctypes.c_uint64),
        ("kind", ctypes.c_uint32),
        ("pid", ctypes.c_uint32),
        ("tid", ctypes.c_uint32),
        ("ppid", ctypes.c_uint32),
        ("status", ctypes.c_int32),
        ("flags", ctypes.c_uint32),
        ("comm", ctypes.c_char * 16),
        ("filename", ctypes.c_char * 128),
    ]


@dataclass(frozen=True)
class EventSelection:
    """Which individual syscalls the kernel sends up (aggregates always count every one)."""

    all: bool = False
    failed: bool = True
    slow_ns: int = 0
    sample_n: int = 0

    @property
    def any(self) -> bool:
        return self.all or self.failed or self.slow_ns > 0 or self.sample_n > 0


@dataclass(frozen=True)
class EngineOptions:
    follow: bool = True
    events: EventSelection = EventSelection()
    ringbuf_pages: int = 1024  # 4 MiB with 4 KiB pages
    stats_entries: int = 65536


def _pid_words() -> int:
    try:
        pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    except (OSError, ValueError):
        pid_max = 4194304  # the largest the kernel allows
    return (pid_max + 63) // 64


def _kernel_at_least(major: int, minor: int) -> bool:
    release = platform.release().split("-")[0].split(".")
    try:
        return (int(release[0]), int(release[1])) >= (major, minor)
    except (IndexError, ValueError):
        return False


def _exit_numbers(arch: str) -> dict[str, int]:
    """Syscall numbers that end a task, native and compat, for the exit status."""
    compat = {"x86_64": "i386", "arm64": "arm"}.get(arch, arch)
    numbers = {}
    for macro, name, table in (
        ("NR_EXIT", "exit", arch),
        ("NR_EXIT_GROUP", "exit_group", arch),
        ("NR_EXIT_COMPAT", "exit", compat),
        ("NR_EXIT_GROUP_COMPAT", "exit_group", compat),
    ):
        nr = syscall_number(name, table)
        numbers[macro] = -1 if nr is None else nr
    return numbers


def build_cflags(options: EngineOptions, arch: str) -> list[str]:
    ev = options.events
    defines = {
        "PID_WORDS": _pid_words(),
        "FOLLOW": int(options.follow),
        "EV_ALL": int(ev.all),
        "EV_FAILED": int(ev.failed),
        "EV_SLOW_NS": f"{int(ev.slow_ns)}ULL",
        "EV_SAMPLE_N": f"{int(ev.sample_n)}ULL",
        "RINGBUF_PAGES": options.ringbuf_pages,
        "STATS_ENTRIES": options.stats_entries,
        "HAVE_GROUP_DEAD": int(tracefs.has_field("sched", "sched_process_exit", "group_dead")),
        "USE_TASK_STORAGE": int(_kernel_at_least(5, 11)),
        **_exit_numbers(arch),
    }
    return [f"-D{k}={v}" for k, v in defines.items()]


def program_text() -> str:
    return SYSCALLS_PROGRAM.read_text()


class SyscallProgram:
    """The loaded syscall tracer: target map, aggregates and event streams."""

    def __init__(self, options: EngineOptions, arch: str) -> None:
        tracefs.ensure_mounted()
        kheaders.prepare_bcc_environment(kheaders.find_kernel_headers())
        import bcc  # the one place bcc is imported

        self.cflags = build_cflags(options, arch)
        try:
            self._bpf = bcc.BPF(src_file=str(SYSCALLS_PROGRAM).encode(), cflags=self.cflags)
        except Exception as err:  # bcc raises bare Exception for compile and load failures
            raise UserError(
                f"could not load the eBPF program ({err}); run 'sikte-tui doctor' for a fix",
                exit_code=1,
            ) from err
        self._targets = self._bpf[b"targets"]
        self._stats = self._bpf[b"stats"]
        self._counters = self._bpf[b"counters"]
        self._event_chunks: list[bytes] = []
        self._proc_events: list[ProcEvent] = []
        self._deadline = 0.0
        self._bpf[b"events"].open_ring_buffer(self._on_event)
        self._bpf[b"proc_events"].open_ring_buffer(self._on_proc_event)

    # -- targets ---------------------------------------------------------------------------

    def set_target(self, pid: int, on: bool = True) -> None:
        # Read-modify-write of one 64-pid word; the kernel changes words only at fork and
        # exit of traced tasks, so the window for a lost update is tiny.
        key = self._targets.Key(pid >> 6)
        word = self._targets[key].value
        bit = 1 << (pid & 63)
        self._targets[key] = self._targets.Leaf(word | bit if on else word & ~bit)

    def is_target(self, pid: int) -> bool:
        return bool(self._targets[self._targets.Key(pid >> 6)].value & (1 << (pid & 63)))

    # -- event streams ---------------------------------------------------------------------

    def _on_event(self, _ctx: int, data: int, size: int) -> int:
        chunks = self._event_chunks
        chunks.append(ctypes.string_at(data, size))
        # Under a flood the poll would never return; stop it now and then at the deadline.
        if not len(chunks) & 0xFFF and time.monotonic() >= self._deadline:
            return -1
        return 0

    def _on_proc_event(self, _ctx: int, data: int, _size: int) -> int:
        e = ctypes.cast(data, ctypes.POINTER(_ProcEventC)).contents
        self._proc_events.append(
            ProcEvent(
                ts_ns=e.ts,
                kind=e.kind,
                pid=e.pid,
                tid=e.tid,
                ppid=e.ppid,
                status=e.status,
                process_gone=bool(e.flags & 1),
                comm=e.comm.decode(errors="replace"),
                filename=e.filename.decode(errors="replace"),
            )
        )
        return 0

    def poll_until(self, deadline: float) -> None:
        """Take events until the monotonic deadline (at least whatever is waiting now)."""
        self._deadline = deadline
        timeout_ms = max(0, int((deadline - time.monotonic()) * 1000))
        self._bpf.ring_buffer_poll(timeout_ms)

    def take_events(self) -> np.ndarray:
        """Syscall events received since the last call, as a SYS_EVENT_DTYPE array."""
        chunks, self._event_chunks = self._event_chunks, []
        if not chunks:
            return np.empty(0, dtype=SYS_EVENT_DTYPE)
        return np.frombuffer(b"".join(chunks), dtype=SYS_EVENT_DTYPE)

    def take_proc_events(self) -> list[ProcEvent]:
        events, self._proc_events = self._proc_events, []
        return events

    # -- aggregates ------------------------------------------------------------------------

    def read_stats(self) -> dict[StatKey, SyscallStats]:
        """Every (pid, tid, syscall) aggregate, cumulative since load."""
        try:
            items = self._stats.items_lookup_batch()
        except Exception:  # batch ops need 5.6+; fall back to the one-by-one walk
            items = self._stats.items()
        result = {}
        for k, v in items:
            result[StatKey(k.pid, k.tid, k.nr)] = SyscallStats(
                count=v.count,
                errors=v.errors,
                total_ns=v.total_ns,
                min_ns=v.min_ns,
                max_ns=v.max_ns,
                hist=hist_from_dense(v.hist[:HIST_BUCKETS]),
            )
        return result

    def clear_stats(self) -> None:
        self._stats.clear()

    def read_drops(self) -> Drops:
        totals = [sum(self._counters[self._counters.Key(i)]) for i in range(5)]
        return Drops(*totals)

    def close(self) -> None:
        self._bpf.cleanup()
