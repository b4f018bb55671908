"""What the UI knows of the trace so far: the newest snapshot and the recent events of every
snapshot (rendering skips snapshots, keeping their events does not)."""

from __future__ import annotations

from collections import deque

import numpy as np

from tracing.model import EVENT_DTYPE, Snapshot

RECENT_EVENTS = 20_000


class SessionView:
    def __init__(self) -> None:
        self.latest: Snapshot | None = None
        self._batches: deque[np.ndarray] = deque()
        self._held = 0

    def add(self, snapshot: Snapshot) -> None:
        self.latest = snapshot
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

    def reset(self) -> None:
        self._batches.clear()
        self._held = 0

    def notify_screens(self, app: object) -> None:
        """Let the screen on top (a drill-down) redraw from the new snapshot."""
        screen = getattr(app, "screen", None)
        update = getattr(screen, "session_updated", None)
        if update is not None:
            update()
