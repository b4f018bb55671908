"""On-CPU stack samples (bpf/profile.bpf.c): the perf cpu-clock events, the kernel's sample
counts read from the map half it is not writing, and the names of their frames."""

from __future__ import annotations

import ctypes
import errno
import time
from collections.abc import Mapping

from tracing.engine.bcc_types import BccProgram, BccTable
from tracing.engine.elf import BccElfReader
from tracing.engine.maps import SAMPLE_COUNT_DTYPE, SAMPLE_KEY_DTYPE, BatchReader
from tracing.engine.symbols import Frame, KernelSymbols, UserSymbols
from tracing.errors import UserError
from tracing.model.samples import KERNEL_MODULE, SampleCounter, StackSample
from tracing.model.stats import ProcessInfo

EXEC_SETTLE_S = 0.02  # after an exec, the dynamic loader maps the libraries: read them then
MISSING_USER = "[missing user stack]"
LOST_STACK = "[stack lost: stack map collision or full]"


def _stack_lost(stack_id: int) -> bool:
    return stack_id in (-errno.EEXIST, -errno.ENOMEM)


class StackSampler:
    """The perf cpu-clock events, the kernel's sample counts and the names of their frames.

    The kernel counts into one half of the sample and stack maps while the other is read and
    emptied: each read takes the half the kernel left a tick ago, so no sample is being
    written to it, then swaps. Samples thus arrive a tick late; the final read takes both.
    User frames are named from each process's maps, read when it is first sampled or just
    after it execs, and kept one read after it is gone (its last samples come a tick late)."""

    def __init__(self, bpf: BccProgram, hz: int) -> None:
        import bcc

        try:
            bpf.attach_perf_event(
                ev_type=bcc.PerfType.SOFTWARE, ev_config=bcc.PerfSWConfig.CPU_CLOCK,
                fn_name=b"on_cpu_sample", sample_freq=hz)
        except Exception as err:  # bcc raises bare Exception for attach failures
            raise UserError(f"could not start CPU sampling at {hz} Hz ({err}); trace without "
                            "it with --sample-hz 0", exit_code=1) from err
        self.hz = hz
        self._half = bpf[b"sample_half"]
        self._halves = [(bpf[f"samples_{i}".encode()],
                         bpf[f"stack_traces_{i}".encode()]) for i in (0, 1)]
        self._readers = [BatchReader(table, SAMPLE_KEY_DTYPE, SAMPLE_COUNT_DTYPE)
                         for table, _ in self._halves]
        self._writing = 0  # the half the kernel writes
        self._flipped_ns = time.monotonic_ns()  # when the kernel started writing it
        self.read_until_ns = 0  # the end of the time the last read's samples were taken in
        self._counters = bpf[b"sample_counters"]
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
        for stack_key in list(stacks.keys()):
            del stacks[stack_key]
        # Named stacks are kept for one drain only: leaf addresses vary almost every sample,
        # and the symbol caches below them already hold every address's name.
        self._user_frames.clear()
        self._kernel_frames.clear()

    @staticmethod
    def _walk(stacks: BccTable, stack_id: int) -> tuple[int, ...]:
        """The stack's addresses, root first."""
        try:
            return tuple(reversed(list(stacks.walk(stack_id))))
        except KeyError:  # not in the map
            return ()

    def _user_stack(self, stacks: BccTable, pid: int, stack_id: int) -> tuple[Frame, ...]:
        if stack_id < 0:
            return ((LOST_STACK if _stack_lost(stack_id) else MISSING_USER, ""),)
        addresses = self._walk(stacks, stack_id)
        per_pid = self._user_frames.setdefault(pid, {})
        frames = per_pid.get(addresses)
        if frames is None:
            frames = per_pid[addresses] = tuple(self._user.frame(pid, a) for a in addresses)
        return frames

    def _kernel_stack(self, stacks: BccTable, stack_id: int) -> tuple[Frame, ...]:
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
