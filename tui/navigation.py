"""What the screens ask of the app (tui.app.SikteApp): the ways from one screen to another.

The app imports the screens, so a screen cannot import the app's class (an import cycle);
it names the methods it calls here instead, so a type checker sees the calls.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, cast

from textual.app import App

from tracing.model.timing import Timing


class Navigator(Protocol):
    def start_trace(self, pids: tuple[int, ...] = (), command: tuple[str, ...] = (),
                    follow: bool = True, timing: Timing | None = None) -> None: ...
    def open_stored(self, path: Path) -> None: ...
    def open_detail(self, syscall: str, pid: int | None, abi: int | None = None) -> None: ...
    def action_show_help(self) -> None: ...
    def request_quit(self) -> None: ...
    def request_new_trace(self) -> None: ...


def navigator(app: App[Any]) -> Navigator:
    """The running app, as the screens use it (always a SikteApp)."""
    return cast(Navigator, app)
