"""The data model: syscall statistics, processes, events and immutable snapshots.

Pure data and functions: imports neither bcc nor Textual, so the TUI, the store, replay and
most tests use it without root. The histogram layout is defined here; the engine passes it
to bpf/syscalls.bpf.c as -D flags.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any, NamedTuple

import numpy as np

from syscall_tables import ABI_X32, X32_SYSCALL_BIT
from tracing.model.connections import Connection
from tracing.model.files import FileKey, FileStats
from tracing.model.inflight import InFlightRead
from tracing.model.paths import PathTable
from tracing.model.samples import StackSample
from tracing.model.selection import EventSelection

# Log-linear latency histogram, compiled into bpf/syscalls.bpf.c from these values (-D flags
# from tracing.engine.program): values below HIST_SUB ns have a bucket each; above, every
# power of two is split into HIST_SUB linear buckets (HIST_SUB a power of two).
HIST_SUB_BITS = 3
HIST_SUB = 1 << HIST_SUB_BITS
HIST_PMAX = 39
HIST_BUCKETS = HIST_SUB * (HIST_PMAX - 1)


def bucket_bounds(idx: int) -> tuple[int, int]:
    """The [low, high) range of durations in ns that histogram bucket `idx` counts."""
    if idx < HIST_SUB:
        return idx, idx + 1
    shift = idx // HIST_SUB - 1
    sub = idx % HIST_SUB + HIST_SUB
    return sub << shift, (sub + 1) << shift


def bucket_of(duration_ns: int) -> int:
    """The bucket the kernel puts a duration in (used by replay sources and tests)."""
    if duration_ns < HIST_SUB:
        return max(duration_ns, 0)
    p = duration_ns.bit_length() - 1
    if p > HIST_PMAX:
        return HIST_BUCKETS - 1
    return HIST_SUB * (p - HIST_SUB_BITS) + (duration_ns >> (p - HIST_SUB_BITS))


Hist = tuple[tuple[int, int], ...]  # sparse: (bucket, count) pairs sorted by bucket


def hist_from_dense(counts: Iterable[int]) -> Hist:
    return tuple((i, c) for i, c in enumerate(counts) if c)


def hist_merge(hists: Iterable[Hist]) -> Hist:
    total: dict[int, int] = {}
    for h in hists:
        for b, c in h:
            total[b] = total.get(b, 0) + c
    return tuple(sorted(total.items()))


def hist_sub(new: Hist, old: Hist) -> Hist:
    before = dict(old)
    return tuple((b, c - before.get(b, 0)) for b, c in new if c != before.get(b, 0))


def percentile(hist: Hist, q: float, min_ns: int = 0, max_ns: int = 0) -> int:
    """The q-quantile (0..1) of a histogram: the midpoint of the bucket that holds it,
    clamped to the observed min and max, which makes single-bucket cases exact."""
    n = sum(c for _, c in hist)
    if n == 0:
        return 0
    rank = max(1, int(q * n + 0.999999))  # nearest-rank
    seen = 0
    for b, c in hist:
        seen += c
        if seen >= rank:
            lo, hi = bucket_bounds(b)
            value = (lo + hi - 1) // 2
            if max_ns:
                value = min(value, max_ns)
            return max(value, min_ns)
    return max_ns


class StatKey(NamedTuple):
    """One aggregate entry's key, as the kernel's struct stat_key. `abi` is the ABI the call
    was made under (0 native, 1 compat: i386 on x86_64, 2 x32; syscall_tables.abi_table names
    its table): the same number is another call in each, so entries of different ABIs stay
    apart. x32 numbers come without the x32 bit."""

    pid: int
    tid: int
    nr: int
    abi: int = 0


@dataclass(frozen=True, slots=True)
class SyscallStats:
    count: int = 0
    errors: int = 0
    total_ns: int = 0
    min_ns: int = 0
    max_ns: int = 0
    hist: Hist = ()

    @property
    def avg_ns(self) -> int:
        return self.total_ns // self.count if self.count else 0

    def quantile(self, q: float) -> int:
        return percentile(self.hist, q, self.min_ns, self.max_ns)

    def __sub__(self, old: SyscallStats) -> SyscallStats:
        """The change since `old` (min and max stay the newer cumulative ones)."""
        return SyscallStats(
            self.count - old.count,
            self.errors - old.errors,
            self.total_ns - old.total_ns,
            self.min_ns,
            self.max_ns,
            hist_sub(self.hist, old.hist),
        )


def merge_stats(items: Iterable[SyscallStats]) -> SyscallStats:
    items = list(items)
    if len(items) == 1:
        return items[0]
    mins = [s.min_ns for s in items if s.count]
    return SyscallStats(
        count=sum(s.count for s in items),
        errors=sum(s.errors for s in items),
        total_ns=sum(s.total_ns for s in items),
        min_ns=min(mins) if mins else 0,
        max_ns=max((s.max_ns for s in items), default=0),
        hist=hist_merge(s.hist for s in items),
    )


# Individual syscall events travel in batches, as read-only numpy arrays of this layout (the
# kernel's struct sys_event in bpf/syscalls.bpf.c): hundreds of thousands per second would
# not survive one Python object each.
EVENT_DTYPE = np.dtype(
    [
        ("ts", "<u8"),
        ("pid", "<u4"),
        ("tid", "<u4"),
        ("nr", "<u8"),
        ("ret", "<i8"),
        ("duration_ns", "<u8"),
        ("args", "<u8", (6,)),
        # Issue 15: the call's ABI (0 native, 1 i386 compat, 2 x32), EVF_* flags
        # (tracing.model.captures), the bytes of captured fields after the record, and the
        # PathTable id of args[0]'s descriptor, written in user space (0: unknown).
        ("abi", "u1"),
        ("flags", "u1"),
        ("data_len", "<u2"),
        ("fd_path", "<u4"),
    ]
)
# The records of sessions saved before issue 15: the same fields up to args.
EVENT_DTYPE_V1 = np.dtype([(name, EVENT_DTYPE[name]) for name in
                           ("ts", "pid", "tid", "nr", "ret", "duration_ns", "args")])


def events_from_v1(raw: np.ndarray) -> np.ndarray:
    """Records of the old layout in the current one (no ABI, flags or captures known)."""
    out = np.zeros(len(raw), dtype=EVENT_DTYPE)
    for name in EVENT_DTYPE_V1.names or ():
        out[name] = raw[name]
    return out


def key_numbers(batch: np.ndarray) -> np.ndarray:
    """The syscall number of each event as its aggregate key (StatKey.nr) carries it: x32
    calls without the x32 bit, whether or not the record has it."""
    nr = batch["nr"].astype(np.uint64)
    x32 = batch["abi"] == ABI_X32
    if not x32.any():
        return nr
    return np.where(x32, nr & np.uint64(~X32_SYSCALL_BIT & 0xFFFFFFFFFFFFFFFF), nr)


def no_events() -> np.ndarray:
    empty = np.empty(0, dtype=EVENT_DTYPE)
    empty.setflags(write=False)
    return empty


def event_objects(batch: np.ndarray) -> list[SyscallEvent]:
    """A batch as SyscallEvent objects (for the few that are shown or tested)."""
    cols = [batch[name].tolist() for name in ("ts", "pid", "tid", "nr", "ret", "duration_ns")]
    args = [tuple(a) for a in batch["args"].tolist()]
    return [SyscallEvent(ts, pid, tid, nr, ret, dur, a)
            for ts, pid, tid, nr, ret, dur, a in zip(*cols, args, strict=True)]


@dataclass(frozen=True, slots=True)
class SyscallEvent:
    """One syscall, chosen in the kernel (failed, slow, sampled or all)."""

    ts_ns: int
    pid: int
    tid: int
    nr: int
    ret: int
    duration_ns: int
    args: tuple[int, ...]

    @property
    def failed(self) -> bool:
        return -4095 <= self.ret <= -1

    @property
    def errno(self) -> int:
        return -self.ret if self.failed else 0


class ProcKind(IntEnum):
    """What happened to a process; the numbers are the kernel's (struct proc_event in
    bpf/syscalls.bpf.c) and the journal's."""

    FORK = 1
    EXEC = 2
    EXIT = 3
    RENAME = 4  # a task's new name: tid the task, pid its process (0: not known), comm


@dataclass(frozen=True, slots=True)
class ProcEvent:
    ts_ns: int
    kind: ProcKind
    pid: int
    tid: int
    ppid: int
    status: int  # exit: wait(2)-style status, -1 when unknown
    process_gone: bool
    comm: str
    filename: str
    thread: bool = False  # fork: the new task is a thread of pid, not a new process


@dataclass(frozen=True, slots=True)
class ExitStatus:
    """How a process ended: an exit code, or a signal."""

    code: int | None = None
    signal: int | None = None

    @classmethod
    def from_wait_status(cls, status: int) -> ExitStatus:
        if status < 0:
            return cls()
        if status & 0x7F:
            return cls(signal=status & 0x7F)
        return cls(code=(status >> 8) & 0xFF)

    def __str__(self) -> str:
        if self.signal is not None:
            return f"signal {self.signal}"
        return "?" if self.code is None else str(self.code)


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    pid: int
    ppid: int = 0
    comm: str = ""
    exe: str = ""
    cmdline: tuple[str, ...] = ()
    abi: str = ""
    start_ts_ns: int = 0
    exit_ts_ns: int = 0
    exit: ExitStatus | None = None
    # Its threads other than the main one seen in this trace, ended ones included (the
    # oldest ended ones are forgotten past tracing.system.threads.ENDED_KEPT).
    threads: frozenset[int] = frozenset()
    container: str = ""  # its container's name or short id, or its systemd unit; "" if none
    # Issue 16. Of `threads`, those still running; None: not known (older sessions).
    live_threads: frozenset[int] | None = None
    # tid -> the thread's name (prctl PR_SET_NAME, /proc/PID/task/TID/comm), for threads
    # other than the main one, whose name is `comm`. Untrusted text, bounded in number.
    # Never mutated once handed out; left out of the hash (a dict has none).
    thread_names: Mapping[int, str] = field(default_factory=dict, hash=False)
    threads_seen: int = 0  # threads other than the main one ever seen (forgotten included)
    thread_names_dropped: int = 0  # names not kept: more threads than names are kept for

    @property
    def alive(self) -> bool:
        return self.exit is None

    def thread_name(self, tid: int) -> str:
        """The thread's own name; the process's for the main thread or an unnamed one."""
        return self.comm if tid == self.pid else self.thread_names.get(tid, self.comm)

    @property
    def live_thread_count(self) -> int:
        """Threads running now, the main one included (0 once the process has ended)."""
        if not self.alive:
            return 0
        return 1 + len(self.threads if self.live_threads is None else self.live_threads)

    @property
    def thread_total(self) -> int:
        """Every thread seen in this trace, the main one included."""
        return 1 + max(self.threads_seen, len(self.threads))

    def replace(self, **changes: Any) -> ProcessInfo:
        # Any, as dataclasses.replace takes it: each field has its own type.
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, slots=True)
class Drops:
    """What the kernel could not deliver; every number here is shown to the user."""

    events: int = 0  # syscall events with no room in the ring buffer
    stats_full: int = 0  # syscalls not aggregated because the stats map was full
    proc_events: int = 0  # process events with no room in their ring buffer
    inflight: int = 0  # syscalls not timed because no in-flight slot could be made
    events_sent: int = 0  # syscall events the kernel submitted
    stacks_missing: int = 0  # CPU samples whose user stack could not be read
    stack_collisions: int = 0  # CPU samples whose stack was lost (stack map collision, full)
    samples_lost: int = 0  # CPU samples not counted: the sample map was full
    tcp_events: int = 0  # TCP state changes with no room in their ring buffer
    fd_events: int = 0  # descriptor bookkeeping lost (records, or fd_io entries: map full)

    @property
    def total(self) -> int:
        # A sample without a user stack is still counted (as "[missing user stack]"): a
        # property of the sample (a kernel thread, a process mid-exec), not a loss.
        return (self.events + self.stats_full + self.proc_events + self.inflight
                + self.stack_collisions + self.samples_lost + self.tcp_events
                + self.fd_events)


class TraceState(StrEnum):
    """Where a trace is; the values are what the header shows and sessions store."""

    STARTING = "starting"
    TRACING = "tracing"
    EXITED = "exited"  # every target is gone
    STOPPED = "stopped"  # stopped by the user or a signal
    FAILED = "failed"  # the tracer ended on an error; what it recorded until then is kept
    SAVED = "saved session"  # a stretch of a session read back from disk


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything known at one tick. Immutable: the UI and the store may keep it."""

    seq: int
    ts_ns: int  # kernel monotonic clock (bpf_ktime_get_ns) at the tick
    wall_time: float  # Unix time at the tick
    start_ts_ns: int
    start_wall_time: float
    arch: str
    state: TraceState
    stats: Mapping[StatKey, SyscallStats]  # cumulative since start or reset (shown)
    interval: Mapping[StatKey, SyscallStats]  # change since the previous snapshot
    interval_s: float
    processes: Mapping[int, ProcessInfo]
    events: np.ndarray  # EVENT_DTYPE, read-only: the events since the previous snapshot
    proc_events: tuple[ProcEvent, ...]
    drops: Drops
    tracer_cpu_s: float  # CPU seconds the tracer has used (user space)
    target_exit: ExitStatus | None = None  # the launched command's, once it has ended
    targets: tuple[str, ...] = field(default=())
    epoch: int = 0  # increases at each reset: stats restarted from zero
    # CPU stack samples: the stacks whose counts changed since the previous snapshot, with
    # their cumulative counts (keep the newest per StackSample.key), and the sampling rate.
    samples: tuple[StackSample, ...] = ()
    sample_hz: int = 0
    probes: Mapping[int, str] = field(default_factory=dict)  # nr -> "uprobe:c:malloc"
    # The samples were taken before this (monotonic ns; they are read a tick late), 0: ts_ns.
    samples_until_ns: int = 0
    # TCP connections new or changed since the previous snapshot (keep the newest per
    # Connection.conn_id).
    connections: tuple[Connection, ...] = ()
    tcp_monitored: bool = True  # False: TCP monitoring was off (or the kernel has no hook)
    # After a reset: the totals since the start, whatever the resets (what the session store
    # writes); None: `stats` are those (never reset). Read them as `totals`.
    since_start: Mapping[StatKey, SyscallStats] | None = None
    # Issue 15. The captured fields of each of `events` (b"": none; () in older sessions).
    event_data: tuple[bytes, ...] = ()
    # The names behind path ids (EVENT_DTYPE "fd_path", FileKey.path_id); shared by every
    # snapshot of a trace, append-only. None: no names known (older sessions).
    paths: PathTable | None = None
    # Per (pid, path): opens, failed opens and I/O, cumulative since the start (resets and
    # rebase leave them whole: they are shown as the trace's running totals).
    files: Mapping[FileKey, FileStats] = field(default_factory=dict)
    selection: EventSelection | None = None  # the event selection in force at the tick
    # Issue 16. The calls the live target threads were in at the last read of their in-flight
    # slots (at most once a second, and at stop); None: not read (older sessions, replays).
    inflight: InFlightRead | None = None
    # What could not be done since the previous snapshot, one line each, for the user (a
    # lookup that failed: the TCP sockets of --pid targets at attach).
    notices: tuple[str, ...] = ()
    # Issue 18. How the kernel timed the calls (tracing.model.timing.Timing's values):
    # "exact"; "sampled" (total time, histogram, percentiles are estimates); "off" (every
    # time figure 0, shown as "-"). Older sessions: "exact".
    timing: str = "exact"
    # Issue 18. Our syscall programs' BPF run time and the syscalls entered on the machine
    # while BPF run-time statistics were on (part of the time: tracing/model/bpf_cost.py);
    # bpf_stats False: not measured (an old kernel, a replay), the figures are unknown.
    bpf_run_ns: int = 0
    bpf_runs: int = 0
    bpf_on_ns: int = 0  # how long statistics were on (a share of the trace: bpf_cost.py)
    bpf_stats: bool = False

    @property
    def totals(self) -> Mapping[StatKey, SyscallStats]:
        """Cumulative since the start, every entry, resets or not (`stats` start again at
        each reset). Both are immutable and shared with later snapshots where unchanged."""
        return self.stats if self.since_start is None else self.since_start

    @property
    def elapsed_s(self) -> float:
        return (self.ts_ns - self.start_ts_ns) / 1e9

    @property
    def total_count(self) -> int:
        return sum(s.count for s in self.stats.values())


def group_stats(
    stats: Mapping[StatKey, SyscallStats], by: tuple[str, ...]
) -> dict[tuple[int, ...], SyscallStats]:
    """Merge statistics by some of the key's fields: ("nr", "abi"), ("pid",), ("pid", "tid"),
    ("pid", "nr", "abi"), ... A number names a syscall only with its ABI: group by both."""
    groups: dict[tuple[int, ...], list[SyscallStats]] = {}
    getters = [StatKey._fields.index(f) for f in by]
    for key, value in stats.items():
        groups.setdefault(tuple(key[i] for i in getters), []).append(value)
    return {k: merge_stats(v) for k, v in groups.items()}
