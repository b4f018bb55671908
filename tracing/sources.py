"""Snapshot sources for the TUI: a live trace, or a replay of a recorded one. The TUI sees
only this interface, so it runs the same on both (and its tests need no root).

Callbacks run on the source's own threads; the receiver must only post messages from them.
"""

from __future__ import annotations

import dataclasses
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from tracing.journal import Journal, JournalOptions, start_journal
from tracing.model import Snapshot
from tracing.snapshots import rebase
from tracing.stored import StoredSession
from tracing.stored_window import Window, whole, window_snapshot
from tracing.terminal_relay import CommandTerminal
from tracing.tracer import TraceConfig, Tracer

SnapshotCallback = Callable[[Snapshot], None]
OutputCallback = Callable[[str], None]


class SnapshotSource(Protocol):
    live: bool
    title: str

    def start(self, on_snapshot: SnapshotCallback, on_output: OutputCallback) -> None: ...
    def stop(self) -> None: ...
    def journal_line(self) -> str | None: ...
    def journal_failed(self) -> bool: ...
    def stored(self) -> StoredSession | None: ...
    def reset(self) -> None: ...
    def command_running(self) -> bool: ...
    def stop_command(self) -> None: ...
    def leave_command(self) -> None: ...


class LiveSource:
    """Traces for real. `start()` blocks while the program compiles and loads (about a second)
    and raises UserError for bad targets, so call it off the UI thread."""

    live = True

    def __init__(self, config: TraceConfig, journal_options: JournalOptions | None = None,
                 meta: Mapping[str, object] | None = None) -> None:
        self.config = config
        self.title = ", ".join(config.describe_targets())
        self.tracer: Tracer | None = None
        self.journal: Journal | None = None
        self._journal_options = journal_options or JournalOptions()
        self._meta = dict(meta or {"targets": list(config.describe_targets())})

    def start(self, on_snapshot: SnapshotCallback, on_output: OutputCallback) -> None:
        # The journal first: it must see the first snapshot. A trace that cannot start
        # leaves no journal behind.
        journal = start_journal(self._journal_options, self.config.describe_targets(),
                                self._meta)
        try:
            self._start_tracer(journal, on_snapshot, on_output)
        except BaseException:
            journal.discard()
            raise
        self.journal = journal

    def _start_tracer(self, journal: Journal, on_snapshot: SnapshotCallback,
                      on_output: OutputCallback) -> None:
        def deliver(snapshot: Snapshot) -> None:
            journal.put(snapshot)
            on_snapshot(snapshot)

        config = self.config
        if config.command:
            # The command gets a terminal of its own, never ours: its output is captured
            # for the output panel and it cannot read the keys meant for the TUI.
            terminal = CommandTerminal()
            terminal.relay_output(
                lambda data: on_output(data.decode(errors="replace").replace("\r\n", "\n")))
            slave = terminal.slave
            config = dataclasses.replace(config, command_stdin=slave, command_stdout=slave,
                                         command_stderr=slave, terminal=terminal)
        self.tracer = Tracer(config, deliver)
        try:
            self.tracer.start()
        except BaseException:
            if config.terminal is not None:
                config.terminal.close()  # its relay then ends
            raise

    def stop(self) -> None:
        if self.tracer is not None:
            self.tracer.stop()
            self.tracer.join(10)
        if self.journal is not None:
            self.journal.close()

    def reset(self) -> None:
        if self.tracer is not None:
            self.tracer.reset()

    def journal_line(self) -> str | None:
        return self.journal.describe() if self.journal is not None else None

    def journal_failed(self) -> bool:
        return self.journal is not None and self.journal.failed

    def stored(self) -> StoredSession | None:
        return self.journal.stored() if self.journal is not None else None

    def command_running(self) -> bool:
        command = self.tracer.command if self.tracer else None
        return command is not None and command.poll() is None

    def stop_command(self) -> None:
        """Stop the launched command's whole tree: SIGTERM, SIGKILL shortly after."""
        if self.tracer is not None and self.tracer.command is not None:
            self.tracer.command.stop_tree(signal.SIGTERM)

    def leave_command(self) -> None:
        """We quit and the command runs on (else it is stopped when we exit)."""
        if self.tracer is not None and self.tracer.command is not None:
            self.tracer.command.leave_running()


class _Unjournaled:
    """Sources that keep no journal of their own."""

    def journal_line(self) -> str | None:
        return None

    def journal_failed(self) -> bool:
        return False

    def stored(self) -> StoredSession | None:
        return None


class ReplaySource(_Unjournaled):
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

    def leave_command(self) -> None:
        pass



class StoredSource(_Unjournaled):
    """A saved session (journal or Parquet), shown read-only: one snapshot for the chosen
    stretch of time, the whole session at first; `set_window` shows another stretch."""

    live = False

    def __init__(self, session: StoredSession) -> None:
        self.session = session
        self.title = f"{session.name} ({', '.join(session.meta.get('targets') or ()) or '?'})"
        self.window = whole(session)
        self._on_snapshot: SnapshotCallback | None = None
        self._seq = 0

    def start(self, on_snapshot: SnapshotCallback, on_output: OutputCallback) -> None:
        self._on_snapshot = on_snapshot
        self._emit()

    def set_window(self, window: Window) -> None:
        full = whole(self.session)
        start = min(max(window.start_ns, full.start_ns), full.end_ns)
        end = min(max(window.end_ns, start), full.end_ns)
        self.window = Window(start, end)
        self._emit()

    def _emit(self) -> None:
        self._seq += 2  # never consecutive: each window is rebuilt, not added
        if self._on_snapshot is not None:
            self._on_snapshot(window_snapshot(self.session, self.window, self._seq))

    def stop(self) -> None:
        pass

    def reset(self) -> None:
        self.set_window(whole(self.session))

    def stored(self) -> StoredSession | None:
        return self.session

    def command_running(self) -> bool:
        return False

    def stop_command(self) -> None:
        pass

    def leave_command(self) -> None:
        pass
