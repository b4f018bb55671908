"""What the UI knows of the trace so far: the newest snapshot, the recent events of every
snapshot and every stack's CPU samples (rendering skips snapshots, keeping their events and
samples does not)."""

from __future__ import annotations

from collections import deque

import numpy as np

from tracing.model.connections import ConnectionSet
from tracing.model.samples import SampleSet
from tracing.model.stats import EVENT_DTYPE, Snapshot

RECENT_EVENTS = 20_000


class SessionView:
    def __init__(self) -> None:
        self.latest: Snapshot | None = None
        self._batches: deque[np.ndarray] = deque()
        self._held = 0
        self.samples = SampleSet()
        self.connections = ConnectionSet()

    def add(self, snapshot: Snapshot) -> None:
        self.latest = snapshot
        if snapshot.samples:
            self.samples.update(snapshot.samples)
        if snapshot.connections:
            self.connections.update(snapshot.connections)
        if len(snapshot.events):
            self._batches.append(snapshot.events)
            self._held += len(snapshot.events)
        # Keep whole batches while the newest RECENT_EVENTS stay covered.
        while self._batches and self._held - len(self._batches[0]) >= RECENT_EVENTS:
            self._held -= len(self._batches.popleft())

    @property
    def events(self) -> np.ndarray:
        """The recent events, oldest first (EVENT_DTYPE)."""
        if not self._batches:
            return np.empty(0, dtype=EVENT_DTYPE)
        return np.concatenate(self._batches)[-RECENT_EVENTS:]

    def reset(self, keep_counting: bool = True) -> None:
        """Forget what was shown; `keep_counting`: see SampleSet.reset."""
        self._batches.clear()
        self._held = 0
        self.samples.reset(keep_counting)
        if not keep_counting:  # a live trace's connections stay: they are not counts
            self.connections.reset()

    def notify_screens(self, app: object) -> None:
        """Let the screen on top (a drill-down) redraw from the new snapshot."""
        screen = getattr(app, "screen", None)
        update = getattr(screen, "session_updated", None)
        if update is not None:
            update()
