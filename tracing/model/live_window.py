"""A live trace's window: the statistics of the last few seconds or minutes, made of the
snapshots' intervals (Snapshot.interval), so its counts, errors, total time and histograms
(hence percentiles) are exact sums, exactly as a saved session's stretch is made
(tracing/model/deltas.py).

A snapshot's interval is the change over (ts - interval_s, ts]. The window of span S at the
newest snapshot's time T holds every interval that ends after T - S: it covers at least S
(at most S plus one snapshot's interval, 0.25 s normally, up to 2 s under load).

Memory is bounded twice: by time (the longest span, plus the one interval that straddles its
start) and by entries (past MAX_ENTRIES held, the oldest intervals go, and the label says how
much is kept). A new epoch (a reset) or a snapshot that does not follow the last one (a
saved session's new stretch) empties the window: what it held no longer adds up.

Pure: no bcc, no Textual.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from tracing.model.deltas import DeltaSum
from tracing.model.stats import Snapshot, StatKey, SyscallStats
from tracing.model.units import format_elapsed

SPANS_S = (5.0, 30.0, 60.0, 300.0)  # what the chooser offers; None is "since start"
MAX_SPAN_S = max(SPANS_S)
# Interval entries held (about 200 bytes each with their histograms): about 25 MB at most.
# 5 min of 4 snapshots a second is 1,200 intervals, so this keeps all of them up to 100
# changed entries per snapshot. It also bounds choosing a span, which sums the intervals
# kept again on the UI thread: about 0.3 s for 120,000 entries on the development machines.
MAX_ENTRIES = 120_000


@dataclass(frozen=True, slots=True)
class _Slice:
    """One snapshot's interval and the time it spans (kernel monotonic ns)."""

    start_ns: int
    end_ns: int
    interval: Mapping[StatKey, SyscallStats]


def span_label(span_s: float | None) -> str:
    """"last 5 s", "last 1 min", "since start"."""
    if span_s is None:
        return "since start"
    if span_s < 60:
        return f"last {span_s:g} s"
    return f"last {span_s / 60:g} min"


class LiveWindow:
    """The last MAX_SPAN_S of snapshot intervals, and the sum of those in the chosen span.

    `add` each snapshot in order, then `view` it: the snapshot itself with no window (since
    start, the default), else the same snapshot whose `stats` are the window's."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self.span_s: float | None = None  # None: since the start (or the last reset)
        self._history: deque[_Slice] = deque()
        self._entries = 0  # interval entries held in _history
        self._sum = DeltaSum()
        self._summed = 0  # the newest _summed slices of _history are in _sum
        self._last: tuple[int, int] | None = None  # (epoch, seq) of the last snapshot added
        self._now_ns = 0
        self._dropped = False  # intervals inside MAX_SPAN_S went for the entry bound

    # -- feeding ----------------------------------------------------------------------------

    def add(self, snapshot: Snapshot) -> None:
        last = self._last
        if last is None or last != (snapshot.epoch, snapshot.seq - 1):
            self.clear()  # a reset, or a stretch that does not follow: start over
        self._last = (snapshot.epoch, snapshot.seq)
        self._now_ns = snapshot.ts_ns
        start_ns = snapshot.ts_ns - round(snapshot.interval_s * 1e9)
        piece = _Slice(start_ns, snapshot.ts_ns, snapshot.interval)
        self._history.append(piece)
        self._entries += len(piece.interval)
        if self.span_s is not None:
            self._sum.add(piece.interval)
            self._summed += 1
        self._leave()

    def clear(self) -> None:
        self._history.clear()
        self._entries = 0
        self._sum.clear()
        self._summed = 0
        self._dropped = False

    def _leave(self) -> None:
        """Take out of the sum the intervals that ended before the span, and out of the
        history those before the longest span or past the entry bound."""
        if self.span_s is not None:
            cutoff = self._now_ns - round(self.span_s * 1e9)
            while self._summed and self._history[-self._summed].end_ns <= cutoff:
                self._sum.subtract(self._history[-self._summed].interval)
                self._summed -= 1
        oldest = self._now_ns - round(MAX_SPAN_S * 1e9)
        history = self._history
        while len(history) > 1 and (history[0].end_ns <= oldest
                                    or self._entries > self.max_entries):
            if history[0].end_ns > oldest:
                self._dropped = True
            gone = history.popleft()
            self._entries -= len(gone.interval)
            if self._summed > len(history):  # it was in the window
                self._sum.subtract(gone.interval)
                self._summed -= 1

    # -- choosing and reading ---------------------------------------------------------------

    def set_span(self, span_s: float | None) -> None:
        """Show the last `span_s` seconds (None: everything since the start), at once: the
        window is summed again from the intervals kept."""
        if span_s is not None and not span_s > 0:
            raise ValueError(f"a window of {span_s} s")
        self.span_s = span_s
        self._sum.clear()
        self._summed = 0
        if span_s is None:
            return
        cutoff = self._now_ns - round(span_s * 1e9)
        for piece in reversed(self._history):
            if piece.end_ns <= cutoff:
                break
            self._summed += 1
        for piece in list(self._history)[len(self._history) - self._summed:]:
            self._sum.add(piece.interval)

    @property
    def kept_s(self) -> float:
        """How far back the intervals held go, from the newest snapshot."""
        if not self._history:
            return 0.0
        return (self._now_ns - self._history[0].start_ns) / 1e9

    @property
    def covered_s(self) -> float:
        """How far back the window's intervals go (0 when none are in it)."""
        if not self._summed:
            return 0.0
        return (self._now_ns - self._history[-self._summed].start_ns) / 1e9

    @property
    def short(self) -> bool:
        """True when the entry bound dropped intervals the span would hold."""
        return (self.span_s is not None and self._dropped
                and self.kept_s + 1e-9 < self.span_s)

    def label(self) -> str:
        """What the header says: "last 5 s", or "last 5 min (2:10 kept)" when the entry
        bound keeps less than the span."""
        text = span_label(self.span_s)
        if self.short:
            text += f" ({format_elapsed(self.kept_s)} kept)"
        return text

    def stats(self) -> dict[StatKey, SyscallStats]:
        """The window's statistics (a new dict)."""
        return self._sum.stats()

    def view(self, snapshot: Snapshot) -> Snapshot:
        """The snapshot as shown: itself since the start, else with the window's stats (its
        interval, events and the rest are the snapshot's own)."""
        if self.span_s is None:
            return snapshot
        return dataclasses.replace(snapshot, stats=MappingProxyType(self._sum.stats()),
                                   since_start=None)

    @property
    def cutoff_ns(self) -> int | None:
        """The window's start: the snapshots that ended after it are in it (None: no
        window)."""
        if self.span_s is None:
            return None
        return self._now_ns - round(self.span_s * 1e9)
