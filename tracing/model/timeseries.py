"""A session's activity over time, for the charts: per time slot, every call and error, and
per syscall (number and ABI) its count, errors, total time and latency histogram.

Memory is bounded whatever the session's length: at most MAX_SLOTS slots are kept, and when
a new interval falls past the last one the slot width doubles (each pair of slots becomes
one), so a long session is drawn coarser instead of growing. The recent rates
(RecentRates) keep the last five minutes at a fixed fine width, for the live windows, which
the session's slots would soon be too coarse for.

Each interval goes whole into the slot of its end: slot k holds the intervals that end in
(start + k*width, start + (k+1)*width], the rule a saved session's stretch uses
(tracing.session.window), so slot sums equal a stretch's exactly on slot boundaries. A slot
also keeps the seconds its intervals cover: rates are per second of that, so a slot that one
tick more or less fell into still shows the right rate.

Pure: no bcc, no Textual.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from tracing.model.deltas import stretch_stats
from tracing.model.stats import Snapshot, SyscallStats, TraceState

BASE_SLOT_NS = 500_000_000  # two ticks of the engine (4 a second)
MAX_SLOTS = 240
RECENT_SLOT_NS = 500_000_000
RECENT_KEPT_NS = 301_000_000_000  # the longest live window (5 min), and a slot

SyscallId = tuple[int, int]  # (nr, abi): a syscall as every process makes it


@dataclass(slots=True)
class _Sums:
    count: int = 0
    errors: int = 0
    total_ns: int = 0
    hist: dict[int, int] = field(default_factory=dict)

    def add(self, count: int, errors: int, total_ns: int, hist: Iterable[tuple[int, int]]
            ) -> None:
        self.count += count
        self.errors += errors
        self.total_ns += total_ns
        mine = self.hist
        for bucket, n in hist:
            mine[bucket] = mine.get(bucket, 0) + n


@dataclass(slots=True)
class _Slot:
    calls: int = 0
    errors: int = 0
    seconds: float = 0.0  # the time its intervals cover
    syscalls: dict[SyscallId, _Sums] = field(default_factory=dict)

    def absorb(self, other: _Slot) -> None:
        self.calls += other.calls
        self.errors += other.errors
        self.seconds += other.seconds
        for sid, sums in other.syscalls.items():
            mine = self.syscalls.get(sid)
            if mine is None:
                self.syscalls[sid] = sums
            else:
                mine.add(sums.count, sums.errors, sums.total_ns, sums.hist.items())


@dataclass(frozen=True, slots=True)
class RatePoint:
    """One slot: seconds from the session's start, and what happened in it."""

    start_s: float
    end_s: float
    seconds: float  # the time its intervals cover (the rates' divisor)
    calls: int
    errors: int

    @property
    def calls_per_s(self) -> float:
        return self.calls / self.seconds if self.seconds > 0 else 0.0

    @property
    def errors_per_s(self) -> float:
        return self.errors / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class SyscallPoint:
    """One slot of one syscall (its ABIs and numbers merged as asked)."""

    start_s: float
    end_s: float
    seconds: float
    stats: SyscallStats  # count, errors, total and histogram exact; extremes bounded

    @property
    def calls_per_s(self) -> float:
        return self.stats.count / self.seconds if self.seconds > 0 else 0.0

    def quantile_ns(self, q: float) -> int:
        return self.stats.quantile(q)


class SessionSeries:
    """The session's slots (see the module). Live: `add(snapshot)` each snapshot; a saved
    session: `add_entry`/`add_time` from its timeline, then `close(end_ns)`."""

    def __init__(self, start_ns: int | None = None, slot_ns: int = BASE_SLOT_NS,
                 max_slots: int = MAX_SLOTS) -> None:
        if slot_ns <= 0 or max_slots < 2:
            raise ValueError("a slot must last and there must be two at least")
        self.start_ns = start_ns
        self.slot_ns = slot_ns
        self.max_slots = max_slots
        self.end_ns = start_ns or 0  # the newest interval's end seen
        self.closed = False  # a saved session's: complete, the seconds are its slots'
        self.recent = RecentRates()
        self._slots: list[_Slot] = []
        self._newest_tick = -1

    def __len__(self) -> int:
        return len(self._slots)

    def add(self, snapshot: Snapshot) -> None:
        """A live snapshot's interval. A saved session's snapshot is a whole stretch, not a
        tick: its series comes from the timeline (tracing.session.series) instead."""
        if snapshot.state == TraceState.SAVED or self.closed \
                or snapshot.ts_ns <= self._newest_tick:
            return  # a stretch, or a tick seen already (a replay shows it again at reset)
        self._newest_tick = snapshot.ts_ns
        if self.start_ns is None:
            self.start_ns = snapshot.start_ts_ns
        seconds = max(snapshot.interval_s, 0.0)
        calls = errors = 0
        slot = self._slot(snapshot.ts_ns)
        for key, delta in snapshot.interval.items():
            if delta.count:
                self._add_to(slot, key.nr, key.abi, delta.count, delta.errors, delta.total_ns,
                             delta.hist)
                calls += delta.count
                errors += delta.errors
        slot.seconds += seconds
        self.recent.add(snapshot.ts_ns, seconds, calls, errors)

    def add_entry(self, ts_ns: int, nr: int, abi: int, count: int, errors: int,
                  total_ns: int, hist: Iterable[tuple[int, int]]) -> None:
        """One syscall's change in an interval ending at ts_ns (a saved timeline's row)."""
        self._add_to(self._slot(ts_ns), nr, abi, count, errors, total_ns, hist)

    def add_time(self, ts_ns: int, seconds: float) -> None:
        """The time an interval ending at ts_ns covers (with or without calls)."""
        self._slot(ts_ns).seconds += max(seconds, 0.0)

    def close(self, end_ns: int) -> None:
        """A saved session ends here: every slot covers its own width (the last one up to
        the end), whether or not a change was stored in it."""
        start = self._start()
        self.end_ns = max(end_ns, start)
        self._slot(self.end_ns)  # slots up to the end, empty ones included
        for k, slot in enumerate(self._slots):
            low = start + k * self.slot_ns
            slot.seconds = max(min(low + self.slot_ns, self.end_ns) - low, 0) / 1e9
        self.closed = True

    # -- reading ------------------------------------------------------------------------------

    def rates(self, since_ns: int | None = None, until_ns: int | None = None
              ) -> list[RatePoint]:
        """Every slot that covers some time, oldest first; `since_ns`/`until_ns`: only
        those that overlap that stretch (monotonic ns)."""
        return [RatePoint(lo, hi, s.seconds, s.calls, s.errors)
                for lo, hi, s in self._covered(since_ns, until_ns)]

    def syscall(self, ids: Collection[SyscallId], since_ns: int | None = None,
                until_ns: int | None = None) -> list[SyscallPoint]:
        """One syscall's slots (the sum of `ids`: the numbers and ABIs of its name), every
        slot that covers some time, with or without its calls."""
        points = []
        for lo, hi, slot in self._covered(since_ns, until_ns):
            total = _Sums()
            for sid in ids:
                sums = slot.syscalls.get(sid)
                if sums is not None:
                    total.add(sums.count, sums.errors, sums.total_ns, sums.hist.items())
            stats = stretch_stats(total.count, total.errors, total.total_ns, 0, total.hist)
            points.append(SyscallPoint(lo, hi, slot.seconds, stats))
        return points

    def syscall_ids(self) -> set[SyscallId]:
        return {sid for slot in self._slots for sid in slot.syscalls}

    def offset_s(self, ts_ns: int) -> float:
        """A time on the session's clock as seconds from its start."""
        return (ts_ns - self._start()) / 1e9

    # -- inside -------------------------------------------------------------------------------

    def _start(self) -> int:
        if self.start_ns is None:
            raise ValueError("the series has no start yet")
        return self.start_ns

    def _covered(self, since_ns: int | None, until_ns: int | None
                 ) -> Iterable[tuple[float, float, _Slot]]:
        if self.start_ns is None:
            return
        width = self.slot_ns
        for k, slot in enumerate(self._slots):
            low = self.start_ns + k * width
            if slot.seconds <= 0 or (since_ns is not None and low + width <= since_ns) \
                    or (until_ns is not None and low >= until_ns):
                continue
            yield (k * width / 1e9, (k + 1) * width / 1e9, slot)

    def _slot(self, ts_ns: int) -> _Slot:
        start = self._start()
        index = max(ts_ns - start - 1, 0) // self.slot_ns
        while index >= self.max_slots:
            self._double()
            index = max(ts_ns - start - 1, 0) // self.slot_ns
        while len(self._slots) <= index:
            self._slots.append(_Slot())
        self.end_ns = max(self.end_ns, ts_ns)
        return self._slots[index]

    def _double(self) -> None:
        """Each pair of slots becomes one of twice the width: (2j, 2j+1) -> j."""
        merged = []
        for j in range(0, len(self._slots), 2):
            slot = self._slots[j]
            if j + 1 < len(self._slots):
                slot.absorb(self._slots[j + 1])
            merged.append(slot)
        self._slots = merged
        self.slot_ns *= 2

    @staticmethod
    def _add_to(slot: _Slot, nr: int, abi: int, count: int, errors: int, total_ns: int,
                hist: Iterable[tuple[int, int]]) -> None:
        sums = slot.syscalls.get((nr, abi))
        if sums is None:
            sums = slot.syscalls[(nr, abi)] = _Sums()
        sums.add(count, errors, total_ns, hist)
        slot.calls += count
        slot.errors += errors


class RecentRates:
    """Calls and errors of the last RECENT_KEPT_NS in fixed slots (the live windows' chart):
    slot k of the monotonic clock holds the intervals that end in (k*width, (k+1)*width]."""

    def __init__(self, slot_ns: int = RECENT_SLOT_NS, kept_ns: int = RECENT_KEPT_NS) -> None:
        self.slot_ns = slot_ns
        self.kept = max(kept_ns // slot_ns, 1)
        self._slots: deque[list[float]] = deque()  # [index, calls, errors, seconds]

    def __len__(self) -> int:
        return len(self._slots)

    def add(self, ts_ns: int, seconds: float, calls: int, errors: int) -> None:
        index = max(ts_ns - 1, 0) // self.slot_ns
        if not self._slots or self._slots[-1][0] < index:
            self._slots.append([index, 0, 0, 0.0])
        slot = self._slots[-1] if self._slots[-1][0] == index else None
        if slot is None:  # an older tick than the newest slot (never from one source)
            return
        slot[1] += calls
        slot[2] += errors
        slot[3] += seconds
        while self._slots and self._slots[0][0] <= index - self.kept:
            self._slots.popleft()

    def rates(self, since_ns: int, start_ns: int) -> list[RatePoint]:
        """The slots that overlap [since_ns, now], times as seconds from start_ns."""
        width = self.slot_ns
        return [RatePoint((index * width - start_ns) / 1e9, ((index + 1) * width - start_ns)
                          / 1e9, seconds, int(calls), int(errors))
                for index, calls, errors, seconds in
                ((int(s[0]), s[1], s[2], s[3]) for s in self._slots)
                if (index + 1) * width > since_ns and seconds > 0]

