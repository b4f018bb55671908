"""The sikte-tui Textual application: picker -> live view -> drill-downs."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from textual import work
from textual.app import App
from textual.driver import Driver
from textual.events import Resize

from tracing.boundary.display_text import sanitize
from tracing.boundary.userfiles import sessions_dir
from tracing.engine.tracer import TraceConfig
from tracing.errors import UserError
from tracing.model.timing import Timing
from tracing.session.catalogue import cut_short_notice
from tracing.session.journal import JournalOptions
from tracing.session.stored import open_session
from tracing.sources import LiveSource, SnapshotSource, StoredSource, describe_failure
from tracing.system.privileges import missing_privileges
from tracing.system.proclist import ProcessEntry, list_processes
from tui.actions import ActionsProvider
from tui.detail import DetailScreen
from tui.dialogs import ConfirmQuit, HelpScreen
from tui.live import LiveScreen, default_export_path
from tui.picker import PickerScreen
from tui.session import SessionView
from tui.session_dialogs import ConfirmNewTrace, ExportBeforeLeaving, ExportDialog
from tui.sessions import SessionsScreen
from tui.terminal_driver import TerminalDriver

MIN_SIZE = (80, 24)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


class SikteApp(App[int]):
    CSS_PATH = "sikte.tcss"
    TITLE = "sikte-tui"
    COMMANDS = App.COMMANDS | {ActionsProvider}

    def get_driver_class(self) -> type[Driver]:
        return TerminalDriver  # Linux only, as the tracer is

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
        # For the lines printed once the terminal is back (cli/interactive_cmd.py): every
        # trace of this run (a new trace from the picker adds one), what was left running,
        # what failed while stopping, and a crash.
        self.traces: list[LiveSource] = [source] if isinstance(source, LiveSource) else []
        self.left_running: tuple[int, ...] = ()
        self.stop_errors: list[str] = []
        self.crash: str | None = None
        self._exiting = False

    def on_mount(self) -> None:
        self._catch_stop_signals()
        if self.source is not None:
            self._show_source()
        elif self.browse_sessions:
            self.push_screen(SessionsScreen(self.sessions_directory or sessions_dir()))
        else:
            self.push_screen(PickerScreen(self.lister, self.clock))

    # -- navigation -------------------------------------------------------------------------

    def start_trace(self, pids: tuple[int, ...] = (), command: tuple[str, ...] = (),
                    follow: bool = True, timing: Timing | None = None) -> None:
        """`timing`: the launch dialog's choice (None: the command line's --timing)."""
        missing = missing_privileges()
        if missing:
            self.notify(f"tracing needs {missing}: restart with sudo", severity="error")
            return
        config = dataclasses.replace(self.trace_defaults, pids=pids, command=command,
                                     follow=follow)
        if timing is not None:
            config = dataclasses.replace(config, timing=timing)
        self.source = LiveSource(config, self.journal_options)
        self.traces.append(self.source)
        self.session = SessionView()
        self.switch_screen(LiveScreen(self.source, self.session))

    def open_stored(self, path: Path) -> None:
        """From the sessions list: show a saved session (it comes back on Escape)."""
        try:
            self.source = StoredSource(open_session(path))
        except UserError as err:
            self.notify(sanitize(str(err)), severity="error", markup=False)  # quotes a file
            return
        self.session = SessionView()
        self._show_source()

    def _show_source(self) -> None:
        source = self.source
        assert source is not None
        self.push_screen(LiveScreen(source, self.session))
        saved = source.capabilities.saved
        if saved is not None:
            notice = cut_short_notice(saved.session.path, saved.session.meta)
            if notice:
                self.notify(sanitize(notice), markup=False, timeout=8)

    def open_detail(self, syscall: str, pid: int | None, abi: int | None = None) -> None:
        self.push_screen(DetailScreen(self.session, syscall, pid, abi))

    def action_show_help(self) -> None:
        self.push_screen(HelpScreen())

    # -- leaving a trace: quit, or a new trace from the picker --------------------------------

    def request_quit(self) -> None:
        source = self.source
        if source is not None and source.command_running():
            self.push_screen(ConfirmQuit(), lambda choice: self._then_export(choice, "quitting"))
        else:
            self._then_export("stop", "quitting")

    def request_new_trace(self) -> None:
        """Back to the picker: the current trace stops (asked first), its session is kept."""
        source = self.source
        if source is None or not source.capabilities.live:
            self.switch_screen(PickerScreen(self.lister, self.clock))
            return
        self.push_screen(ConfirmNewTrace(source.command_running()),
                         lambda choice: self._then_export(choice, "starting a new trace"))

    def _then_export(self, choice: str | None, leaving: str) -> None:
        """A session only in memory (the disk failed) is offered for export before it goes."""
        source = self.source
        if choice in (None, "cancel"):
            return
        if source is None or not source.journal_failed():
            self._leave(choice, leaving)
            return
        reason = source.journal_line() or "the session is kept in memory only"

        def exported(path: Path | None) -> None:
            if path is not None:  # None: the export was cancelled, and the app stays
                self._leave(choice, leaving)

        def chosen(answer: str | None) -> None:
            if answer == "discard":
                self._leave(choice, leaving)
            elif answer == "export":
                assert source is not None
                self.push_screen(ExportDialog(source.stored, default_export_path(source)),
                                 exported)

        self.push_screen(ExportBeforeLeaving(reason, leaving), chosen)

    def _leave(self, choice: str, leaving: str) -> None:
        if leaving == "quitting":
            self._stop_and_exit(command=choice)
        else:
            self._stop_trace(choice, then_exit=None)

    def _stop_and_exit(self, code: int = 0, command: str = "stop") -> None:
        if self._exiting:
            return
        self._exiting = True
        self._stop_trace(command, then_exit=code)

    def _stop_trace(self, command: str, then_exit: int | None) -> None:
        """Apply the choice for a launched command ("stop": its whole tree; "leave": all of
        it runs on), then stop tracing off the UI thread (the last snapshot and the journal
        take up to a few seconds)."""
        source = self.source
        if source is not None and source.capabilities.live:
            if command == "leave":
                source.leave_command()
                self.left_running += source.left_running()
            else:
                source.stop_command()
            self.notify("stopping the trace…", timeout=30)
        self._stop_worker(source, then_exit)

    @work(thread=True, exclusive=True, group="stop", exit_on_error=False)
    def _stop_worker(self, source: SnapshotSource | None, then_exit: int | None) -> None:
        try:
            if source is not None:
                source.stop()
        except UserError as err:  # one line; what was recorded is kept
            self.stop_errors.append(str(err))
        except Exception as err:  # a bug while stopping: still quit cleanly, say it once
            self.stop_errors.append(f"stopping failed ({describe_failure(err)}); details in "
                                    f"{save_details(err)}")
        self.call_from_thread(self._stopped, then_exit)

    def _stopped(self, then_exit: int | None) -> None:
        if then_exit is not None:
            self.exit(then_exit)
            return
        for error in self.stop_errors:
            self.notify(sanitize(error), severity="error", markup=False, timeout=10)
        self.source = None
        self.session = SessionView()
        self.switch_screen(PickerScreen(self.lister, self.clock))

    def stop_source(self) -> None:
        """After the app ended some other way (a crash): the trace still stops and its
        journal is closed, so the session is kept."""
        source = self.source
        if source is None or not source.capabilities.live or self._exiting:
            return
        self._exiting = True
        try:
            source.stop()
        except UserError as err:
            self.stop_errors.append(str(err))

    # -- a bug: one line, the details in a file --------------------------------------------

    def _handle_exception(self, error: Exception) -> None:
        """An exception nobody handled: Textual would print a long traceback over the
        person's terminal. Keep the details in a file and say it in one line instead
        (tests still see the exception: Textual keeps it)."""
        self.crash = (f"internal error ({type(error).__name__}: {error}); details in "
                      f"{save_details(error)}; please report it")
        super()._handle_exception(error)
        self._exit_renderables.clear()  # the traceback Textual would print at the end

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
        driver = self._driver
        if sig == signal.SIGHUP and isinstance(driver, TerminalDriver) and driver.hung_up():
            driver.terminal_gone()  # the terminal is gone: quitting must not wait on it
        self._stop_and_exit(128 + sig, command="stop")

    # -- terminal size ----------------------------------------------------------------------

    def on_resize(self, event: Resize) -> None:
        small = event.size.width < MIN_SIZE[0] or event.size.height < MIN_SIZE[1]
        if small and not self._too_small:
            self.notify(f"the terminal is {event.size.width}x{event.size.height}; sikte-tui "
                        f"needs {MIN_SIZE[0]}x{MIN_SIZE[1]}: enlarge the window",
                        severity="warning", timeout=8)
        self._too_small = small


def save_details(error: BaseException) -> str:
    """The traceback of a bug, in a new private file (for a report); its path."""
    with tempfile.NamedTemporaryFile("w", prefix="sikte-tui-error-", suffix=".txt",
                                     delete=False) as f:
        f.writelines(traceback.format_exception(error))
        return f.name
