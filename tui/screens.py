"""What the drill-down screens share: Escape, ? and q, and the sort keys."""

from __future__ import annotations

from textual.screen import Screen


class DrillDown(Screen):
    """A screen pushed over the live view: Escape goes back, ? helps, q quits."""

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_help(self) -> None:
        self.app.action_show_help()  # type: ignore[attr-defined]

    def action_quit(self) -> None:
        self.app.request_quit()  # type: ignore[attr-defined]


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
