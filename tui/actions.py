"""Every user action in one registry: it feeds the key bindings of each screen, the footer,
the help screen and the command palette, so they never disagree."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from textual.binding import Binding
from textual.command import Hit, Hits, Provider


@dataclass(frozen=True)
class Action:
    name: str  # the screen's action_<name> method
    keys: str  # comma-separated Textual key names
    label: str  # short, for the footer
    description: str  # for the help screen and the palette
    screens: tuple[str, ...]  # screen ids where it applies
    footer: bool = True


ACTIONS: tuple[Action, ...] = (
    # the live view
    Action("filter", "slash", "filter", "Filter the table (/): see the filter language in help",
           ("live", "connections")),
    Action("errors_only", "e", "errors", "Show only rows with errors (toggle)", ("live",)),
    Action("cycle_grouping", "g", "group", "Group by syscall, process, thread, process×syscall",
           ("live",)),
    Action("sort_next", "greater_than_sign,full_stop", "sort→", "Sort by the next column",
           ("live", "picker", "samples", "connections"), footer=False),
    Action("sort_prev", "less_than_sign,comma", "←sort", "Sort by the previous column",
           ("live", "picker", "samples", "connections"), footer=False),
    Action("sort_invert", "i", "invert", "Invert the sort order",
           ("live", "picker", "samples", "connections"), footer=False),
    Action("toggle_tree", "t", "tree", "Show or hide the process tree", ("live",)),
    Action("toggle_output", "o", "output", "Show or hide the command's output", ("live",)),
    Action("toggle_pause", "p", "pause", "Pause the tables (counting goes on)", ("live",)),
    Action("reset", "R", "reset", "Reset the counts to zero (saved session: show it whole)",
           ("live",)),
    Action("export", "x", "export", "Export the session as Parquet (a directory)", ("live",)),
    Action("choose_window", "w", "window", "Saved session: choose the stretch of time shown",
           ("live",), footer=False),
    Action("clear_filter", "escape", "clear", "Clear the filter", ("live",), footer=False),
    Action("drill", "enter", "details", "Details of the selected row", ("live",), footer=False),
    Action("samples", "s", "samples", "CPU stack samples: top functions, callers, flame view",
           ("live",)),
    Action("connections", "c", "connections", "TCP connections: the selected process's, "
           "outbound ones from a connect row, inbound from accept/accept4; else all",
           ("live",)),
    # the CPU samples views
    Action("neighbours", "enter", "callers", "Callers and callees of the selected function",
           ("samples",)),
    Action("flame", "f", "flame", "Flame (icicle) view of the samples", ("samples",)),
    Action("cycle_scope", "g", "group", "Count functions over all processes, per process, or "
           "per thread", ("samples", "flame")),
    Action("show_function", "enter", "show", "Show the selected caller or callee",
           ("callers",)),
    Action("zoom", "enter", "zoom", "Zoom into the selected frame", ("flame",)),
    Action("zoom_out", "escape", "back", "Zoom out one level; at the top, go back",
           ("flame",)),
    Action("select_parent", "up", "caller", "Select the caller of the selected frame",
           ("flame",), footer=False),
    Action("select_child", "down", "callee", "Select the selected frame's busiest callee",
           ("flame",), footer=False),
    Action("select_prev", "left", "previous", "Select the frame to the left", ("flame",),
           footer=False),
    Action("select_next", "right", "next", "Select the frame to the right", ("flame",),
           footer=False),
    # the connections view
    Action("failures_only", "e", "failures", "Show only failed connections (toggle "
           "result=failed)", ("connections",)),
    Action("toggle_summary", "g", "by remote", "Group by remote endpoint: connections, "
           "failures, open, average duration (toggle)", ("connections",)),
    Action("show_endpoint", "enter", "its connections", "By remote endpoint: list the "
           "selected endpoint's connections (Escape comes back)", ("connections",),
           footer=False),
    Action("all_connections", "a", "all", "Show every connection, not only the process's or "
           "direction's it was opened for", ("connections",)),
    # the process picker
    Action("filter", "slash", "filter", "Filter processes (fuzzy: name, command, user, pid)",
           ("picker",)),
    Action("toggle_select", "space", "select", "Select or unselect the process", ("picker",)),
    Action("trace", "enter", "trace", "Trace the selected processes and their children",
           ("picker",)),
    Action("run_command", "n", "new command", "Launch a command and trace it", ("picker",)),
    Action("refresh", "f5", "refresh", "Refresh the process list now", ("picker",),
           footer=False),
    # the saved sessions list
    Action("open_session", "enter", "open", "Open the selected session", ("sessions",)),
    Action("refresh", "f5", "refresh", "List the saved sessions again", ("sessions",)),
    # everywhere
    Action("back", "escape", "back", "Go back, or clear the filter",
           ("detail", "help", "samples", "callers", "connections"), footer=True),
    Action("help", "question_mark", "help", "Keys and the filter language",
           ("live", "picker", "detail", "sessions", "samples", "callers", "flame",
            "connections")),
    Action("quit", "q", "quit", "Quit (asks before stopping a running command)",
           ("live", "picker", "detail", "sessions", "samples", "callers", "flame",
            "connections")),
)


def bindings_for(screen: str) -> list[Binding]:
    return [
        Binding(a.keys, a.name, a.label, show=a.footer)
        for a in ACTIONS
        if screen in a.screens
    ]


def actions_for(screen: str) -> list[Action]:
    return [a for a in ACTIONS if screen in a.screens]


class ActionsProvider(Provider):
    """The command palette's list: every action of the current screen."""

    async def search(self, query: str) -> Hits:
        screen = self.screen
        screen_id = getattr(screen, "ACTION_SCREEN", "")
        matcher = self.matcher(query)
        for action in actions_for(screen_id):
            text = f"{action.label}: {action.description}"
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text),
                          partial(screen.run_action, action.name), help=f"key: {action.keys}")

    async def discover(self) -> Hits:
        screen = self.screen
        for action in actions_for(getattr(screen, "ACTION_SCREEN", "")):
            yield Hit(1.0, f"{action.label}: {action.description}",
                      partial(screen.run_action, action.name), help=f"key: {action.keys}")
