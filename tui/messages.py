"""Messages that cross from worker threads to the UI. Workers only ever post these."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

from tracing.model.stats import Snapshot

if TYPE_CHECKING:
    from tui.picker_rows import Listed


class SnapshotReady(Message):
    """A new snapshot from the source; bursts collapse, only the newest is rendered."""

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot


class CommandOutput(Message):
    """Text the launched command wrote to its terminal."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class SourceFailed(Message):
    """The source could not start (bad target, no privileges, load failure), or, `started`,
    it failed later (the tracer's thread died): what it showed until then stays."""

    def __init__(self, reason: str, started: bool = False) -> None:
        super().__init__()
        self.reason = reason
        self.started = started


class SourceStarted(Message):
    """The source is attached; snapshots follow."""


class ProcessesListed(Message):
    """A fresh process list for the picker."""

    def __init__(self, processes: list[Listed]) -> None:
        super().__init__()
        self.processes = processes
