"""The filter bars' input: bounded in length, and saying so when it refuses text.

A terminal without bracketed paste delivers a paste as one key per character, and every key
makes Input re-render and the screen re-parse its whole text: a 33,000-character paste froze
the view for 100 s. With a bound, each key costs at most MAX_FILTER_CHARS of work; an edit
that would pass it is refused whole (Input's max_length) and the screen is told once, so it
can show one line instead of a silently dropped paste.
"""

from __future__ import annotations

from textual.message import Message

from tracing.query.terms import MAX_FILTER_CHARS
from tui.widgets import DataInput

# A filter typed key by key is applied once typing pauses this long (Enter applies it now):
# applying it redraws from every row the session holds.
FILTER_DEBOUNCE_S = 0.12


def too_long_line(limit: int, inserted: int) -> str:
    """The one line shown for a refused edit of `inserted` characters."""
    if inserted > 1:
        return (f"a filter holds at most {limit:,} characters: the {inserted:,} pasted were "
                f"not added")
    return f"a filter holds at most {limit:,} characters: delete some to type more"


class FilterInput(DataInput):
    """A DataInput of at most `max_length` characters (MAX_FILTER_CHARS by default) that
    posts TooLong when it refuses an edit: once per run of refused edits, so a paste typed
    key by key makes one message, not one per key."""

    class TooLong(Message):
        def __init__(self, filter_input: FilterInput, line: str) -> None:
            super().__init__()
            self.filter_input = filter_input
            self.line = line  # what to show: what was refused and why

        @property
        def control(self) -> FilterInput:
            return self.filter_input

    def __init__(self, *args: object, max_length: int = MAX_FILTER_CHARS,
                 **kwargs: object) -> None:
        super().__init__(*args, max_length=max_length, **kwargs)  # type: ignore[arg-type]
        self._inserting = 0  # characters of the edit under way
        self._refusing = False  # the last edit was refused, and it was said

    def replace(self, text: str, start: int, end: int) -> None:
        self._inserting = len(text)
        super().replace(text, start, end)

    def restricted(self) -> None:
        # Input calls this instead of applying an edit past max_length (it rings the bell).
        if not self._refusing:
            self._refusing = True
            self.post_message(self.TooLong(self, too_long_line(self.max_length or 0,
                                                               self._inserting)))

    def watch_value(self, _value: str) -> None:
        self._refusing = False  # an edit went in: the next refusal is news again
