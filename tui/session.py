"""What the UI knows of the trace so far: the newest snapshot and the recent events of every
snapshot (rendering skips snapshots, keeping their events does not)."""

from __future__ import annotations

from collections import deque

from tracing.model import Snapshot, SyscallEvent

RECENT_EVENTS = 20_000


class SessionView:
    def __init__(self) -> None:
        self.latest: Snapshot | None = None
        self.events: deque[SyscallEvent] = deque(maxlen=RECENT_EVENTS)

    def add(self, snapshot: Snapshot) -> None:
        self.latest = snapshot
        self.events.extend(snapshot.events)

    def reset(self) -> None:
        self.events.clear()

    def notify_screens(self, app: object) -> None:
        """Let the screen on top (a drill-down) redraw from the new snapshot."""
        screen = getattr(app, "screen", None)
        update = getattr(screen, "session_updated", None)
        if update is not None:
            update()
