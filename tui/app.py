"""The sikte-tui Textual application: picker -> live view -> drill-downs."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import time
from collections.abc import Callable
from pathlib import Path

from textual.app import App
from textual.events import Resize

from tracing.display_text import sanitize
from tracing.errors import UserError
from tracing.journal import JournalOptions
from tracing.privileges import missing_privileges
from tracing.proclist import ProcessEntry, list_processes
from tracing.sources import LiveSource, SnapshotSource, StoredSource
from tracing.stored import open_session
from tracing.tracer import TraceConfig
from tracing.userfiles import sessions_dir
from tui.actions import ActionsProvider
from tui.detail import DetailScreen
from tui.dialogs import ConfirmQuit, HelpScreen
from tui.live import LiveScreen
from tui.picker import PickerScreen
from tui.session import SessionView
from tui.sessions import SessionsScreen

MIN_SIZE = (80, 24)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


class SikteApp(App[int]):
    CSS_PATH = "sikte.tcss"
    TITLE = "sikte-tui"
    COMMANDS = App.COMMANDS | {ActionsProvider}

    def __init__(self, source: SnapshotSource | None = None,
                 lister: Callable[[], list[ProcessEntry]] = list_processes,
                 trace_defaults: TraceConfig | None = None,
                 clock: Callable[[], float] = time.time,
                 journal_options: JournalOptions | None = None,
                 browse_sessions: bool = False,
                 sessions_directory: Path | None = None) -> None:
        super().__init__()
        self.source = source
        self.journal_options = journal_options or JournalOptions()
        self.browse_sessions = browse_sessions
        self.sessions_directory = sessions_directory
        self.lister = lister
        self.trace_defaults = trace_defaults or TraceConfig()
        self.clock = clock
        self.session = SessionView()
        self._too_small = False

    def on_mount(self) -> None:
        self._catch_stop_signals()
        if self.source is not None:
            self.push_screen(LiveScreen(self.source, self.session))
        elif self.browse_sessions:
            self.push_screen(SessionsScreen(self.sessions_directory or sessions_dir()))
        else:
            self.push_screen(PickerScreen(self.lister, self.clock))

    # -- navigation -------------------------------------------------------------------------

    def start_trace(self, pids: tuple[int, ...] = (), command: tuple[str, ...] = (),
                    follow: bool = True) -> None:
        missing = missing_privileges()
        if missing:
            self.notify(f"tracing needs {missing}: restart with sudo", severity="error")
            return
        config = dataclasses.replace(self.trace_defaults, pids=pids, command=command,
                                     follow=follow)
        self.source = LiveSource(config, self.journal_options)
        self.switch_screen(LiveScreen(self.source, self.session))

    def open_stored(self, path: Path) -> None:
        """From the sessions list: show a saved session (it comes back on Escape)."""
        try:
            self.source = StoredSource(open_session(path))
        except UserError as err:
            self.notify(sanitize(str(err)), severity="error", markup=False)  # quotes a file
            return
        self.session = SessionView()
        self.push_screen(LiveScreen(self.source, self.session))

    def open_detail(self, syscall: str, pid: int | None) -> None:
        self.push_screen(DetailScreen(self.session, syscall, pid))

    def action_show_help(self) -> None:
        self.push_screen(HelpScreen())

    def request_quit(self) -> None:
        source = self.source
        if source is not None and source.command_running():
            self.push_screen(ConfirmQuit(), self._quit_choice)
        else:
            self._stop_and_exit()

    def _quit_choice(self, choice: str | None) -> None:
        if choice == "cancel" or choice is None:
            return
        if choice == "stop" and self.source is not None:
            self.source.stop_command()
        elif choice == "leave" and self.source is not None:
            self.source.leave_command()
        self._stop_and_exit()

    def _stop_and_exit(self, code: int = 0) -> None:
        if self.source is not None:
            self.source.stop()
        self.exit(code)

    # -- signals ----------------------------------------------------------------------------

    def _catch_stop_signals(self) -> None:
        """SIGTERM, SIGHUP and a SIGINT sent from outside end the app as `q` does (the
        journal kept, the terminal restored), stopping the launched command's tree. The
        handler runs on the event loop, never inside a signal handler."""
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            try:
                loop.add_signal_handler(sig, self._stop_signal, sig)
            except (ValueError, RuntimeError):  # not the main thread (an embedding host):
                return  # its signals stay its own

    def _stop_signal(self, sig: signal.Signals) -> None:
        if self.source is not None:
            self.source.stop_command()
        self._stop_and_exit(128 + sig)

    # -- terminal size ----------------------------------------------------------------------

    def on_resize(self, event: Resize) -> None:
        small = event.size.width < MIN_SIZE[0] or event.size.height < MIN_SIZE[1]
        if small and not self._too_small:
            self.notify(f"the terminal is {event.size.width}x{event.size.height}; sikte-tui "
                        f"needs {MIN_SIZE[0]}x{MIN_SIZE[1]}: enlarge the window",
                        severity="warning", timeout=8)
        self._too_small = small
