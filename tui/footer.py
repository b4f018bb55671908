"""The key footer of every screen: at any width it shows what matters most.

Textual's Footer shows every binding in order and cuts the line where the terminal ends, so
at 80 columns `?` and `q` fell off. KeyFooter keeps the screen's essential actions (declared
in tui/actions.py, `essential=True`) and adds the others, in their order, only while the
whole line fits; the command palette key comes after the essential ones. The help screen
(`?`) lists every key.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.events import Resize
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

from tui.actions import actions_for

PALETTE_WIDTH = 13  # "▏ ^p palette " docked at the right


@dataclass(frozen=True)
class FooterItem:
    binding: Binding
    key_display: str
    enabled: bool
    tooltip: str
    essential: bool

    def width(self, compact: bool) -> int:
        # FooterKey: padding around the key, a space, the label, margin (see its CSS).
        return len(self.key_display) + len(self.binding.description) + (2 if compact else 3)


def choose(items: list[FooterItem], available: int) -> tuple[list[FooterItem], bool, bool]:
    """(items shown, compact, palette shown) for a footer `available` cells wide: every
    item, roomy, if it fits; else compact, the essential items, the palette key if it
    still fits, then the others in order while they fit."""
    if sum(i.width(False) for i in items) + PALETTE_WIDTH <= available:
        return items, False, True
    shown = {id(i) for i in items if i.essential}
    used = sum(i.width(True) for i in items if i.essential)
    palette = used + PALETTE_WIDTH <= available
    used += PALETTE_WIDTH if palette else 0
    for item in items:
        if id(item) not in shown and used + item.width(True) <= available:
            shown.add(id(item))
            used += item.width(True)
        elif id(item) not in shown:
            break  # keep the order: nothing after a key that did not fit
    return [i for i in items if id(i) in shown], True, palette


class KeyFooter(Footer):
    """A Footer that drops the less important keys rather than cutting the line."""

    def __init__(self) -> None:
        super().__init__()
        self._fitted_width = -1

    def _items(self) -> Iterator[FooterItem]:
        screen = self.screen
        essential = {a.name for a in actions_for(getattr(screen, "ACTION_SCREEN", ""))
                     if getattr(a, "essential", False)}
        seen: set[str] = set()
        for _node, binding, enabled, tooltip in screen.active_bindings.values():
            if not binding.show or binding.action in seen:
                continue
            seen.add(binding.action)
            yield FooterItem(binding, self.app.get_key_display(binding), enabled,
                             tooltip or binding.description, binding.action in essential)

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        self._fitted_width = self.size.width
        items, compact, palette = choose(list(self._items()), self.size.width or 80)
        self.set_reactive(Footer.compact, compact)
        self.set_class(compact, "-compact")
        for item in items:
            yield FooterKey(item.binding.key, item.key_display, item.binding.description,
                            item.binding.action, disabled=not item.enabled,
                            tooltip=item.tooltip).data_bind(compact=Footer.compact)
        if palette and self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            yield from self._palette_key()

    def _palette_key(self) -> ComposeResult:
        found = self.screen.active_bindings.get(self.app.COMMAND_PALETTE_BINDING)
        if found is None:
            return
        _node, binding, enabled, _tooltip = found
        yield FooterKey(binding.key, self.app.get_key_display(binding), binding.description,
                        binding.action, classes="-command-palette", disabled=not enabled,
                        tooltip=binding.tooltip or binding.description)

    def on_resize(self, event: Resize) -> None:
        # What fits depends on the width: compose again when it changes.
        if event.size.width != self._fitted_width and self._bindings_ready:
            self.call_after_refresh(self.recompose)
