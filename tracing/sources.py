"""Snapshot sources for the TUI: a live trace, a replay of a recorded one, or a saved
session. The TUI sees only this interface, so it runs the same on all (and its tests need no
root); each source's `capabilities` say what it can do, so the TUI never asks for its type.

Callbacks run on the source's own threads; the receiver must only post messages from them.
"""

from __future__ import annotations

import dataclasses
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from tracing.engine.tracer import TraceConfig, Tracer
from tracing.errors import UserError
from tracing.model.selection import EventSelection
from tracing.model.snapshots import rebase
from tracing.model.stats import Snapshot
from tracing.session.journal import Journal, JournalOptions, start_journal
from tracing.session.stored import StoredSession
from tracing.session.window import Window, whole, window_snapshot
from tracing.system.reaper import GRACE_S, session_members
from tracing.system.terminal_relay import CommandTerminal

# What the callbacks return is ignored (the TUI's post_message says whether it was queued).
SnapshotCallback = Callable[[Snapshot], object]
OutputCallback = Callable[[str], object]
FailureCallback = Callable[[str], object]  # one line: what failed (what was kept is said apart)
STOP_TIMEOUT_S = 10.0


def describe_failure(err: BaseException) -> str:
    """One line for an error that ended a trace: a UserError says it all; anything else is
    named with its type, so a report can be made of it."""
    if isinstance(err, UserError):
        return str(err)
    if isinstance(err, OSError) and err.strerror:
        return f"{err.strerror}" + (f": {err.filename}" if err.filename else "")
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


class SavedSessionView(Protocol):
    """A saved session, read-only, shown one stretch of its time at a time."""

    session: StoredSession
    window: Window  # the stretch shown

    def set_window(self, window: Window) -> None: ...


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a snapshot source can do: the TUI asks this, never the source's type."""

    live: bool = False  # traces now: quitting stops it, a launched command may still run
    output: bool = False  # relays the output of a command sikte-tui launched
    # A saved session: a stretch of its time can be chosen, and reset shows the whole
    # session again (for the others, reset zeroes the counts and counting goes on).
    saved: SavedSessionView | None = None


class SnapshotSource(Protocol):
    """What the TUI watches; methods a source cannot honour do nothing (or return None)."""

    capabilities: Capabilities
    title: str

    def start(self, on_snapshot: SnapshotCallback, on_output: OutputCallback,
              on_failure: FailureCallback | None = None) -> None: ...
    def stop(self) -> None: ...
    def journal_line(self) -> str | None: ...
    def journal_failed(self) -> bool: ...
    def stored(self) -> StoredSession | None: ...
    def session_name(self) -> str | None: ...
    def reset(self) -> None: ...
    def command_running(self) -> bool: ...
    def stop_command(self) -> None: ...
    def leave_command(self) -> None: ...
    def left_running(self) -> tuple[int, ...]: ...
    # The event selection: switched at run time by a live source (at its next tick), kept
    # as recorded by the others (selection None, set_selection does nothing).
    @property
    def selection(self) -> EventSelection | None: ...
    def set_selection(self, selection: EventSelection) -> None: ...
    # The calls in flight: a live source reads them each second only while watched (the
    # in-flight view is open) and at stop; the others keep what was recorded.
    def watch_inflight(self, on: bool) -> None: ...


class LiveSource:
    """Traces for real. `start()` blocks while the program compiles and loads (about a second)
    and raises UserError for bad targets, so call it off the UI thread."""

    def __init__(self, config: TraceConfig, journal_options: JournalOptions | None = None,
                 meta: Mapping[str, object] | None = None) -> None:
        self.config = config
        self.capabilities = Capabilities(live=True, output=bool(config.command))
        self.title = ", ".join(config.describe_targets())
        self._selection = config.events
        self._inflight_watched = False
        self.tracer: Tracer | None = None
        self.journal: Journal | None = None
        self._journal_options = journal_options or JournalOptions()
        self._meta = dict(meta or {"targets": list(config.describe_targets())})
        self.failure: str | None = None  # why tracing ended early, once it has
        self._on_failure: FailureCallback | None = None
        self._left: tuple[int, ...] = ()
        self._tree_gone_by: float | None = None  # after stop_command: when all must be gone
        # Set once start() has returned or raised: a stop asked while the program loads
        # waits for it, else the trace would start after we were gone.
        self._start_done = threading.Event()
        self._phase_lock = threading.Lock()
        self._starting = self._stopping = False

    def start(self, on_snapshot: SnapshotCallback, on_output: OutputCallback,
              on_failure: FailureCallback | None = None) -> None:
        # The journal first: it must see the first snapshot. A trace that cannot start
        # leaves no journal behind.
        self._on_failure = on_failure
        with self._phase_lock:
            if self._stopping:  # quit before the trace began: it never will
                raise UserError("stopped before tracing started", exit_code=1)
            self._starting = True
        try:
            journal = start_journal(self._journal_options, self.config.describe_targets(),
                                    self._meta)
            try:
                self._start_tracer(journal, on_snapshot, on_output)
            except BaseException:
                journal.discard()
                raise
            self.journal = journal
        finally:
            self._start_done.set()

    def _tracer_failed(self, err: BaseException) -> None:
        """From the tracer's thread, as it ends: record why in the journal, tell the UI."""
        self.failure = f"the tracer stopped ({describe_failure(err)})"
        if self.journal is not None:
            self.journal.set_meta(error=self.failure)
        if self._on_failure is not None:
            self._on_failure(self.failure)

    def _start_tracer(self, journal: Journal, on_snapshot: SnapshotCallback,
                      on_output: OutputCallback) -> None:
        def deliver(snapshot: Snapshot) -> None:
            journal.put(snapshot)
            on_snapshot(snapshot)

        config = self.config
        if config.command:
            # The command gets a terminal of its own, never ours: its output is captured
            # for the output panel and it cannot read the keys meant for the TUI.
            def relay(data: bytes) -> None:
                on_output(data.decode(errors="replace").replace("\r\n", "\n"))

            terminal = CommandTerminal()
            terminal.relay_output(relay)
            slave = terminal.slave
            config = dataclasses.replace(config, command_stdin=slave, command_stdout=slave,
                                         command_stderr=slave, terminal=terminal)
        self.tracer = Tracer(config, deliver, on_error=self._tracer_failed)
        self.tracer.watch_inflight(self._inflight_watched)
        try:
            self.tracer.start()
        except BaseException:
            if config.terminal is not None:
                config.terminal.close()  # its relay then ends
            raise

    def stop(self) -> None:
        """Take the last snapshot and close the journal. Raises UserError (one line) when
        either fails; what was written until then is kept (saved_line says where)."""
        stuck = False
        with self._phase_lock:
            self._stopping = True
            starting = self._starting
        if starting and not self._start_done.wait(STOP_TIMEOUT_S * 3):
            raise UserError("the trace was still starting after 30 s; nothing was recorded",
                            exit_code=1)
        if self.tracer is not None:
            self._await_tree()
            self.tracer.stop()
            stuck = not self.tracer.join(STOP_TIMEOUT_S)
        if self.journal is not None:
            try:
                self.journal.close()
            except (OSError, sqlite3.Error) as err:
                raise UserError(f"could not close the journal ({describe_failure(err)}): its "
                                "last half second may be missing", exit_code=1) from None
        if stuck:
            raise UserError(f"the tracer did not stop within {STOP_TIMEOUT_S:.0f} s: the "
                            "session misses its last moments", exit_code=1)

    def _await_tree(self) -> None:
        """After stop_command: let the tracer see the tree end (it stops by itself once
        every target is gone), so the session records their exits."""
        tracer, end = self.tracer, self._tree_gone_by
        while tracer is not None and end is not None and tracer.running \
                and time.monotonic() < end:
            tracer.join(0.02)

    def saved_line(self) -> str | None:
        """Where the session is, in words for the person quitting (None: never started)."""
        journal = self.journal
        if journal is None:
            return None
        if journal.on_disk:
            return f"session saved in {journal.path} (sikte-tui open to browse it)"
        if journal.path is None:
            return "the session was kept in memory only (--no-journal): x exports it next time"
        # The file keeps what was committed before the disk failed.
        return (f"session saved in {journal.path} up to when writing it failed; the rest "
                "was kept in memory only")

    def reset(self) -> None:
        if self.tracer is not None:
            self.tracer.reset()

    @property
    def selection(self) -> EventSelection:
        """The selection asked last (in force from the next snapshot on)."""
        return self._selection

    def set_selection(self, selection: EventSelection) -> None:
        """Switch which events the kernel sends; snapshots say when it is in force
        (Snapshot.selection). Before the trace starts: it starts with it."""
        self._selection = selection
        tracer = self.tracer
        if tracer is not None:
            tracer.set_selection(selection)
        else:
            self.config = dataclasses.replace(self.config, events=selection)

    def watch_inflight(self, on: bool) -> None:
        """Calls in flight each second while `on`; before the trace starts, from its start."""
        self._inflight_watched = on
        if self.tracer is not None:
            self.tracer.watch_inflight(on)

    def journal_line(self) -> str | None:
        return self.journal.describe() if self.journal is not None else None

    def journal_failed(self) -> bool:
        return self.journal is not None and self.journal.failed

    def stored(self) -> StoredSession | None:
        return self.journal.stored() if self.journal is not None else None

    def session_name(self) -> str | None:
        """The journal's file name (None: no journal, or one in memory only)."""
        journal = self.journal
        return journal.path.name if journal is not None and journal.path else None

    def command_running(self) -> bool:
        command = self.tracer.command if self.tracer else None
        return command is not None and command.poll() is None

    def stop_command(self) -> None:
        """Stop the launched command's whole tree: SIGTERM, SIGKILL shortly after."""
        if self.tracer is not None and self.tracer.command is not None:
            self.tracer.command.stop_tree(signal.SIGTERM)
            # The launcher sends SIGKILL after GRACE_S to what is left.
            self._tree_gone_by = time.monotonic() + GRACE_S + 0.5

    def leave_command(self) -> None:
        """We quit and the command runs on (else it is stopped when we exit): its whole
        session, on its terminal, which its launcher keeps open after we are gone."""
        command = self.tracer.command if self.tracer is not None else None
        if command is not None:
            command.leave_running()
            self._left = tuple(sorted(session_members(command.pid)))

    def left_running(self) -> tuple[int, ...]:
        """The PIDs left running by leave_command (its command's session, as it was)."""
        return self._left


class _Playback:
    """Sources that play what was recorded: no journal of their own, no command."""

    def journal_line(self) -> str | None:
        return None

    def journal_failed(self) -> bool:
        return False

    def stored(self) -> StoredSession | None:
        return None

    def session_name(self) -> str | None:
        return None

    def command_running(self) -> bool:
        return False

    def stop_command(self) -> None:
        pass

    def leave_command(self) -> None:
        pass

    def left_running(self) -> tuple[int, ...]:
        return ()

    @property
    def selection(self) -> EventSelection | None:
        return None  # as recorded: each snapshot says which

    def set_selection(self, selection: EventSelection) -> None:
        pass

    def watch_inflight(self, on: bool) -> None:
        pass


class ReplaySource(_Playback):
    """Plays recorded snapshots: all at once (interval None, for tests) or paced."""

    capabilities = Capabilities()

    def __init__(self, snapshots: Sequence[Snapshot], title: str = "replay",
                 interval_s: float | None = None) -> None:
        self.snapshots = list(snapshots)
        self.title = title
        self.interval_s = interval_s
        self._on_snapshot: SnapshotCallback | None = None
        self._baseline: Snapshot | None = None
        self._latest: Snapshot | None = None
        self._stop = threading.Event()

    def start(self, on_snapshot: SnapshotCallback, on_output: OutputCallback,
              on_failure: FailureCallback | None = None) -> None:
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


class StoredSource(_Playback):
    """A saved session (journal or Parquet), shown read-only: one snapshot for the chosen
    stretch of time, the whole session at first; `set_window` shows another stretch."""

    def __init__(self, session: StoredSession) -> None:
        self.session = session
        self.capabilities = Capabilities(saved=self)
        self.title = f"{session.name} ({', '.join(session.meta.get('targets') or ()) or '?'})"
        self.window = whole(session)
        self._on_snapshot: SnapshotCallback | None = None
        self._seq = 0

    def start(self, on_snapshot: SnapshotCallback, on_output: OutputCallback,
              on_failure: FailureCallback | None = None) -> None:
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

    def session_name(self) -> str | None:
        return self.session.name
