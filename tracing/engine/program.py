"""The loaded BPF program: compile flags, the C text, and SyscallProgram, which loads it.

Compiles bpf/syscalls.bpf.c (with tcp.bpf.c and profile.bpf.c when asked) with options passed
as -D flags, attaches it, and turns its maps and ring buffers into plain data
(tracing.model.stats types, bytes and ints). Its parts live beside it: the struct mirrors and
map reader (`maps`), the event ring read from its mapping (`ringbuf`), what the kernel is
told about capturing arguments (`capture_config`), the stack sampler (`sampler`), function
probes (`uprobes`), ELF symbols (`elf`) and the typed view of bcc (`bcc_types`). Nothing
here knows about snapshots, the UI or the session store.
"""

from __future__ import annotations

import ctypes
import dataclasses
import math
import os
import platform
import select
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from syscall_tables import syscall_number
from tracing.decode.argspec import load_specs
from tracing.engine import kheaders, tracefs
from tracing.engine.aggregates import AggregateReader, BaseOf
from tracing.engine.bcc_types import BccProgram
from tracing.engine.capture_config import arg_spec_entries, capture_defines, config_value
from tracing.engine.clone_defines import clone_defines
from tracing.engine.maps import (
    DROP_SLOTS,
    FD_IO_DTYPE,
    FD_KEY_DTYPE,
    PROC_FLAG_GONE,
    PROC_FLAG_THREAD,
    BatchReader,
    ProcEventC,
    delete_entry,
)
from tracing.engine.ringbuf import EventQueue
from tracing.engine.sampler import StackSampler
from tracing.engine.task_offsets import proc_events_pages, task_offset_defines
from tracing.engine.uprobes import attach_probes
from tracing.errors import UserError
from tracing.model.captures import IoTotals
from tracing.model.connections import Connection
from tracing.model.probes import PROBE_NR_BASE
from tracing.model.samples import StackSample
from tracing.model.selection import EventSelection
from tracing.model.stats import (
    EVENT_DTYPE,
    HIST_BUCKETS,
    HIST_PMAX,
    HIST_SUB,
    HIST_SUB_BITS,
    Drops,
    ProcessInfo,
    ProcEvent,
    ProcKind,
    StatKey,
    SyscallStats,
)
from tracing.model.timing import Timing
from tracing.net.containers import ContainerLookup
from tracing.net.tcp_monitor import TcpMonitor

BPF_DIR = Path(__file__).resolve().parents[2] / "bpf"
SYSCALLS_PROGRAM = BPF_DIR / "syscalls.bpf.c"
# Optional parts compiled into the same object, after syscalls.bpf.c, so they share its
# target map (is_target(), children followed at fork) instead of keeping one of their own.
TCP_PROGRAM = BPF_DIR / "tcp.bpf.c"
PROFILE_PROGRAM = BPF_DIR / "profile.bpf.c"
# Per half of the sample maps, which hold a tick's samples: sized by CPUs and rate.
MIN_ENTRIES, MAX_STACKS, MAX_SAMPLES = 8192, 65536, 262144
TICK_S, LONGEST_TICK_S = 0.25, 2.0  # the tracer's usual tick, and its longest (busy) one
# poll_until: after a pass that took at least GATHER_MIN events, sleep GATHER_S before the
# next (a 4 MiB ring holds over 0.1 s of events at 250,000 a second with paths).
GATHER_MIN, GATHER_S = 64, 0.004


def _pow2(n: float) -> int:
    return 1 << max(int(n) - 1, 1).bit_length()


def sample_map_entries(hz: int, cpus: int | None = None) -> tuple[int, int]:
    """(stack map, sample map) entries per half. get_stackid loses a stack when two hash to
    one bucket, so the stack map (~1 KiB an entry) gets 16 buckets per sample of a usual
    tick; the sample map (small entries) holds every sample of the longest tick twice."""
    samples_per_s = (cpus or os.cpu_count() or 1) * max(hz, 1)
    stacks = min(max(_pow2(samples_per_s * TICK_S * 16), MIN_ENTRIES), MAX_STACKS)
    counts = min(max(_pow2(samples_per_s * LONGEST_TICK_S * 2), MIN_ENTRIES), MAX_SAMPLES)
    return stacks, counts


@dataclass(frozen=True)
class EngineOptions:
    follow: bool = True
    events: EventSelection = dataclasses.field(default_factory=EventSelection)
    ringbuf_pages: int = 1024  # 4 MiB with 4 KiB pages
    # The stats map's capacity (BPF_F_NO_PREALLOC: the kernel allocates ~1.3 KiB per entry
    # in use, not this many). It holds the live threads' entries plus those of threads that
    # exited since the last tick (retired then): at 1,000 short processes a second, ~25
    # entries each and a tick of up to 2 s, ~75,000; a quarter million leaves room for more.
    stats_entries: int = 262144
    fd_io_entries: int = 65536  # descriptors with I/O counted at once (fd_io map)
    tcp: bool = False  # bpf/tcp.bpf.c: TCP connection lifecycles of the targets
    sample_hz: int = 0  # bpf/profile.bpf.c: on-CPU stack samples at this rate (0: off)
    uprobes: tuple[str, ...] = ()  # "BINARY_OR_LIB:FUNCTION" probes counted like syscalls
    timing: Timing = Timing.EXACT  # how calls are timed (TIMING_MODE in the C)


SYS_ENTER, SYS_ENTER_FN = b"sys_enter", b"raw_tracepoint__sys_enter"
# Timing -> the C's TIMING_MODE (bpf/syscalls.bpf.c's TIMING_EXACT, _SAMPLED, _OFF).
TIMING_MODES: dict[Timing, int] = {Timing.EXACT: 0, Timing.SAMPLED: 1, Timing.OFF: 2}


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


def _hidden_defines(options: EngineOptions, arch: str) -> dict[str, int]:
    """The `uretprobe` syscall (x86_64 from Linux 6.11) returns from every probed function
    when --uprobe probes are attached: ours, not the target's. A flag says whether anything
    is hidden, so no real number (syscall(-1) included) can equal a sentinel."""
    nr = syscall_number("uretprobe", arch) if options.uprobes else None
    return {"HAVE_HIDDEN": int(nr is not None), "NR_HIDDEN": 0 if nr is None else nr}


def histogram_defines() -> dict[str, int]:
    """The latency histogram's layout for the C: tracing.model.stats is its one definition
    (percentiles are computed there from the buckets the kernel fills)."""
    return {
        "HIST_SUB": HIST_SUB,
        "HIST_SUB_BITS": HIST_SUB_BITS,
        "HIST_PMAX": HIST_PMAX,
        "HIST_BUCKETS": HIST_BUCKETS,
    }


def exit_only(options: EngineOptions, offsets: dict[str, int]) -> bool:
    """--timing off counts at sys_exit alone (EXIT_ONLY in the C) where the kernel has
    bpf_task_pt_regs (5.15: exit and exit_group are counted from the task's registers) and
    its BTF gives a new task's tgid (a thread told from a process without the entry), with
    sched_prepare_exec (6.10: an exec's number and ABI as called, which its exit no longer
    holds when the new program's ABI differs). Not
    with --uprobe: the uretprobe syscall returns with the "no call" number, which exit-only
    counting takes for syscall(-1)."""
    return (Timing(options.timing) == Timing.OFF and _kernel_at_least(5, 15)
            and offsets["TASK_TGID_OFF"] >= 0 and not options.uprobes
            and tracefs.has_field("sched", "sched_prepare_exec", "filename"))


def build_cflags(options: EngineOptions, arch: str) -> list[str]:
    """The -D flags; the event selection is not among them (a map, switched at run time)."""
    offsets = task_offset_defines()
    defines = {
        "PID_WORDS": _pid_words(),
        "FOLLOW": int(options.follow),
        "RINGBUF_PAGES": options.ringbuf_pages,
        "STATS_ENTRIES": options.stats_entries,
        "FD_IO_ENTRIES": options.fd_io_entries,
        "HAVE_GROUP_DEAD": int(tracefs.has_field("sched", "sched_process_exit", "group_dead")),
        "USE_TASK_STORAGE": int(_kernel_at_least(5, 11)),
        "STACK_ENTRIES": sample_map_entries(options.sample_hz)[0],
        "SAMPLE_ENTRIES": sample_map_entries(options.sample_hz)[1],
        "PROBE_NR_BASE": f"{PROBE_NR_BASE}U",
        "TIMING_MODE": TIMING_MODES[Timing(options.timing)],
        "EXIT_ONLY": int(exit_only(options, offsets)),
        **_hidden_defines(options, arch),
        **offsets,
        "PROC_EVENTS_PAGES": proc_events_pages(),
        **histogram_defines(),
        **capture_defines(arch),
        **clone_defines(arch),
    }
    return [f"-D{k}={v}" for k, v in defines.items()]


def program_parts(options: EngineOptions | None = None) -> list[Path]:
    """The C files compiled together, in order, for these options."""
    parts = [SYSCALLS_PROGRAM]
    if options is not None and options.tcp:
        parts.append(TCP_PROGRAM)
    if options is not None and (options.sample_hz or options.uprobes):
        parts.append(PROFILE_PROGRAM)
    return parts


def program_text(options: EngineOptions | None = None) -> str:
    return "\n".join(f"// ---- {p.name}\n{p.read_text()}" for p in program_parts(options))



class SyscallProgram:
    """The loaded syscall tracer: target map, aggregates and event streams."""

    def __init__(self, options: EngineOptions, arch: str,
                 containers: ContainerLookup | None = None) -> None:
        """`containers` names the connections' containers (options.tcp); the tracer gives
        a BackgroundResolver, whose look-ups never block this thread."""
        tracefs.ensure_mounted()
        kheaders.prepare_bcc_environment(kheaders.find_kernel_headers())
        import bcc  # the one place bcc is imported

        self.cflags = build_cflags(options, arch)
        # No in-flight slots, and sys_enter attached only while events are selected.
        self.exit_only = "-DEXIT_ONLY=1" in self.cflags
        self._enter_attached = True  # bcc attaches every *_PROBE at load
        try:
            self._bpf: BccProgram = bcc.BPF(text=program_text(options).encode(), cflags=self.cflags)
        except Exception as err:  # bcc raises bare Exception for compile and load failures
            raise UserError(
                f"could not load the eBPF program ({err}); run 'sikte-tui doctor' for a fix",
                exit_code=1,
            ) from err
        self._targets = self._bpf[b"targets"]
        self._exec_armed = self._bpf[b"exec_armed"]
        self._stats = self._bpf[b"stats"]
        self._aggregates = AggregateReader(self._stats, _pid_words() * 64,
                                           settled_by_hist=options.timing == Timing.EXACT)
        self._counters = self._bpf[b"counters"]
        self._config = self._bpf[b"config"]
        self._fd_io = self._bpf[b"fd_io"]
        self._fd_io_reader = BatchReader(self._fd_io, FD_KEY_DTYPE, FD_IO_DTYPE)
        self._proc_events: list[ProcEvent] = []
        # The syscall events are read from the ring's mapping (tracing.engine.ringbuf), the
        # other ring buffers through bcc: one poll waits on all of them.
        events = self._bpf[b"events"]
        self._events = EventQueue(events.map_fd, events.open_ring_buffer)
        self._bpf[b"proc_events"].open_ring_buffer(self._on_proc_event)
        self._poll = select.poll()
        self._poll.register(events.map_fd, select.POLLIN)
        self._poll.register(self._bpf[b"proc_events"].map_fd, select.POLLIN)
        self.sampler: StackSampler | None = None
        self.tcp: TcpMonitor | None = None
        self._notices_taken = 0  # the TCP seeder's errors already handed out
        try:
            self._fill_arg_kinds(arch)
            self.set_selection(options.events)
            if options.tcp:
                self.tcp = TcpMonitor(self._bpf, containers)
                self._poll.register(self._bpf[b"tcp_events"].map_fd, select.POLLIN)
            if options.sample_hz:
                self.sampler = StackSampler(self._bpf, options.sample_hz)
            attach_probes(self._bpf, options.uprobes)
        except BaseException:
            self._events.close()
            self._bpf.cleanup()
            raise

    # -- targets ---------------------------------------------------------------------------

    def map_fd(self, name: bytes) -> int:
        """The fd of one of the program's maps, by name, for readers bcc's table classes
        cannot serve (task storage: tracing/engine/inflight.py)."""
        from bcc.libbcc import lib  # loaded with the program already

        fd = int(lib.bpf_table_fd(self._bpf.module, name))
        if fd < 0:
            raise KeyError(name.decode())
        return fd

    def set_target(self, pid: int, on: bool = True, at_exec: bool = False) -> None:
        """Trace pid (or stop). With at_exec, none of its calls count until the entry of its
        first execve or execveat, which does: a launched command's launcher (one at a time;
        arming another pid disarms the last)."""
        armed = self._exec_armed.Key(0)
        if on and at_exec:  # armed before its bit is set: no call slips through
            self._exec_armed[armed] = self._exec_armed.Leaf(pid)
        elif self._exec_armed[armed].value == pid:
            self._exec_armed[armed] = self._exec_armed.Leaf(0)
        # Read-modify-write of one 64-pid word; the kernel changes words only at fork and
        # exit of traced tasks, so the window for a lost update is tiny.
        key = self._targets.Key(pid >> 6)
        word = self._targets[key].value
        bit = 1 << (pid & 63)
        self._targets[key] = self._targets.Leaf(word | bit if on else word & ~bit)

    def is_target(self, pid: int) -> bool:
        return bool(self._targets[self._targets.Key(pid >> 6)].value & (1 << (pid & 63)))

    # -- what the kernel captures ----------------------------------------------------------

    def _fill_arg_kinds(self, arch: str) -> None:
        table = self._bpf[b"arg_kinds"]
        for index, (kinds, effects) in arg_spec_entries(load_specs(), arch).items():
            table[table.Key(index)] = table.Leaf(kinds, effects)

    def set_selection(self, selection: EventSelection) -> None:
        """Which calls become events from now on, and whether descriptors are followed."""
        self._config[self._config.Key(0)] = self._config.Leaf(*config_value(selection))
        if self.exit_only and self._enter_attached != bool(selection.bits):
            # Exit-only: sys_enter only captures an exec's fields, for its event. (An exec
            # in flight while it is attached has no fields: its record says so.)
            if selection.bits:
                self._bpf.attach_raw_tracepoint(tp=SYS_ENTER, fn_name=SYS_ENTER_FN)
            else:
                self._bpf.detach_raw_tracepoint(tp=SYS_ENTER)
            self._enter_attached = bool(selection.bits)

    # -- event streams ---------------------------------------------------------------------

    def _on_proc_event(self, _ctx: int, data: int, _size: int) -> int:
        e = ctypes.cast(data, ctypes.POINTER(ProcEventC)).contents
        self._proc_events.append(
            ProcEvent(
                ts_ns=e.ts,
                kind=ProcKind(e.kind),
                pid=e.pid,
                tid=e.tid,
                ppid=e.ppid,
                status=e.status,
                process_gone=bool(e.flags & PROC_FLAG_GONE),
                comm=e.comm.decode(errors="replace"),
                filename=e.filename.decode(errors="replace"),
                thread=e.kind == ProcKind.FORK and bool(e.flags & PROC_FLAG_THREAD),
            )
        )
        if self.sampler is not None and e.kind == ProcKind.EXEC:  # new maps: capture them soon
            self.sampler.note_exec(e.pid)
        elif self.sampler is not None and e.kind == ProcKind.FORK:
            self.sampler.note_fork(e.tid, e.ppid)
        # libbpf's consume returns only once the ring is empty: a target renaming its
        # threads faster than this callback runs (prctl is well under a microsecond) would
        # hold the engine thread here for ever. Stopped at the pass's deadline (the record
        # is taken), the rest waits in the ring or is counted as dropped.
        if not len(self._proc_events) & 0xFF and time.monotonic() >= self._events.deadline:
            return -1
        return 0

    def _consume(self, deadline: float) -> int:
        """One pass over every ring buffer; the syscall events taken."""
        self._events.deadline = deadline  # bcc's callback path stops a flood there
        if self.tcp is not None:  # so do the TCP events' (a target's connect/close loop)
            self.tcp.deadline = deadline
        taken = self._events.read()
        self._bpf.ring_buffer_consume()
        return taken

    def drain(self, deadline: float = float("inf")) -> None:
        """Take everything waiting in the ring buffers (until the deadline, if producers are
        still running), however much it is."""
        while self._consume(deadline) and time.monotonic() < deadline:
            pass

    def poll_until(self, deadline: float) -> None:
        """Take events until the monotonic deadline (at least whatever is waiting now).

        While events keep coming, each pass is followed by a short sleep (GATHER_S, far less
        than the ring holds at any rate) instead of a wait that the next record would end:
        passes of thousands of records, not of a few, each costing a copy and some numpy."""
        if self.sampler is not None:  # wake up in time to capture just-exec'd processes
            deadline = min(deadline, self.sampler.capture_due())
        while True:
            busy = self._consume(deadline) >= GATHER_MIN
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if busy:
                time.sleep(min(left, GATHER_S))
            else:
                self._poll.poll(max(1, math.ceil(left * 1000)))

    def take_events(self) -> tuple[np.ndarray, list[bytes]]:
        """The records received since the last call, selected events and bookkeeping ones
        (EVF_SELECTED tells them apart): a writable EVENT_DTYPE array of their headers, and
        the captured fields of each (b"" when none)."""
        return self._events.take(EVENT_DTYPE)

    def take_proc_events(self) -> list[ProcEvent]:
        events, self._proc_events = self._proc_events, []
        return events

    # -- aggregates ------------------------------------------------------------------------

    def read_changes(self, base_of: BaseOf | None = None) -> dict[StatKey, SyscallStats]:
        """The totals of the aggregates new or changed since the last call
        (tracing/engine/aggregates.py)."""
        return self._aggregates.read_changes(base_of)

    def retire(self, threads: set[tuple[int, int]], processes: set[int]) -> None:
        """Delete exited threads' entries from the kernel map (their final values have been
        read); the sampler forgets exited processes."""
        if self.sampler is not None:
            self.sampler.retire(processes)
        self._aggregates.retire(threads, processes)

    # -- per-descriptor I/O ----------------------------------------------------------------

    def read_fd_io(self) -> dict[tuple[int, int], IoTotals]:
        """(pid, fd) -> the I/O counted so far on each descriptor still open."""
        keys, values = self._fd_io_reader.read()
        return dict(zip(zip(keys["pid"].tolist(), keys["fd"].tolist(), strict=True),
                        map(IoTotals._make, values.tolist()), strict=True))

    def take_fd_io(self, pids: set[int]) -> dict[int, dict[int, IoTotals]]:
        """pid -> fd -> totals left for processes that are gone; their entries are deleted."""
        if not pids:
            return {}
        keys, values = self._fd_io_reader.read()
        rows = np.flatnonzero(np.isin(keys["pid"], list(pids))).tolist()
        found: dict[int, dict[int, IoTotals]] = {}
        for i in rows:
            found.setdefault(int(keys["pid"][i]), {})[int(keys["fd"][i])] = \
                IoTotals._make(values[i].tolist())
            delete_entry(self._fd_io, keys[i].tobytes())
        return found

    def read_drops(self) -> Drops:
        totals = [sum(self._counters[self._counters.Key(i)]) for i in range(DROP_SLOTS)]
        drops = Drops(events=totals[0], stats_full=totals[1], proc_events=totals[2],
                      inflight=totals[3], events_sent=totals[4], fd_events=totals[5])
        if self.sampler is not None:
            drops = dataclasses.replace(drops, **self.sampler.drops())
        if self.tcp is not None:
            drops = dataclasses.replace(drops, tcp_events=self.tcp.drops())
        return drops

    def take_notices(self) -> tuple[str, ...]:
        """What could not be looked up since the last call, one line each (the TCP sockets
        of the targets at attach)."""
        seeder = self.tcp.seeder if self.tcp is not None else None
        if seeder is None:
            return ()
        new = tuple(seeder.errors[self._notices_taken:])
        self._notices_taken += len(new)
        return new

    def read_connections(self) -> tuple[Connection, ...]:
        """The TCP connections new or changed since the last call."""
        return self.tcp.take_changed() if self.tcp is not None else ()

    def read_samples(self, processes: Mapping[int, ProcessInfo],
                     final: bool = False) -> tuple[StackSample, ...]:
        """The stacks whose sample counts grew since the last call (cumulative counts); they
        come a tick late, except with `final`."""
        return self.sampler.read(processes, final) if self.sampler is not None else ()

    def samples_until_ns(self) -> int:
        """When the samples of the last read_samples stopped being taken (0: no sampling)."""
        return self.sampler.read_until_ns if self.sampler is not None else 0

    def program_fds(self) -> dict[str, int]:
        """The loaded programs' fds by function name (their BPF run-time statistics:
        tracing/engine/bpf_stats.py)."""
        funcs = getattr(self._bpf, "funcs", {})  # bcc's loaded functions (not in BccProgram)
        return {name.decode(): int(fn.fd) for name, fn in funcs.items()}

    def close(self) -> None:
        self._events.close()
        self._bpf.cleanup()
