"""The filter bar under a table (the live view's and the connections view's): the input, the
line that says what is wrong with the typed text, and the rules both views follow.

Each edit is parsed at once (parsing is bounded: tracing.query.terms); a valid filter is
handed to the screen at once, and the screen redraws with it once typing pauses
(FILTER_DEBOUNCE_S), since a redraw visits every row the session holds. Enter redraws now
and hands the keys back to the table; Escape clears. A text that does not parse keeps the
last valid filter and says why, inline; so does an edit the input refuses as too long.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from textual import events, on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.timer import Timer
from textual.widgets import Input, Static

from tracing.query.terms import FilterError
from tui.filter_input import FILTER_DEBOUNCE_S, FilterInput
from tui.text import error_line

F = TypeVar("F")


class FilterBar(Vertical, Generic[F]):
    """A FilterInput (id `input_id`) over its message line (id `message_id`). The screen
    gives what to do: `keep` a newly parsed filter, `redraw` with it, `leave` the bar
    (Enter: focus the table), `clear` it (Escape)."""

    # The margin is the bar's, not the input's: in a vertical layout a child's side margin
    # also narrows the screen's 1fr-wide siblings (the tables), and the screens' layouts are
    # drawn with that.
    DEFAULT_CSS = """
    FilterBar { height: auto; margin: 0 1; }
    FilterBar > FilterInput { height: 1; }
    FilterBar > Static { display: none; color: $error; }
    """

    def __init__(self, parse: Callable[[str], F], *, placeholder: str, input_id: str,
                 message_id: str, keep: Callable[[F], None], redraw: Callable[[], None],
                 leave: Callable[[], None], clear: Callable[[], None]) -> None:
        super().__init__()
        self._parse = parse
        self._placeholder, self._input_id, self._message_id = placeholder, input_id, message_id
        self._keep, self._redraw, self._leave, self._clear = keep, redraw, leave, clear
        self._kept: str | None = None  # the text of the last filter handed to the screen
        self._typing: Timer | None = None  # the redraw waiting for typing to pause

    def compose(self) -> ComposeResult:
        yield FilterInput(placeholder=self._placeholder, id=self._input_id, compact=True)
        yield Static("", id=self._message_id)

    @property
    def input(self) -> FilterInput:
        return self.query_one(f"#{self._input_id}", FilterInput)

    def open(self) -> None:
        # Now, not later: keys typed right after "/" belong to the filter, not to bindings.
        self.screen.set_focus(self.input)

    def set_text(self, text: str) -> None:
        """Put `text` in the bar and apply it now: the next key may act on the new rows."""
        if self.input.value == text:
            return
        self.input.value = text  # its Input.Changed then finds the filter already kept
        self._take(text, self._redraw)

    def show_message(self, text: str) -> None:
        """An error about the typed filter (which it quotes), or "" to hide the line."""
        message = self.query_one(f"#{self._message_id}", Static)
        message.update(error_line(text) if text else "")
        message.display = bool(text)

    def _take(self, text: str, redraw: Callable[[], None]) -> None:
        try:
            parsed = self._parse(text)
        except FilterError as err:
            self.show_message(err.message)  # the last valid filter holds
            return
        self.show_message("")
        if text != self._kept:
            self._kept = text
            self._keep(parsed)
            redraw()

    def _redraw_when_typing_pauses(self) -> None:
        if self._typing is not None:
            self._typing.stop()
        self._typing = self.set_timer(FILTER_DEBOUNCE_S, self._redraw_typed)

    def _redraw_typed(self) -> None:
        self._typing = None
        if self._pruning or not self.is_attached:
            return  # the app is closing: the screen's other widgets may be gone already
        self._redraw()

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        event.stop()
        self._take(event.value, self._redraw_when_typing_pauses)

    @on(FilterInput.TooLong)
    def _too_long(self, event: FilterInput.TooLong) -> None:
        event.stop()
        self.show_message(event.line)  # the text is kept, the last filter too

    def submit(self) -> None:
        """Enter: draw now (the next key acts on the rows) and hand the keys to the table."""
        if self._typing is not None:
            self._typing.stop()
            self._redraw_typed()
        self._leave()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.submit()

    def forget(self) -> None:
        """The screen dropped its filter: the next text is news, whatever it is."""
        self._kept = None

    def on_key(self, event: events.Key) -> None:
        if event.key == "escape" and self.input.has_focus:
            event.stop()
            self._clear()
