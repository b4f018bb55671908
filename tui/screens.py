"""What the drill-down screens share: Escape, ? and q, the sort keys, the filter keys, redraws
paced by their cost."""

from __future__ import annotations

import time

from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Input

from tui.filter_bar import FilterBar
from tui.navigation import navigator


class DrillDown(Screen[None]):
    """A screen pushed over the live view: Escape goes back, ? helps, q quits."""

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_help(self) -> None:
        navigator(self.app).action_show_help()

    def action_quit(self) -> None:
        navigator(self.app).request_quit()


class FilterKey:
    """A screen whose `/` (action_filter) opens a text input. Its binding is a priority one
    (tui/actions.py: so that keys typed right behind it reach the input); while an input has
    the focus the screen refuses it here (None: disabled), so the key goes on to the input
    and types "/".
    Enter in a FilterBar's input is one too (filter_done), so that keys typed right behind it
    reach the table; elsewhere it is refused and Enter is the table's."""

    focused: Widget | None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "filter" and isinstance(self.focused, Input):
            return None  # shown dimmed: the footer keeps its keys while one types
        if action == "filter_done" and self._typed_bar() is None:
            return False
        return super().check_action(action, parameters)  # type: ignore[misc, no-any-return]

    def action_filter_done(self) -> None:
        bar = self._typed_bar()
        if bar is not None:
            bar.submit()

    def _typed_bar(self) -> FilterBar[object] | None:
        """The filter bar whose input has the focus, if one has."""
        parent = self.focused.parent if self.focused is not None else None
        return parent if isinstance(parent, FilterBar) else None


class SortKeys:
    """`>` / `<` step the sort column, `i` inverts it: the screen gives _step_sort and
    _set_sort, and keeps sort_column and sort_reverse."""

    sort_column: str
    sort_reverse: bool

    def _step_sort(self, step: int) -> None:
        raise NotImplementedError

    def _set_sort(self, column: str, reverse: bool) -> None:
        raise NotImplementedError

    def action_sort_next(self) -> None:
        self._step_sort(1)

    def action_sort_prev(self) -> None:
        self._step_sort(-1)

    def action_sort_invert(self) -> None:
        self._set_sort(self.sort_column, not self.sort_reverse)


class ThrottledRedraw:
    """A view whose redraw costs what the session holds (every connection, every stack):
    after a redraw that took T seconds, the next one the session asks for waits 3T, so the
    UI keeps at least three quarters of its time for keys. Screens define
    `redraw_from_session`; SessionView calls `session_updated`."""

    _next_redraw = 0.0
    _deferred: Timer | None = None

    def redraw_from_session(self) -> None:
        raise NotImplementedError

    def session_updated(self) -> None:
        wait = self._next_redraw - time.monotonic()
        if wait <= 0:
            self._timed_redraw()
        elif self._deferred is None:
            self._deferred = self.set_timer(wait, self._run_deferred)  # type: ignore[attr-defined]

    def _run_deferred(self) -> None:
        self._deferred = None
        self._timed_redraw()

    def _timed_redraw(self) -> None:
        started = time.monotonic()
        self.redraw_from_session()
        done = time.monotonic()
        self._next_redraw = done + 3 * (done - started)
