"""Calls in flight: the syscall each traced thread is inside at a moment, and since when.

The kernel keeps each traced thread's current call in its in-flight slot (bpf/syscalls.bpf.c,
`struct inflight`); the engine reads the slots of the live target threads now and then
(tracing/engine/inflight.py) into an InFlightRead, which snapshots carry. A call that never
returns (a process blocked in `read` for the whole trace) is counted nowhere else: here it is
listed, with how long it has been running, and at stop it is listed as still in flight.

With --timing off there are no slots (no clock reads in the kernel): the engine reads each
thread's /proc/PID/task/TID/syscall instead, once a second, and a call's start is the first
read that saw the thread in it (`seen`), so its time in flight is a lower bound.

Times are CLOCK_MONOTONIC ns (the kernel's bpf_ktime_get_ns, Python's time.monotonic_ns), the
clock of Snapshot.ts_ns. Pure: no bcc, no Textual, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from syscall_tables import syscall_name
from tracing.boundary.display_text import sanitize
from tracing.decode.argspec import abi_table
from tracing.model.units import format_duration

ABI_BITS_SHIFT = 32  # struct inflight.nr: the number in bits 0..31, the ABI code in 32..33
ABI_MASK = 0x3
NR_MASK = 0xFFFF_FFFF
# What a saved session may hold (its metadata is untrusted input): more is refused.
MAX_STORED = 16_384  # four times what one read takes (engine MAX_THREADS)
NAME_LIMIT = 64  # characters of a thread's name printed (the kernel keeps 15)
# What every view says of a polled read's times (--timing off).
POLLED_NOTE = "times at least (from /proc reads once a second: --timing off)"
# A saved call's last field: how its start is known.
ENTERED, BEFORE_TRACE, SEEN = 0, 1, 2


@dataclass(frozen=True, slots=True)
class InFlight:
    """One thread inside one call: `nr` in the table of `abi` (0 native, 1 compat, 2 x32),
    entered at `start_ns` (at the latest, with `before_trace`)."""

    pid: int
    tid: int
    nr: int
    abi: int
    start_ns: int
    # Entered before the trace began (found blocked, in /proc): start_ns is the trace's start,
    # so the time in flight is a lower bound.
    before_trace: bool = False
    # Found by /proc reads (--timing off: no slots): start_ns is when the first read that saw
    # the thread in this call was made, so the call began before it (a lower bound too).
    seen: bool = False

    @property
    def at_least(self) -> bool:
        """True when the time in flight is only a lower bound."""
        return self.before_trace or self.seen

    def elapsed_ns(self, at_ns: int) -> int:
        """How long it had been running at `at_ns` (0 for a start after it)."""
        return max(at_ns - self.start_ns, 0)


@dataclass(frozen=True, slots=True)
class InFlightRead:
    """One read of the slots, at `ts_ns`: the calls found (longest running first), the
    threads looked at, and those not looked at (`unread`: over the read's bound, or a thread
    other than a process's first on a kernel without PIDFD_THREAD). `polled`: read from
    /proc (--timing off), every time a lower bound."""

    ts_ns: int
    calls: tuple[InFlight, ...] = ()
    threads: int = 0
    unread: int = 0
    polled: bool = False

    def at(self, end_ns: int) -> InFlightRead:
        """The calls known to be in flight at `end_ns` (a stretch of a saved session ending
        before the read): those that had started by then, as of then."""
        if end_ns >= self.ts_ns:
            return self
        return InFlightRead(end_ns, tuple(c for c in self.calls if c.start_ns <= end_ns),
                            self.threads, self.unread, self.polled)


def split_nr(raw: int) -> tuple[int, int]:
    """struct inflight.nr -> (syscall number, ABI code)."""
    return raw & NR_MASK, (raw >> ABI_BITS_SHIFT) & ABI_MASK


def ordered(calls: list[InFlight]) -> tuple[InFlight, ...]:
    """Longest running first, then by thread: the order every view and report uses."""
    return tuple(sorted(calls, key=lambda c: (c.start_ns, c.pid, c.tid)))


def call_name(arch: str, call: InFlight) -> str:
    """The call's name in its own ABI's table (`read`; i386 `_newselect`)."""
    return syscall_name(call.nr, abi_table(arch, call.abi))


def thread_comm(processes: Mapping[int, Any], pid: int, tid: int) -> str:
    """The thread's name when its own is known, else its process's ("" when unknown)."""
    info = processes.get(pid)
    if info is None:
        return ""
    names = getattr(info, "thread_names", None)  # per-thread names, where the model has them
    if isinstance(names, Mapping):
        name = names.get(tid)
        if isinstance(name, str):
            return name
    comm = getattr(info, "comm", "")
    return comm if isinstance(comm, str) else ""


def elapsed_text(call: InFlight, at_ns: int) -> str:
    """`2.5s`; `>2.5s` when only a lower bound is known (entered before the trace, or first
    seen by a /proc read)."""
    return (">" if call.at_least else "") + format_duration(call.elapsed_ns(at_ns))


# -- what record prints --------------------------------------------------------------------

def inflight_json(read: InFlightRead | None, arch: str,
                  processes: Mapping[int, Any]) -> list[dict[str, object]]:
    """`record --json`'s "in_flight": each call still running when the trace stopped."""
    if read is None:
        return []
    return [{"pid": c.pid, "tid": c.tid, "comm": thread_comm(processes, c.pid, c.tid),
             "syscall": call_name(arch, c), "nr": c.nr,
             "abi": abi_table(arch, c.abi), "in_flight_ns": c.elapsed_ns(read.ts_ns),
             "entered_before_trace": c.before_trace, "in_flight_at_least": c.at_least}
            for c in read.calls]


def format_inflight(read: InFlightRead | None, arch: str, processes: Mapping[int, Any]) -> str:
    """record's text: the calls in flight at stop, one a line ("" when there were none)."""
    if read is None or not (read.calls or read.unread):
        return ""
    lines = [f"{'pid':>7} {'tid':>7} {'in flight':>9}  syscall (comm)"]
    for c in read.calls:
        comm = sanitize(thread_comm(processes, c.pid, c.tid), NAME_LIMIT)  # set by the thread
        abi = "" if c.abi == 0 else f" ({abi_table(arch, c.abi)})"
        lines.append(f"{c.pid:>7} {c.tid:>7} {elapsed_text(c, read.ts_ns):>9}  "
                     f"{sanitize(call_name(arch, c), NAME_LIMIT)}{abi} ({comm})")
    n = len(read.calls)
    summary = f"in flight at stop: {n:,} call{'' if n == 1 else 's'} (not counted above)"
    if read.unread:
        summary += f"; {read.unread:,} threads not read"
    if read.polled:
        summary += f"; {POLLED_NOTE}"
    lines.append(summary)
    return "\n".join(lines)


# -- the saved session (metadata "in_flight") ------------------------------------------------

def inflight_meta(read: InFlightRead | None) -> dict[str, Any] | None:
    """The session metadata's "in_flight" object (None: never read)."""
    if read is None:
        return None
    meta: dict[str, Any] = {
        "ts_ns": read.ts_ns, "threads": read.threads, "unread": read.unread,
        # A seen call's 2 makes readers from before it drop the whole object (nothing shown
        # rather than a lower bound shown as an exact time).
        "calls": [[c.pid, c.tid, c.nr, c.abi, c.start_ns,
                   SEEN if c.seen else BEFORE_TRACE if c.before_trace else ENTERED]
                  for c in read.calls]}
    if read.polled:
        meta["polled"] = 1
    return meta


def _natural(value: object, below: int = 1 << 63) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < below


def inflight_from_meta(value: object) -> InFlightRead | None:
    """An "in_flight" object back; None when absent or not well formed (untrusted: a
    malformed one is ignored rather than shown wrong)."""
    if not isinstance(value, dict):
        return None
    ts, calls = value.get("ts_ns"), value.get("calls")
    threads, unread = value.get("threads", 0), value.get("unread", 0)
    polled = value.get("polled", 0)
    if not (_natural(ts) and _natural(threads) and _natural(unread) and _natural(polled, 2)
            and isinstance(calls, list) and len(calls) <= MAX_STORED):
        return None
    found = []
    for row in calls:
        if not (isinstance(row, list) and len(row) in (5, 6) and all(map(_natural, row))):
            return None
        pid, tid, nr, abi, start, *how = row
        if pid >= 1 << 32 or tid >= 1 << 32 or nr > NR_MASK or abi > ABI_MASK \
                or how not in ([], [ENTERED], [BEFORE_TRACE], [SEEN]):
            return None
        found.append(InFlight(pid, tid, nr, abi, start, how == [BEFORE_TRACE], how == [SEEN]))
    assert isinstance(ts, int) and isinstance(threads, int) and isinstance(unread, int)
    return InFlightRead(ts, ordered(found), threads, unread, bool(polled))


def stored_inflight(value: object, end_ns: int) -> InFlightRead | None:
    """A saved session's calls in flight, as of the end of the stretch shown (`end_ns`)."""
    read = inflight_from_meta(value)
    return None if read is None else read.at(end_ns)
