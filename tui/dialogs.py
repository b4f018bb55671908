"""Modal dialogs: the help screen, quitting with a command still running, and launching a
command from the picker."""

from __future__ import annotations

import shlex

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static, Switch

from tracing.errors import UserError
from tracing.model.timing import Timing
from tracing.query.syscall_filter import HELP_TEXT
from tracing.system.targets import resolve_command
from tui.actions import SCREEN_TITLES, bindings_for, help_sections, key_display, key_lines
from tui.text import error_line
from tui.timing_choice import TimingChoice
from tui.widgets import DataInput


def help_tables(screen: str) -> tuple[Table, Table]:
    """The keys of `screen` (and the palette's), then every other screen's with where it
    applies: what `?` shows, first what can be pressed now."""
    _here, others = help_sections(screen)
    rest = _keys_table()
    rest.add_column(style="dim")
    for a in others:
        rest.add_row(key_display(a.keys), a.description, ", ".join(a.screens))
    return keys_table(screen), rest


def keys_table(screen: str) -> Table:
    """The keys of `screen`, then the command palette's: what can be pressed there, as every
    help screen lists them."""
    table = _keys_table()
    for keys, description in key_lines(screen):
        table.add_row(keys, description)
    return table


def _keys_table() -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", justify="right")
    table.add_column()
    return table


class HelpScreen(ModalScreen[None]):
    ACTION_SCREEN = "help"
    BINDINGS = [*bindings_for("help"), ("q", "back", "close")]

    def compose(self) -> ComposeResult:
        screen = self.described_screen
        here, others = help_tables(screen)
        with VerticalScroll(id="help"):
            yield Static(Text(f"Keys of {SCREEN_TITLES.get(screen, 'this screen')}",
                              style="bold"), id="help-here-title")
            yield Static(here, id="help-here")
            yield Static(Text("\nKeys of the other screens", style="bold"))
            yield Static(others, id="help-others")
            yield Static(Text("\nFilter language (/)", style="bold"))
            yield Static(Text(HELP_TEXT))

    @property
    def described_screen(self) -> str:
        """The screen `?` was pressed on: the top one under this."""
        below = [s for s in self.app.screen_stack if s is not self]
        return getattr(below[-1], "ACTION_SCREEN", "") if below else ""

    def action_back(self) -> None:
        self.dismiss()


class ConfirmQuit(ModalScreen[str]):
    """Returns "stop" (stop the command, quit), "leave" (quit, it runs on) or "cancel"."""

    BINDINGS = [("y", "choose('stop')", "stop it"), ("n", "choose('leave')", "leave it"),
                ("escape", "choose('cancel')", "cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("The launched command is still running. Stop it before quitting?")
            with Horizontal(classes="buttons"):
                yield Button("Stop it and quit (y)", id="stop", variant="error")
                yield Button("Leave it running (n)", id="leave")
                yield Button("Cancel (Esc)", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id)

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)


class RunCommand(ModalScreen[tuple[tuple[str, ...], bool, Timing] | None]):
    """Ask for a command line (split like a shell, never run by one), whether to follow
    its children and how to time its calls. Returns (argv, follow, timing) or None."""

    BINDINGS = [("escape", "cancel", "cancel")]

    def __init__(self, timing: Timing = Timing.EXACT) -> None:
        super().__init__()
        self._timing = timing  # preselected: the command line's --timing

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Command to launch and trace:")
            yield DataInput(placeholder="e.g. curl -s https://example.org", id="command")
            with Horizontal(classes="switch-row"):
                yield Switch(value=True, id="follow")
                yield Label("follow children")
            yield TimingChoice(self._timing, id="timing-choice")
            yield Static("", id="command-error")
            with Horizontal(classes="buttons"):
                yield Button("Trace (Enter)", id="run", variant="primary")
                yield Button("Cancel (Esc)", id="cancel")

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "run":
            self._submit()
        else:
            self.dismiss(None)

    def _submit(self) -> None:
        text = self.query_one("#command", Input).value
        try:
            argv = tuple(shlex.split(text))
            resolve_command(argv)
        except ValueError as err:
            self._error(f"cannot split the command line: {err}")
            return
        except UserError as err:
            self._error(str(err))
            return
        self.dismiss((argv, self.query_one("#follow", Switch).value,
                      self.query_one(TimingChoice).value))

    def _error(self, message: str) -> None:
        self.query_one("#command-error", Static).update(error_line(message))

    def action_cancel(self) -> None:
        self.dismiss(None)
