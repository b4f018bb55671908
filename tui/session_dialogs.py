"""Dialogs for the session: export to Parquet (x) and the stretch of a saved session shown (w),
with the timeline bar they share with the live view."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, ProgressBar, Static, Switch

from tracing.errors import UserError
from tracing.model.units import parse_offset
from tracing.session.stored import StoredSession
from tracing.session.window import Window, activity, whole
from tui.text import data, error_line

BARS = " ▁▂▃▄▅▆▇█"


def format_offset(seconds: float) -> str:
    """Seconds from the session's start as m:ss.s (the form the window dialog reads)."""
    minutes, rest = divmod(max(seconds, 0.0), 60)
    return f"{int(minutes)}:{rest:04.1f}"


def timeline_text(counts: list[int], selected: tuple[int, int] | None) -> Text:
    """A bar per slice of the session; slices inside the selection are bright."""
    top = max(counts, default=0) or 1
    text = Text()
    for i, count in enumerate(counts):
        level = 0 if not count else max(1, round(8 * count / top))
        inside = selected is None or selected[0] <= i < selected[1]
        text.append(BARS[level] if level else "▁",
                    style="bold cyan" if inside else "grey37")
    return text


def window_slices(session: StoredSession, window: Window, width: int) -> tuple[int, int]:
    full = whole(session)
    span = max(full.end_ns - full.start_ns, 1)
    first = int((window.start_ns - full.start_ns) * width // span)
    last = -(-(window.end_ns - full.start_ns) * width // span)  # ceiling
    return first, max(last, first + 1)


class TimelineBar(Static):
    """The saved session's activity over time, the shown stretch highlighted."""

    def show(self, session: StoredSession, window: Window) -> None:
        width = max(self.size.width - 34, 10)
        full = whole(session)
        bar = timeline_text(activity(session, width), window_slices(session, window, width))
        offset = (window.start_ns - full.start_ns) / 1e9
        label = Text(f" {format_offset(offset)}–{format_offset(offset + window.seconds)} "
                     f"of {format_offset(full.seconds)} ", style="bold")
        self.update(Text.assemble(bar, label, ("w: choose", "dim")))


class WindowDialog(ModalScreen[Window | None]):
    """Choose the stretch of a saved session to show: from and to, in seconds (or m:ss)
    from its start. Returns the Window, or None."""

    BINDINGS = [("escape", "cancel", "cancel"), ("a", "whole", "whole session")]

    def __init__(self, session: StoredSession, window: Window) -> None:
        super().__init__()
        self.session = session
        self.window = window

    def compose(self) -> ComposeResult:
        full = whole(self.session)
        start = (self.window.start_ns - full.start_ns) / 1e9
        with Vertical(id="dialog"):
            yield Label(f"Show a stretch of the session (0:00.0 to "
                        f"{format_offset(full.seconds)}): seconds or m:ss")
            yield Static(id="window-timeline")
            with Horizontal(id="window-fields"):
                yield Label("from", classes="field-label")
                yield Input(format_offset(start), id="from")
                yield Label("to", classes="field-label")
                yield Input(format_offset(start + self.window.seconds), id="to")
            yield Static("", id="window-error")
            with Horizontal(classes="buttons"):
                yield Button("Show (Enter)", id="apply", variant="primary")
                yield Button("Whole session (a)", id="whole")
                yield Button("Cancel (Esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#window-timeline", Static).update(
            timeline_text(activity(self.session, 60),
                          window_slices(self.session, self.window, 60)))
        self.query_one("#from", Input).focus()

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        {"apply": self._submit, "whole": self.action_whole,
         "cancel": self.action_cancel}[event.button.id or "cancel"]()

    def _submit(self) -> None:
        full = whole(self.session)
        try:
            start = parse_offset(self.query_one("#from", Input).value)
            end = parse_offset(self.query_one("#to", Input).value)
        except ValueError:
            self._error("write times as seconds (12.5), m:ss (1:30) or with a unit (250ms)")
            return
        if not 0 <= start < end:
            self._error("'from' must be at least 0 and before 'to'")
            return
        if start > full.seconds:
            self._error(f"the session lasts {format_offset(full.seconds)}; start before that")
            return
        # Times are shown to a tenth of a second: within half of one of the end is the end.
        end_ns = full.end_ns if end >= full.seconds - 0.05 else full.start_ns + int(end * 1e9)
        self.dismiss(Window(full.start_ns + int(start * 1e9), min(full.end_ns, end_ns)))

    def _error(self, message: str) -> None:
        self.query_one("#window-error", Static).update(error_line(message))

    def action_whole(self) -> None:
        self.dismiss(whole(self.session))

    def action_cancel(self) -> None:
        self.dismiss(None)


# The export's errors are worded for the command line; here the path and 'replace' are fields.
CLI_WORDS = (("choose another --output or add --force",
              "choose another path or switch on 'replace'"),
             ("refusing to replace it with --force", "refusing to replace it"),
             ("choose another --output", "choose another path"),
             ("--output", "the path"), ("--force", "'replace'"))


def dialog_wording(message: str) -> str:
    for cli, dialog in CLI_WORDS:
        message = message.replace(cli, dialog)
    return message


class ExportProgress(Message):
    def __init__(self, fraction: float, what: str) -> None:
        super().__init__()
        self.fraction = fraction
        self.what = what


class ExportDone(Message):
    def __init__(self, path: Path | None, error: str | None) -> None:
        super().__init__()
        self.path = path
        self.error = error


class ExportDialog(ModalScreen[Path | None]):
    """Export the session to a Parquet directory, with a progress bar; returns the path."""

    BINDINGS = [("escape", "cancel", "cancel")]

    def __init__(self, load: Callable[[], StoredSession | None], default: Path) -> None:
        super().__init__()
        self._load = load
        self._default = default
        self._busy = False

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Export the session as Parquet (a directory):")
            yield Input(str(self._default), id="export-path")
            with Horizontal(classes="switch-row"):
                yield Switch(value=False, id="export-force")
                yield Label("replace it if it exists")
            yield ProgressBar(total=1.0, show_eta=False, id="export-progress")
            yield Static("", id="export-status")
            with Horizontal(classes="buttons"):
                yield Button("Export (Enter)", id="export", variant="primary")
                yield Button("Cancel (Esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#export-progress").display = False
        self.query_one("#export-path", Input).focus()

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "export":
            self._submit()
        else:
            self.action_cancel()

    def _submit(self) -> None:
        if self._busy:
            return
        text = self.query_one("#export-path", Input).value.strip()
        if not text:
            self._status("✗ give a directory to write")
            return
        path = Path(text).expanduser()
        if os.path.lexists(path) and not self.query_one("#export-force", Switch).value:
            self._status(f"✗ {path} exists: choose another path or switch on 'replace'")
            return
        self._busy = True
        self.query_one("#export-progress").display = True
        self._status("reading the session…")
        self._export(path, self.query_one("#export-force", Switch).value)

    @work(thread=True, exclusive=True, group="export")
    def _export(self, path: Path, force: bool) -> None:
        from tracing.session.export import export_parquet

        try:
            session = self._load()
            if session is None:
                raise UserError("this view has no session to export (a replay)")
            export_parquet(session, path, force=force, progress=self._report_progress)
        except UserError as err:
            self.post_message(ExportDone(None, dialog_wording(str(err))))
            return
        self.post_message(ExportDone(path, None))

    def _report_progress(self, fraction: float, what: str) -> None:
        """From the export thread: only a message crosses to the UI."""
        self.post_message(ExportProgress(fraction, what))

    @on(ExportProgress)
    def _progress(self, message: ExportProgress) -> None:
        self.query_one("#export-progress", ProgressBar).update(progress=message.fraction)
        self._status(f"writing {message.what}")

    @on(ExportDone)
    def _done(self, message: ExportDone) -> None:
        self._busy = False
        if message.error is not None:
            self._status(f"✗ {message.error}")
            return
        self.dismiss(message.path)

    def _status(self, text: str) -> None:
        # It quotes a typed path or an error: data, never markup (tui.text).
        self.query_one("#export-status", Static).update(data(text))

    def action_cancel(self) -> None:
        if not self._busy:  # an export in flight finishes: a half-written one never lands
            self.dismiss(None)


class ExportBeforeLeaving(ModalScreen[str]):
    """The journal could not be written: the session is only in memory, and quitting (or a
    new trace) would lose it. Returns "export", "discard" or "cancel"."""

    BINDINGS = [("x", "choose('export')", "export"), ("d", "choose('discard')", "discard"),
                ("escape", "choose('cancel')", "cancel")]

    def __init__(self, reason: str, leaving: str = "quitting") -> None:
        super().__init__()
        self.reason = reason
        self.leaving = leaving

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(data(f"{self.reason}. It is lost when sikte-tui ends: export it "
                             f"before {self.leaving}?"))
            with Horizontal(classes="buttons"):
                yield Button("Export it (x)", id="export", variant="primary")
                yield Button("Lose it (d)", id="discard", variant="error")
                yield Button("Cancel (Esc)", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id or "cancel")

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)


class ConfirmNewTrace(ModalScreen[str]):
    """Before going back to the picker: the current trace stops (its session is kept).
    Returns "stop", "leave" (stop tracing, the launched command runs on) or "cancel"."""

    BINDINGS = [("y", "choose('stop')", "stop"), ("n", "choose('leave')", "leave it"),
                ("escape", "choose('cancel')", "cancel")]

    def __init__(self, command_running: bool) -> None:
        super().__init__()
        self.command_running = command_running

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            if self.command_running:
                yield Label("Stop this trace and pick what to trace next? The launched "
                            "command is still running: stop it too, or leave it running?")
            else:
                yield Label("Stop this trace and pick what to trace next? Its session is "
                            "kept.")
            with Horizontal(classes="buttons"):
                yield Button("Stop it all (y)" if self.command_running else "Stop it (y)",
                             id="stop", variant="error")
                if self.command_running:
                    yield Button("Leave the command running (n)", id="leave")
                yield Button("Cancel (Esc)", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id or "cancel")

    def action_choose(self, choice: str) -> None:
        if choice == "leave" and not self.command_running:
            choice = "cancel"  # nothing to leave running: n is a no
        self.dismiss(choice)
