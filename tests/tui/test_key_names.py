"""Keys shown as people type them, in the help screen and the command palette (one
rendering: tui.actions.key_display), and `?` listing the current screen's keys first."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from textual.command import CommandList, CommandPalette
from textual.widgets import Static

from tui.actions import ACTIONS, actions_for, key_display
from tui.app import SikteApp
from tui.dialogs import HelpScreen
from tui.live import LiveScreen
from tui.picker import PickerScreen
from tui.table import KeyedTable

from .conftest import until

SIZE = (160, 48)

# The named keys of the registry as the help screen and the palette show them; a letter is
# itself.
NAMED = {
    "slash": "/", "greater_than_sign": ">", "full_stop": ".", "less_than_sign": "<",
    "comma": ",", "escape": "Esc", "enter": "Enter", "up": "↑", "down": "↓", "left": "←",
    "right": "→", "space": "Space", "f5": "F5", "question_mark": "?", "tab": "Tab",
    "shift+tab": "Shift+Tab",
}  # fmt: skip


def test_every_action_key_is_shown_as_typed() -> None:
    for action in ACTIONS:
        typed = [key if len(key) == 1 else NAMED[key] for key in action.keys.split(",")]
        assert key_display(action.keys) == " or ".join(typed), action


@pytest.mark.parametrize(("keys", "shown"), [
    ("ctrl+p", "Ctrl+P"), ("shift+tab", "Shift+Tab"), ("ctrl+c,q", "Ctrl+C or q"),
    ("f12", "F12"), ("pageup", "PgUp"), ("full_stop", "."),
])
def test_key_display(keys: str, shown: str) -> None:
    assert key_display(keys) == shown


def text_of(static: Static) -> list[str]:
    """The lines a Static shows (a rich Table here), without trailing spaces."""
    console = Console(file=io.StringIO(), width=150, record=True)
    console.print(static.content)
    return [line.rstrip() for line in console.export_text().splitlines()]


def key_column(lines: list[str]) -> list[str]:
    """The right-justified key column: what comes before the two-space gap."""
    return [line.strip().split("  ")[0] for line in lines]


async def help_of(app: SikteApp, pilot) -> tuple[list[str], list[str], str]:
    await pilot.press("question_mark")
    screen = await until(pilot, lambda: isinstance(app.screen, HelpScreen) and app.screen)
    here = text_of(screen.query_one("#help-here", Static))
    others = text_of(screen.query_one("#help-others", Static))
    title = str(screen.query_one("#help-here-title", Static).content)
    return here, others, title


async def test_help_lists_the_live_views_keys_first(replay_app: SikteApp):
    async with replay_app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(replay_app.screen, LiveScreen)
                    and replay_app.screen.query_one(KeyedTable).row_count > 0)
        here, others, title = await help_of(replay_app, pilot)
        assert title == "Keys of the live view"
        live = actions_for("live")
        assert key_column(here) == [key_display(a.keys) for a in live] + ["Ctrl+P"]
        assert here[0] == "     /  Filter the table (/): see the filter language in help"
        assert "> or .  Sort by the next column" in here
        assert here[-1] == "Ctrl+P  Command palette: every action, searchable"
        # The other screens' keys come after, each once, with where they apply.
        # Keys are right-aligned to the longest ("p or Space", the event log's pause).
        space = next(line.lstrip() for line in others if line.lstrip().startswith("Space"))
        assert space.split("  ")[0:2] == ["Space", "Select or unselect the process"]
        assert space.endswith("  picker")
        described = {a.description for a in live}
        assert not [line for line in others if any(d in line for d in described)]


async def test_help_lists_the_pickers_keys_first(picker_app: SikteApp):
    async with picker_app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(picker_app.screen, PickerScreen))
        here, others, title = await help_of(picker_app, pilot)
        assert title == "Keys of the process picker"
        assert key_column(here) == [key_display(a.keys) for a in actions_for("picker")] + [
            "Ctrl+P"]
        assert key_column(here)[:3] == ["> or .", "< or ,", "i"]
        assert any(line.strip().startswith("e  Show only rows with errors") for line in others)


async def test_the_palette_shows_keys_as_typed(replay_app: SikteApp):
    async with replay_app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(replay_app.screen, LiveScreen)
                    and replay_app.screen.query_one(KeyedTable).row_count > 0)
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(replay_app.screen, CommandPalette))
        await pilot.press(*"sort")
        options = replay_app.screen.query_one(CommandList)
        await until(pilot, lambda: options.option_count >= 3)
        prompts = [str(options.get_option_at_index(i).prompt)
                   for i in range(options.option_count)]
        assert any("sort→: Sort by the next column" in p and "key: > or ." in p
                   for p in prompts), prompts
        assert any("←sort: Sort by the previous column" in p and "key: < or ," in p
                   for p in prompts), prompts
        assert not any("_sign" in p or "full_stop" in p for p in prompts), prompts
