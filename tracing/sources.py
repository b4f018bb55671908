"""Snapshot sources for the TUI: a live trace, or a replay of a recorded one. The TUI sees
only this interface, so it runs the same on both (and its tests need no root).

Callbacks run on the source's own threads; the receiver must only post messages from them.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from tracing.model import Snapshot
from tracing.snapshots import rebase
from tracing.tracer import TraceConfig, Tracer

SnapshotCallback = Callable[[Snapshot], None]
OutputCallback = Callable[[str], None]


class SnapshotSource(Protocol):
    live: bool
    title: str

    def start(self, on_snapshot: SnapshotCallback, on_output: OutputCallback) -> None: ...
    def stop(self) -> None: ...
    def reset(self) -> None: ...
    def command_running(self) -> bool: ...
    def stop_command(self) -> None: ...


class LiveSource:
    """Traces for real. `start()` blocks while the program compiles and loads (about a second)
    and raises UserError for bad targets, so call it off the UI thread."""

    live = True

    def __init__(self, config: TraceConfig) -> None:
        self.config = config
        self.title = ", ".join(config.describe_targets())
        self.tracer: Tracer | None = None
        self._pty_master: int | None = None

    def start(self, on_snapshot: SnapshotCallback, on_output: OutputCallback) -> None:
        config = self.config
        slave = None
        if config.command:
            # The command gets a terminal of its own, never ours: its output is captured
            # for the output panel and it cannot read the keys meant for the TUI.
            self._pty_master, slave = os.openpty()
            config = dataclasses.replace(config, command_stdin=slave, command_stdout=slave,
                                         command_stderr=slave)
        self.tracer = Tracer(config, on_snapshot)
        try:
            self.tracer.start()
        finally:
            if slave is not None:
                os.close(slave)
        if self._pty_master is not None:
            threading.Thread(target=self._read_output, args=(on_output,), daemon=True,
                             name="sikte-output").start()

    def _read_output(self, on_output: OutputCallback) -> None:
        assert self._pty_master is not None
        while True:
            try:
                data = os.read(self._pty_master, 65536)
            except OSError:  # EIO: the command and all its children closed the terminal
                break
            if not data:
                break
            on_output(data.decode(errors="replace").replace("\r\n", "\n"))
        os.close(self._pty_master)

    def stop(self) -> None:
        if self.tracer is not None:
            self.tracer.stop()
            self.tracer.join(10)

    def reset(self) -> None:
        if self.tracer is not None:
            self.tracer.reset()

    def command_running(self) -> bool:
        command = self.tracer.command if self.tracer else None
        return command is not None and command.poll() is None

    def stop_command(self) -> None:
        if self.tracer is not None and self.tracer.command is not None:
            self.tracer.command.kill(signal.SIGTERM)


class ReplaySource:
    """Plays recorded snapshots: all at once (interval None, for tests) or paced."""

    live = False

    def __init__(self, snapshots: Sequence[Snapshot], title: str = "replay",
                 interval_s: float | None = None) -> None:
        self.snapshots = list(snapshots)
        self.title = title
        self.interval_s = interval_s
        self._on_snapshot: SnapshotCallback | None = None
        self._baseline: Snapshot | None = None
        self._latest: Snapshot | None = None
        self._stop = threading.Event()

    def start(self, on_snapshot: SnapshotCallback, on_output: OutputCallback) -> None:
        self._on_snapshot = on_snapshot
        if self.interval_s is None:
            for snapshot in self.snapshots:
                self._emit(snapshot)
        else:
            threading.Thread(target=self._play, daemon=True, name="sikte-replay").start()

    def _play(self) -> None:
        for snapshot in self.snapshots:
            if self._stop.wait(self.interval_s):
                return
            self._emit(snapshot)

    def _emit(self, snapshot: Snapshot) -> None:
        self._latest = snapshot
        assert self._on_snapshot is not None
        self._on_snapshot(rebase(snapshot, self._baseline))

    def stop(self) -> None:
        self._stop.set()

    def reset(self) -> None:
        self._baseline = self._latest
        if self._latest is not None:
            self._emit(self._latest)

    def command_running(self) -> bool:
        return False

    def stop_command(self) -> None:
        pass

