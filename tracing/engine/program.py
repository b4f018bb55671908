"""The bcc loader: the only module that imports bcc.

Compiles bpf/syscalls.bpf.c with options passed as -D flags, attaches it, and turns its maps
and ring buffers into plain data (tracing.model.stats types, bytes and ints). Nothing here knows
about snapshots, the UI or the session store.
"""

from __future__ import annotations

import ctypes
import dataclasses
import errno
import os
import platform
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from syscall_tables import syscall_number
from tracing.engine import kheaders, tracefs
from tracing.engine.symbols import Frame, KernelSymbols, UserSymbols
from tracing.errors import UserError
from tracing.model.connections import Connection
from tracing.model.probes import PROBE_NR_BASE, ProbeSpec, parse_probes
from tracing.model.samples import KERNEL_MODULE, SampleCounter, StackSample
from tracing.model.stats import (
    EVENT_DTYPE,
    HIST_BUCKETS,
    Drops,
    ProcessInfo,
    ProcEvent,
    ProcKind,
    StatKey,
    SyscallStats,
    merge_stats,
    no_events,
)
from tracing.net.containers import ContainerLookup
from tracing.net.tcp_monitor import TcpMonitor

ENOTSUPP = 524  # the kernel-internal errno the bpf syscall returns for unsupported ops

BPF_DIR = Path(__file__).resolve().parents[2] / "bpf"
SYSCALLS_PROGRAM = BPF_DIR / "syscalls.bpf.c"
# Optional parts compiled into the same object, after syscalls.bpf.c, so they share its
# target map (is_target(), children followed at fork) instead of keeping one of their own.
TCP_PROGRAM = BPF_DIR / "tcp.bpf.c"
PROFILE_PROGRAM = BPF_DIR / "profile.bpf.c"
# Per half of the sample maps, which hold a tick's samples: sized by CPUs and rate.
MIN_ENTRIES, MAX_STACKS, MAX_SAMPLES = 8192, 65536, 262144
TICK_S, LONGEST_TICK_S = 0.25, 2.0  # the tracer's usual tick, and its longest (busy) one


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



STAT_KEY_DTYPE = np.dtype([("pid", "<u4"), ("tid", "<u4"), ("nr", "<u4"), ("pad", "<u4")])
STAT_VALUE_DTYPE = np.dtype([
    ("count", "<u8"),
    ("errors", "<u8"),
    ("total_ns", "<u8"),
    ("min_ns", "<u8"),
    ("max_ns", "<u8"),
    ("hist", "<u4", (HIST_BUCKETS,)),
])


def _key_ids(keys: np.ndarray) -> np.ndarray:
    """One sortable 64-bit id per (pid, tid, nr) key: pids and tids fit 22 bits (pid_max is
    at most 2^22) and syscall numbers 20 bits: 18 of the number (every architecture's fit),
    function probes' bit 29 (PROBE_NR_BASE) in bit 18 and x32's bit 30 in bit 19."""
    nr = keys["nr"].astype(np.uint64)
    nr = (nr & 0x3FFFF) | (((nr >> 29) & 1) << 18) | (((nr >> 30) & 1) << 19)
    return (keys["pid"].astype(np.uint64) << 42) | (keys["tid"].astype(np.uint64) << 20) | nr


def _changed_rows(last_ids: np.ndarray, last_values: np.ndarray, last_counts: np.ndarray,
                  ids: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows (ids sorted) that are new or differ from the last read, and for each of them
    its values at the last read (zeros when new). last_counts marks rows to read again."""
    if not len(last_ids):
        return np.arange(len(ids)), np.zeros(len(ids), dtype=values.dtype)
    pos = np.minimum(np.searchsorted(last_ids, ids), len(last_ids) - 1)
    seen = last_ids[pos] == ids
    same = seen & (last_counts[pos] == values["count"]) \
        & (last_values["total_ns"][pos] == values["total_ns"])
    rows = np.flatnonzero(~same)
    previous = last_values[pos[rows]].copy()
    previous[~seen[rows]] = np.zeros(1, dtype=values.dtype)
    return rows, previous


class BatchReader:
    """Reads a whole hash map with BPF_MAP_LOOKUP_BATCH in fixed-size chunks into numpy
    arrays (bcc's own batch call allocates max_entries-sized buffers on every call)."""

    CHUNK = 4096

    def __init__(self, table: object, key_dtype: np.dtype, value_dtype: np.dtype) -> None:
        from bcc.libbcc import lib

        self._lib = lib
        self._fd = table.map_fd  # type: ignore[attr-defined]
        self._key_dtype, self._value_dtype = key_dtype, value_dtype
        assert key_dtype.itemsize == ctypes.sizeof(table.Key)  # type: ignore[attr-defined]
        assert value_dtype.itemsize == ctypes.sizeof(table.Leaf)  # type: ignore[attr-defined]
        self._keys = ctypes.create_string_buffer(key_dtype.itemsize * self.CHUNK)
        self._values = ctypes.create_string_buffer(value_dtype.itemsize * self.CHUNK)
        self._fallback = table

    def read(self) -> tuple[np.ndarray, np.ndarray]:
        keys, values = [], []
        # For hash maps the batch position is a bucket index (a u32).
        token_in, token_out = ctypes.c_uint32(0), ctypes.c_uint32(0)
        first = True
        while True:
            count = ctypes.c_uint32(self.CHUNK)
            res = self._lib.bpf_lookup_batch(self._fd,
                                             None if first else ctypes.byref(token_in),
                                             ctypes.byref(token_out), self._keys,
                                             self._values, ctypes.byref(count))
            err = ctypes.get_errno()
            n = count.value
            if n:
                keys.append(self._keys.raw[: n * self._key_dtype.itemsize])
                values.append(self._values.raw[: n * self._value_dtype.itemsize])
            if res != 0:
                if err == errno.ENOENT:  # the end of the map
                    break
                if first and err in (errno.EINVAL, ENOTSUPP, errno.EOPNOTSUPP):
                    return self._read_one_by_one()  # kernels before 5.6
                raise OSError(err, f"reading BPF map: {os.strerror(err)}")
            if n == 0:
                break
            token_in.value = token_out.value
            first = False
        return (np.frombuffer(b"".join(keys), dtype=self._key_dtype),
                np.frombuffer(b"".join(values), dtype=self._value_dtype))

    def _read_one_by_one(self) -> tuple[np.ndarray, np.ndarray]:
        items = list(self._fallback.items())  # type: ignore[attr-defined]
        keys = b"".join(bytes(k) for k, _ in items)
        values = b"".join(bytes(v) for _, v in items)
        return (np.frombuffer(keys, dtype=self._key_dtype),
                np.frombuffer(values, dtype=self._value_dtype))


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
    tcp: bool = False  # bpf/tcp.bpf.c: TCP connection lifecycles of the targets
    sample_hz: int = 0  # bpf/profile.bpf.c: on-CPU stack samples at this rate (0: off)
    uprobes: tuple[str, ...] = ()  # "BINARY_OR_LIB:FUNCTION" probes counted like syscalls


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


def _hidden_number(options: EngineOptions, arch: str) -> int:
    """The `uretprobe` syscall (x86_64 from Linux 6.11) returns from every probed function
    when --uprobe probes are attached: ours, not the target's. -1: nothing hidden."""
    nr = syscall_number("uretprobe", arch) if options.uprobes else None
    return -1 if nr is None else nr


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
        "STACK_ENTRIES": sample_map_entries(options.sample_hz)[0],
        "SAMPLE_ENTRIES": sample_map_entries(options.sample_hz)[1],
        "PROBE_NR_BASE": f"{PROBE_NR_BASE}U",
        **_exit_numbers(arch),
        "NR_HIDDEN": _hidden_number(options, arch),
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


# -- function probes (bpf/profile.bpf.c) ----------------------------------------------------


def probe_path(spec: ProbeSpec) -> str:
    """The file a probe goes in: a path as given, else a library as bcc finds it ("c" is
    libc), else a program on PATH. UserError (one line) when there is none."""
    target = spec.target
    if "/" in target:
        if not Path(target).is_file():
            raise UserError(f"--uprobe {target}:{spec.function}: no such file {target}; give "
                            "the path of a binary or library, or a library name like c")
        return os.path.abspath(target)
    import bcc

    found = bcc.BPF.find_library(target)
    if found:
        return found.decode()
    program = shutil.which(target)
    if program:
        return program
    raise UserError(f"--uprobe {target}:{spec.function}: no library or program named "
                    f"{target!r} (ldconfig -p lists libraries); give a path, or a library "
                    "name like c for libc")


def check_probes(texts: tuple[str, ...]) -> list[tuple[ProbeSpec, str]]:
    """Each probe with its file, its function checked to exist there: bad ones fail here,
    before anything is loaded."""
    import bcc

    checked = []
    for spec in parse_probes(texts):
        path = probe_path(spec)
        try:
            bcc.BPF._check_path_symbol(path, spec.function, None, -1)  # what attach does
        except Exception:  # bcc raises a bare Exception for an unknown symbol
            raise UserError(f"--uprobe {spec.target}:{spec.function}: no function "
                            f"{spec.function!r} in {path}; 'nm -D {path}' lists its "
                            "functions") from None
        checked.append((spec, path))
    return checked


def attach_probes(bpf: object, texts: tuple[str, ...]) -> None:
    """Probe i counts calls (entry) and latency (return) under nr PROBE_NR_BASE + i."""
    for i, (spec, path) in enumerate(check_probes(texts)):
        try:
            bpf.attach_uprobe(name=path, sym=spec.function,  # type: ignore[attr-defined]
                              fn_name=f"probe_entry_{i}".encode())
            bpf.attach_uretprobe(name=path, sym=spec.function,  # type: ignore[attr-defined]
                                 fn_name=f"probe_return_{i}".encode())
        except Exception as err:  # bcc raises bare Exception for attach failures
            raise UserError(f"--uprobe {spec.target}:{spec.function}: could not attach "
                            f"({err}); run 'sikte-tui doctor'", exit_code=1) from err


# -- on-CPU stack samples (bpf/profile.bpf.c) -----------------------------------------------

SAMPLE_KEY_DTYPE = np.dtype([("pid", "<u4"), ("tid", "<u4"), ("user_stack", "<i4"),
                             ("kernel_stack", "<i4")])
SAMPLE_COUNT_DTYPE = np.dtype("<u8")
EXEC_SETTLE_S = 0.02  # after an exec, the dynamic loader maps the libraries: read them then
MISSING_USER = "[missing user stack]"
LOST_STACK = "[stack lost: stack map collision or full]"
_SYMBOL_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.c_uint64,
                                    ctypes.c_uint64, ctypes.c_void_p)
_STT_FUNC, _STT_GNU_IFUNC = 2, 10


def _stack_lost(stack_id: int) -> bool:
    return stack_id in (-errno.EEXIST, -errno.ENOMEM)


class BccElfReader:
    """ELF function symbols through bcc's reader, which also finds separate debug files."""

    def __init__(self) -> None:
        from bcc.libbcc import bcc_symbol_option, lib

        self._lib = lib
        lib.bcc_elf_foreach_sym.argtypes = [ctypes.c_char_p, _SYMBOL_CALLBACK,
                                            ctypes.c_void_p, ctypes.c_void_p]
        lib.bcc_elf_foreach_sym.restype = ctypes.c_int
        lib.bcc_elf_foreach_vdso_sym.argtypes = [_SYMBOL_CALLBACK, ctypes.c_void_p]
        lib.bcc_elf_foreach_vdso_sym.restype = ctypes.c_int
        lib.bcc_elf_get_text_scn_info.argtypes = [ctypes.c_char_p,
                                                  ctypes.POINTER(ctypes.c_uint64),
                                                  ctypes.POINTER(ctypes.c_uint64)]
        lib.bcc_elf_get_text_scn_info.restype = ctypes.c_int
        # No .gnu_debuglink files: bcc would open a name the traced binary chooses, by path,
        # as root and blocking (a FIFO there hung the tracer; docs/security.md).
        self._option = bcc_symbol_option(use_debug_file=0, check_debug_file_crc=0,
                                         lazy_symbolize=0,
                                         use_symbol_type=(1 << _STT_FUNC) | (1 << _STT_GNU_IFUNC))

    @staticmethod
    def _collect(call: object) -> list[tuple[int, int, str]]:
        symbols: list[tuple[int, int, str]] = []

        def add(name: bytes, start: int, size: int, _payload: object) -> int:
            symbols.append((start, size, name.decode(errors="replace")))
            return 0

        call(_SYMBOL_CALLBACK(add))  # type: ignore[operator]
        return symbols

    def symbols(self, path: str) -> list[tuple[int, int, str]]:
        return self._collect(lambda cb: self._lib.bcc_elf_foreach_sym(
            path.encode(), cb, ctypes.byref(self._option), None))

    def text_section(self, path: str) -> tuple[int, int] | None:
        addr, offset = ctypes.c_uint64(), ctypes.c_uint64()
        if self._lib.bcc_elf_get_text_scn_info(path.encode(), ctypes.byref(addr),
                                               ctypes.byref(offset)) != 0:
            return None
        return addr.value, offset.value

    def vdso_symbols(self) -> list[tuple[int, int, str]]:
        return self._collect(lambda cb: self._lib.bcc_elf_foreach_vdso_sym(cb, None))


class StackSampler:
    """The perf cpu-clock events, the kernel's sample counts and the names of their frames.

    The kernel counts into one half of the sample and stack maps while the other is read and
    emptied: each read takes the half the kernel left a tick ago, so no sample is being
    written to it, then swaps. Samples thus arrive a tick late; the final read takes both.
    User frames are named from each process's maps, read when it is first sampled or just
    after it execs, and kept one read after it is gone (its last samples come a tick late)."""

    def __init__(self, bpf: object, hz: int) -> None:
        import bcc

        try:
            bpf.attach_perf_event(  # type: ignore[attr-defined]
                ev_type=bcc.PerfType.SOFTWARE, ev_config=bcc.PerfSWConfig.CPU_CLOCK,
                fn_name=b"on_cpu_sample", sample_freq=hz)
        except Exception as err:  # bcc raises bare Exception for attach failures
            raise UserError(f"could not start CPU sampling at {hz} Hz ({err}); trace without "
                            "it with --sample-hz 0", exit_code=1) from err
        self.hz = hz
        self._half = bpf[b"sample_half"]  # type: ignore[index]
        self._halves = [(bpf[f"samples_{i}".encode()],  # type: ignore[index]
                         bpf[f"stack_traces_{i}".encode()]) for i in (0, 1)]  # type: ignore[index]
        self._readers = [BatchReader(table, SAMPLE_KEY_DTYPE, SAMPLE_COUNT_DTYPE)
                         for table, _ in self._halves]
        self._writing = 0  # the half the kernel writes
        self._flipped_ns = time.monotonic_ns()  # when the kernel started writing it
        self.read_until_ns = 0  # the end of the time the last read's samples were taken in
        self._counters = bpf[b"sample_counters"]  # type: ignore[index]
        self._counter = SampleCounter()
        self._user = UserSymbols(BccElfReader())
        self._kernel = KernelSymbols(lambda: bcc.SymbolCache(-1))  # kallsyms: one, no files
        self._kernel.load()
        # Named stacks, by their addresses (stack ids are reused once a half is emptied).
        self._user_frames: dict[int, dict[tuple[int, ...], tuple[Frame, ...]]] = {}
        self._kernel_frames: dict[tuple[int, ...], tuple[Frame, ...]] = {}
        self._pending: dict[int, float] = {}  # pid -> when to read its maps
        self._gone: set[int] = set()  # processes to forget after the next read

    # -- processes -------------------------------------------------------------------------

    def note_exec(self, pid: int) -> None:
        """A new program in `pid`: its old maps and frames no longer apply."""
        self._user.forget(pid)
        self._user_frames.pop(pid, None)
        self._pending[pid] = time.monotonic() + EXEC_SETTLE_S

    def note_fork(self, child: int, parent: int) -> None:
        """A new task: a forked process starts with its parent's maps."""
        self._user.inherit(child, parent)

    def capture_due(self) -> float:
        """Read the maps of processes that exec'd a moment ago (a short-lived one may be
        gone by the next read); returns when the next one is due."""
        now = time.monotonic()
        for pid in [p for p, due in self._pending.items() if due <= now]:
            del self._pending[pid]
            self._user.watch(pid)
        return min(self._pending.values(), default=float("inf"))

    def retire(self, processes: set[int]) -> None:
        """These processes are gone: forget them once their last samples are read."""
        self._gone |= processes

    # -- reading ---------------------------------------------------------------------------

    def read(self, processes: Mapping[int, ProcessInfo],
             final: bool = False) -> tuple[StackSample, ...]:
        """The stacks whose counts grew (cumulative counts): the half the kernel left a tick
        ago, and with `final` the other one too."""
        gone, self._gone = self._gone, set()
        self._user.next_round()
        self._drain(1 - self._writing, processes)
        # The drained half was written until the previous flip: that is when they end.
        self.read_until_ns = self._flipped_ns
        self._writing = 1 - self._writing
        self._half[self._half.Key(0)] = self._half.Leaf(self._writing)
        self._flipped_ns = time.monotonic_ns()
        if final:
            self._drain(1 - self._writing, processes)
            self.read_until_ns = self._flipped_ns
        for pid in gone:
            self._user.forget(pid)
            self._user_frames.pop(pid, None)
            self._pending.pop(pid, None)
        return self._counter.take_changed()

    def _drain(self, half: int, processes: Mapping[int, ProcessInfo]) -> None:
        """Count one half's samples and empty it."""
        from bcc.libbcc import lib

        table, stacks = self._halves[half]
        keys, counts = self._readers[half].read()
        rows = zip(keys["pid"].tolist(), keys["tid"].tolist(), keys["user_stack"].tolist(),
                   keys["kernel_stack"].tolist(), counts.tolist(), strict=True)
        for pid, tid, user_stack, kernel_stack, count in rows:
            user = self._user_stack(stacks, pid, user_stack)
            kernel = self._kernel_stack(stacks, kernel_stack)
            frames = user + kernel
            info = processes.get(pid)
            self._counter.add(StackSample(pid, tid, info.comm if info else "?",
                                          tuple(f for f, _ in frames),
                                          tuple(m for _, m in frames), len(kernel), count))
        for raw in (keys[i].tobytes() for i in range(len(keys))):
            lib.bpf_delete_elem(table.map_fd, ctypes.c_char_p(raw))
        # Every stack, also those of samples the full sample map could not count (bcc's
        # StackTrace.clear does nothing).
        for stack_key in list(stacks.keys()):  # type: ignore[attr-defined]
            del stacks[stack_key]  # type: ignore[attr-defined]
        # Named stacks are kept for one drain only: leaf addresses vary almost every sample,
        # and the symbol caches below them already hold every address's name.
        self._user_frames.clear()
        self._kernel_frames.clear()

    @staticmethod
    def _walk(stacks: object, stack_id: int) -> tuple[int, ...]:
        """The stack's addresses, root first."""
        try:
            return tuple(reversed(list(stacks.walk(stack_id))))  # type: ignore[attr-defined]
        except KeyError:  # not in the map
            return ()

    def _user_stack(self, stacks: object, pid: int, stack_id: int) -> tuple[Frame, ...]:
        if stack_id < 0:
            return ((LOST_STACK if _stack_lost(stack_id) else MISSING_USER, ""),)
        addresses = self._walk(stacks, stack_id)
        per_pid = self._user_frames.setdefault(pid, {})
        frames = per_pid.get(addresses)
        if frames is None:
            frames = per_pid[addresses] = tuple(self._user.frame(pid, a) for a in addresses)
        return frames

    def _kernel_stack(self, stacks: object, stack_id: int) -> tuple[Frame, ...]:
        if stack_id < 0:  # -EFAULT: sampled in user mode, no kernel stack
            return ((LOST_STACK, KERNEL_MODULE),) if _stack_lost(stack_id) else ()
        addresses = self._walk(stacks, stack_id)
        frames = self._kernel_frames.get(addresses)
        if frames is None:
            frames = self._kernel_frames[addresses] = tuple(
                self._kernel.frame(a) for a in addresses)
        return frames

    def drops(self) -> dict[str, int]:
        slots = [sum(self._counters[self._counters.Key(i)]) for i in range(4)]
        return {"stacks_missing": slots[1], "stack_collisions": slots[2],
                "samples_lost": slots[3]}


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
        try:
            self._bpf = bcc.BPF(text=program_text(options).encode(), cflags=self.cflags)
        except Exception as err:  # bcc raises bare Exception for compile and load failures
            raise UserError(
                f"could not load the eBPF program ({err}); run 'sikte-tui doctor' for a fix",
                exit_code=1,
            ) from err
        self._targets = self._bpf[b"targets"]
        self._stats = self._bpf[b"stats"]
        self._stats_reader = BatchReader(self._stats, STAT_KEY_DTYPE, STAT_VALUE_DTYPE)
        empty = np.empty(0, dtype=np.uint64)
        # The last read: ids, values, and counts to compare (unsettled rows marked).
        self._last = (empty, np.empty(0, STAT_VALUE_DTYPE), empty)
        self._read = (np.empty(0, STAT_KEY_DTYPE), np.empty(0, STAT_VALUE_DTYPE))
        self._retired: dict[StatKey, SyscallStats] = {}
        self._counters = self._bpf[b"counters"]
        self._event_chunks: list[bytes] = []
        self._proc_events: list[ProcEvent] = []
        self._deadline = 0.0
        self._bpf[b"events"].open_ring_buffer(self._on_event)
        self._bpf[b"proc_events"].open_ring_buffer(self._on_proc_event)
        self.sampler: StackSampler | None = None
        self.tcp: TcpMonitor | None = None
        try:
            if options.tcp:
                self.tcp = TcpMonitor(self._bpf, containers)
            if options.sample_hz:
                self.sampler = StackSampler(self._bpf, options.sample_hz)
            attach_probes(self._bpf, options.uprobes)
        except BaseException:
            self._bpf.cleanup()
            raise

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
        if self.sampler is not None and e.kind == ProcKind.EXEC:  # new maps: capture them soon
            self.sampler.note_exec(e.pid)
        elif self.sampler is not None and e.kind == ProcKind.FORK:
            self.sampler.note_fork(e.tid, e.ppid)
        return 0

    def drain(self, deadline: float = float("inf")) -> None:
        """Take everything waiting in the ring buffers (until the deadline, if producers are
        still running), however much it is."""
        self._deadline = deadline
        self._bpf.ring_buffer_consume()

    def poll_until(self, deadline: float) -> None:
        """Take events until the monotonic deadline (at least whatever is waiting now)."""
        self._deadline = deadline
        if self.sampler is not None:  # wake up in time to capture just-exec'd processes
            deadline = min(deadline, self.sampler.capture_due())
        timeout_ms = max(0, int((deadline - time.monotonic()) * 1000))
        self._bpf.ring_buffer_poll(timeout_ms)

    def take_events(self) -> np.ndarray:
        """Syscall events received since the last call: a read-only EVENT_DTYPE array."""
        chunks, self._event_chunks = self._event_chunks, []
        if not chunks:
            return no_events()
        return np.frombuffer(b"".join(chunks), dtype=EVENT_DTYPE)  # read-only: over bytes

    def take_proc_events(self) -> list[ProcEvent]:
        events, self._proc_events = self._proc_events, []
        return events

    # -- aggregates ------------------------------------------------------------------------

    def read_changes(self) -> tuple[dict[StatKey, SyscallStats], dict[StatKey, SyscallStats]]:
        """The (pid, tid, syscall) aggregates that are new or changed since the last call:
        their totals (cumulative since load) and their change since the last call. The
        arithmetic is done in numpy; Python work is one object per changed entry."""
        keys, values = self._stats_reader.read()
        ids = _key_ids(keys)
        order = np.argsort(ids)
        ids, keys, values = ids[order], keys[order], values[order]
        last_ids, last_values, last_counts = self._last
        rows, previous = _changed_rows(last_ids, last_values, last_counts, ids, values)
        # The kernel updates an entry field by field: an entry read mid-update (histogram
        # not yet matching the count) must count as changed at the next read too.
        settled = values["hist"].sum(axis=1, dtype=np.uint64) == values["count"]
        self._last = (ids, values, np.where(settled, values["count"], np.uint64(2**64 - 1)))
        self._read = (keys, values)
        changed_keys = self._keys_of(keys[rows])
        totals = self._stats_of(keys[rows], values[rows], merge_retired=True)
        delta = values[rows].copy()
        for field in ("count", "errors", "total_ns", "hist"):
            delta[field] -= previous[field]
        deltas = self._stats_of(keys[rows], delta, merge_retired=False)
        return (dict(zip(changed_keys, totals, strict=True)),
                dict(zip(changed_keys, deltas, strict=True)))

    @staticmethod
    def _keys_of(keys: np.ndarray) -> list[StatKey]:
        return list(map(StatKey, keys["pid"].tolist(), keys["tid"].tolist(),
                        keys["nr"].tolist()))

    def _stats_of(self, keys: np.ndarray, values: np.ndarray,
                  merge_retired: bool = True) -> list[SyscallStats]:
        """SyscallStats for a batch of rows: histograms taken apart in one numpy pass."""
        rows, buckets = np.nonzero(values["hist"])
        counts = values["hist"][rows, buckets].tolist()
        ends = np.searchsorted(rows, np.arange(1, len(values) + 1)).tolist()
        buckets = buckets.tolist()
        result, start = [], 0
        columns = zip(values["count"].tolist(), values["errors"].tolist(),
                      values["total_ns"].tolist(), values["min_ns"].tolist(),
                      values["max_ns"].tolist(), ends, strict=True)
        for count, errors, total, low, high, end in columns:
            hist = tuple(zip(buckets[start:end], counts[start:end], strict=True))
            result.append(SyscallStats(count, errors, total, low, high, hist))
            start = end
        if merge_retired and self._retired:  # a reused pid: new counts add to the old
            for i, key in enumerate(self._keys_of(keys)):
                retired = self._retired.get(key)
                if retired is not None:
                    result[i] = merge_stats((retired, result[i]))
        return result

    def retire(self, threads: set[tuple[int, int]], processes: set[int]) -> None:
        """Delete the entries of exited threads from the kernel map once read_changes has
        reported their final values, so the map, and every read, holds live threads only.

        Their values stay here: should the pid be reused, new counts add to the old ones."""
        if self.sampler is not None:
            self.sampler.retire(processes)
        keys, values = self._read
        if not (threads or processes) or not len(keys):
            return
        pid_tid = (keys["pid"].astype(np.uint64) << 32) | keys["tid"]
        wanted = np.fromiter(((p << 32) | t for p, t in threads), dtype=np.uint64)
        mask = np.isin(pid_tid, wanted) | np.isin(keys["pid"], list(processes))
        rows = np.flatnonzero(mask).tolist()
        for key, stats, raw in zip(self._keys_of(keys[rows]),
                                   self._stats_of(keys[rows], values[rows]),
                                   (keys[i].tobytes() for i in rows), strict=True):
            self._retired[key] = stats
            self._delete(raw)
        if rows:  # forget them, so a reused pid's first values count as new
            last_ids, last_values, last_counts = self._last
            keep = ~np.isin(last_ids, _key_ids(keys[rows]))
            self._last = (last_ids[keep], last_values[keep], last_counts[keep])

    def _delete(self, raw_key: bytes) -> None:
        from bcc.libbcc import lib

        lib.bpf_delete_elem(self._stats.map_fd, ctypes.c_char_p(raw_key))

    def read_drops(self) -> Drops:
        totals = [sum(self._counters[self._counters.Key(i)]) for i in range(5)]
        drops = Drops(*totals)
        if self.sampler is not None:
            drops = dataclasses.replace(drops, **self.sampler.drops())
        if self.tcp is not None:
            drops = dataclasses.replace(drops, tcp_events=self.tcp.drops())
        return drops

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

    def close(self) -> None:
        self._bpf.cleanup()
