"""What the UI knows of the trace so far: the newest snapshot, the recent events of every
snapshot (with their captured fields, numbered in order of arrival) and every stack's CPU
samples (rendering skips snapshots, keeping their events and samples does not)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from tracing.model.connections import ConnectionSet
from tracing.model.live_window import LiveWindow
from tracing.model.samples import SampleSet
from tracing.model.stats import EVENT_DTYPE, Snapshot
from tracing.model.timeseries import SessionSeries

RECENT_EVENTS = 20_000


@dataclass(frozen=True, slots=True)
class EventBatch:
    """One snapshot's events: `first` numbers its first event (events are numbered from 0 in
    order of arrival), `data` their captured fields, `snapshot` the one they came in (its
    processes name them, its path table names their descriptors)."""

    first: int
    events: np.ndarray
    data: tuple[bytes, ...]
    snapshot: Snapshot

    @property
    def end(self) -> int:
        return self.first + len(self.events)


class SessionView:
    """`latest` is the newest snapshot as shown: with a live window chosen (`window`,
    `set_span`), its stats are the window's, so every view drawn from it (the table, the
    groupings, filters and drill-downs) shows the window; `newest` is the snapshot itself."""

    def __init__(self) -> None:
        self.latest: Snapshot | None = None
        self.newest: Snapshot | None = None
        self.window = LiveWindow()
        self.series = SessionSeries()  # the charts' slots (tui/charts.py)
        self._batches: deque[EventBatch] = deque()
        self._held = 0
        self.events_arrived = 0  # every event since the start, resets or not
        self.resets = 0  # how many times what was shown was forgotten (reset, a new window)
        self.samples = SampleSet()
        self.connections = ConnectionSet()

    def add(self, snapshot: Snapshot) -> None:
        self.window.add(snapshot)
        self.series.add(snapshot)
        self.newest = snapshot
        self.latest = self.window.view(snapshot)
        if snapshot.samples:
            self.samples.update(snapshot.samples)
        if snapshot.connections:
            self.connections.update(snapshot.connections)
        count = len(snapshot.events)
        if count:
            self._batches.append(EventBatch(self.events_arrived, snapshot.events,
                                            tuple(snapshot.event_data), snapshot))
            self._held += count
            self.events_arrived += count
        # Keep whole batches while the newest RECENT_EVENTS stay covered.
        while self._batches and self._held - len(self._batches[0].events) >= RECENT_EVENTS:
            self._held -= len(self._batches.popleft().events)

    @property
    def events(self) -> np.ndarray:
        """The recent events, oldest first (EVENT_DTYPE)."""
        if not self._batches:
            return np.empty(0, dtype=EVENT_DTYPE)
        return np.concatenate([b.events for b in self._batches])[-RECENT_EVENTS:]

    @property
    def event_batches(self) -> tuple[EventBatch, ...]:
        """The recent events with their captured fields, oldest batch first."""
        return tuple(self._batches)

    def set_span(self, span_s: float | None) -> None:
        """Show the last `span_s` seconds (None: since the start) from now on, and at once."""
        self.window.set_span(span_s)
        if self.newest is not None:
            self.latest = self.window.view(self.newest)

    def reset(self, keep_counting: bool = True) -> None:
        """Forget what was shown; `keep_counting`: see SampleSet.reset."""
        self._batches.clear()
        self._held = 0  # events_arrived goes on: it numbers the events
        self.resets += 1
        self.samples.reset(keep_counting)
        if not keep_counting:  # a live trace's connections stay: they are not counts
            self.connections.reset()

    def notify_screens(self, app: object) -> None:
        """Let the screen on top (a drill-down) redraw from the new snapshot."""
        screen = getattr(app, "screen", None)
        update = getattr(screen, "session_updated", None)
        if update is not None:
            update()
