"""The live view's window chooser (`w` during a live trace): the tables show the last 5 s,
30 s, 1 min or 5 min, or everything since the start. One key each, or the arrows and Enter;
the choice applies at once. A saved session's `w` opens WindowDialog instead (any stretch)."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from tracing.model.live_window import SPANS_S, span_label


@dataclass(frozen=True, slots=True)
class WindowChoice:
    """What was chosen: the span in seconds, None for since the start."""

    span_s: float | None


# (key, span): the keys shown beside each choice; "a" (all) is a second key for since start.
CHOICES: tuple[tuple[str, float | None], ...] = (
    *((str(i), span) for i, span in enumerate(SPANS_S, start=1)),
    ("0", None),
)


class WindowMenu(ModalScreen[WindowChoice | None]):
    """Returns the chosen window, or None when cancelled (Esc, q)."""

    DEFAULT_CSS = """
    WindowMenu {
        align: center middle;
    }
    #window-menu {
        width: 44;
        height: auto;
        border: round $accent;
        background: $surface;
        padding: 0 1;
    }
    #window-menu OptionList {
        height: auto;
        border: none;
        padding: 0;
    }
    #window-menu-hint {
        color: $text-muted;
    }
    """

    BINDINGS = [
        *(Binding(key, f"pick({index})", show=False) for index, (key, _) in enumerate(CHOICES)),
        Binding("a", f"pick({len(CHOICES) - 1})", show=False),
        Binding("escape,q", "cancel", "cancel", show=False),
    ]

    def __init__(self, current: float | None) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="window-menu"):
            yield Static(Text("Window: the tables show", style="bold"))
            yield OptionList(*(self._option(key, span) for key, span in CHOICES),
                             id="window-options")
            yield Static("1-4, 0 or a, or ↑↓ Enter · Esc cancels", id="window-menu-hint")

    def _option(self, key: str, span: float | None) -> Option:
        text = Text()
        text.append(f"{key if span is not None else '0/a':<3}  ", style="bold cyan")
        text.append(span_label(span))
        if span is None:
            text.append("  (the default)", style="dim")
        if span == self.current:
            text.append("  ◂ now", style="bold")
        return Option(text, id=str(span))

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        spans = [span for _, span in CHOICES]
        options.highlighted = (spans.index(self.current) if self.current in spans
                               else len(CHOICES) - 1)
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_pick(event.option_index)

    def action_pick(self, index: int) -> None:
        self.dismiss(WindowChoice(CHOICES[index][1]))

    def action_cancel(self) -> None:
        self.dismiss(None)
