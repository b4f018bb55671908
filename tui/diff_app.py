"""The TUI of `sikte-tui diff A B`: a small app of its own over a computed Diff (no tracing
source, no root). cli/diff_cmd.py calls run_diff."""

from __future__ import annotations

import sys

from rich.text import Text
from textual.app import App, ComposeResult
from textual.containers import VerticalScroll
from textual.driver import Driver
from textual.widgets import Static

from tracing.boundary.display_text import sanitize
from tracing.model.diff import Diff
from tui.actions import SCREEN_TITLES, ActionsProvider
from tui.dialogs import HelpScreen, keys_table
from tui.diff import DiffScreen
from tui.terminal_driver import TerminalDriver

FILTER_HELP = ("/ keeps the rows whose name holds the typed text, in any case (a syscall, a "
               "command name, part of a path or an endpoint). Esc clears it.\n"
               "Δ is B minus A; the share after it is of A (×N from ten times A up); a row "
               "in one run only is marked A or B in the `only` column and dimmed, its other "
               "side shown as -.\n"
               "Rates are per second of each run's own duration, so runs of different "
               "lengths compare.")


class DiffHelp(HelpScreen):
    """The help of the diff screens: their keys and what the columns mean."""

    def compose(self) -> ComposeResult:
        screen = self.described_screen
        with VerticalScroll(id="help"):
            yield Static(Text(f"Keys of {SCREEN_TITLES.get(screen, 'this screen')}",
                              style="bold"))
            yield Static(keys_table(screen))
            yield Static(Text("\nThe table and its filter", style="bold"))
            yield Static(Text(FILTER_HELP))


class DiffApp(App[int]):
    CSS_PATH = "sikte.tcss"
    TITLE = "sikte-tui diff"
    COMMANDS = App.COMMANDS | {ActionsProvider}

    def __init__(self, diff: Diff) -> None:
        super().__init__()
        self.diff = diff
        self.crash: str | None = None

    def get_driver_class(self) -> type[Driver]:
        return TerminalDriver  # as the explorer's: survives losing its terminal

    def on_mount(self) -> None:
        self.push_screen(DiffScreen(self.diff))

    # What the screens ask of the app (tui/navigation.py).

    def action_show_help(self) -> None:
        self.push_screen(DiffHelp())

    def request_quit(self) -> None:
        self.exit(0)

    def _handle_exception(self, error: Exception) -> None:
        """A bug: one line once the terminal is back, the traceback in a file (as the
        explorer does), not a long traceback over the person's terminal."""
        from tui.app import save_details  # the explorer's app: only on this path

        self.crash = (f"internal error ({type(error).__name__}: {error}); details in "
                      f"{save_details(error)}; please report it")
        super()._handle_exception(error)
        self._exit_renderables.clear()


def run_diff(diff: Diff) -> int:
    """Show `diff` until the person quits: 0, or 70 (as cli.main for a bug) after a crash,
    said in one line on stderr."""
    app = DiffApp(diff)
    result = app.run()
    if app.crash is not None:
        print(f"sikte-tui: {sanitize(app.crash)}", file=sys.stderr)
        return 70
    return result if isinstance(result, int) else 0
