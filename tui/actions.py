"""Every user action in one registry: it feeds the key bindings of each screen, the footer,
the help screen and the command palette, so they never disagree."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

from textual.binding import Binding, BindingType
from textual.command import Hit, Hits, Provider


@dataclass(frozen=True)
class Action:
    name: str  # the screen's action_<name> method
    keys: str  # comma-separated Textual key names
    label: str  # short, for the footer
    description: str  # for the help screen and the palette
    screens: tuple[str, ...]  # screen ids where it applies
    footer: bool = True
    essential: bool = False  # kept in the footer at any width (tui/footer.py)
    # Opens a text input: checked as the key arrives, before the keys behind it are handed
    # on (Textual hands a burst of keys to the focus of the moment; without this, what is
    # typed right after "/" went to the table). The screen refuses it while an input has
    # the focus (tui/screens.py FilterKey), so "/" is then typed.
    priority: bool = False


ACTIONS: tuple[Action, ...] = (
    # the live view
    Action("filter", "slash", "filter", "Filter the table (/): see the filter language in help",
           ("live", "connections"), essential=True, priority=True),
    Action("errors_only", "e", "errors", "Show only rows with errors (toggle)", ("live",),
           essential=True),
    Action("cycle_grouping", "g", "group", "Group by syscall, process, thread, process×syscall",
           ("live",), essential=True),
    Action("drill", "enter", "details", "Details of the selected row", ("live",),
           essential=True),
    Action("sort_next", "greater_than_sign,full_stop", "sort→", "Sort by the next column",
           ("live", "picker", "samples", "connections", "files", "inflight", "diff"),
           footer=False),
    Action("sort_prev", "less_than_sign,comma", "←sort", "Sort by the previous column",
           ("live", "picker", "samples", "connections", "files", "inflight", "diff"),
           footer=False),
    Action("sort_invert", "i", "invert", "Invert the sort order",
           ("live", "picker", "samples", "connections", "files", "inflight", "diff"),
           footer=False),
    Action("toggle_tree", "t", "tree", "Show or hide the process tree", ("live",)),
    Action("toggle_output", "o", "output", "Show or hide the command's output", ("live",)),
    Action("toggle_pause", "p", "pause", "Pause the tables (counting goes on)", ("live",)),
    Action("reset", "R", "reset", "Reset the counts to zero (saved session: show it whole)",
           ("live",)),
    Action("export", "x", "export", "Export the session as Parquet (a directory)", ("live",)),
    Action("choose_window", "w", "window", "Window: the last 5 s, 30 s, 1 min, 5 min or since "
           "the start (saved session: choose the stretch of time shown)", ("live",),
           footer=False),
    Action("clear_filter", "escape", "clear", "Clear the filter", ("live",), footer=False),
    Action("new_trace", "P", "new trace", "Stop this trace (its session is kept) and pick "
           "something else to trace", ("live",), footer=False),
    Action("samples", "s", "samples", "CPU stack samples: top functions, callers, flame view",
           ("live",), essential=True),
    Action("connections", "c", "connections", "TCP connections: the selected process's, "
           "outbound ones from a connect row, inbound from accept/accept4; else all",
           ("live",), essential=True),
    Action("event_log", "E", "events", "Event log: the kept events decoded, as strace "
           "shows them", ("live",)),
    Action("files", "F", "files", "Files: opens, failed opens, reads and writes per path",
           ("live",)),
    Action("in_flight", "I", "in flight", "Calls in flight: each thread's current syscall "
           "and for how long (at stop: the calls never finished)", ("live",)),
    # the calls-in-flight view
    Action("thread_calls", "enter", "its calls", "The live view's rows of the selected "
           "thread", ("inflight",), essential=True),
    # a syscall's details
    Action("pause_events", "p", "pause", "Pause the recent events list (new ones wait)",
           ("detail",)),
    # the event log
    Action("filter", "slash", "filter", "Filter the events (/): path~ fd= ret= errno= addr~ "
           "and the syscall fields", ("events",), essential=True, priority=True),
    Action("toggle_pause", "p,space", "pause", "Pause the log (events go on arriving)",
           ("events",), essential=True),
    Action("cycle_selection", "s", "selection", "Which events the kernel sends: failed, "
           "slow, 1 in N, all, none (live traces)", ("events",), essential=True),
    Action("show_event", "enter", "event", "The selected event whole", ("events",)),
    # the files view
    Action("toggle_directories", "g", "by directory", "Group the files by directory "
           "(toggle)", ("files",), essential=True),
    Action("file_events", "enter", "its events", "The event log of the selected path",
           ("files",), essential=True),
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
           ("picker",), priority=True),
    Action("toggle_select", "space", "select", "Select or unselect the process", ("picker",)),
    Action("trace", "enter", "trace", "Trace the selected processes and their children",
           ("picker",)),
    Action("run_command", "n", "new command", "Launch a command and trace it", ("picker",)),
    Action("refresh", "f5", "refresh", "Refresh the process list now", ("picker",),
           footer=False),
    # the saved sessions list
    Action("open_session", "enter", "open", "Open the selected session", ("sessions",)),
    Action("refresh", "f5", "refresh", "List the saved sessions again", ("sessions",)),
    Action("delete_session", "d", "delete", "Delete the selected session (asks first)",
           ("sessions",)),
    # the difference of two runs (sikte-tui diff)
    Action("next_table", "tab", "next table", "The next table: by syscall, by command name, "
           "by file, by remote endpoint", ("diff",), essential=True),
    Action("prev_table", "shift+tab", "previous table", "The previous table", ("diff",),
           footer=False),
    Action("histograms", "enter", "histograms", "The selected row's latency histograms in A "
           "and B, overlaid", ("diff",), essential=True),
    Action("filter", "slash", "filter", "Filter the rows (/): part of the name, in any case",
           ("diff",), essential=True, priority=True),
    Action("clear_filter", "escape", "clear", "Clear the filter", ("diff",), footer=False),
    Action("toggle_shares", "s", "shares", "Counts, or each run's shares of its own calls "
           "(toggle)", ("diff-hist",), essential=True),
    # everywhere
    Action("back", "escape", "back", "Go back, or clear the filter",
           ("detail", "help", "samples", "callers", "connections", "events", "files",
            "inflight", "diff-hist"), footer=True),
    Action("help", "question_mark", "help", "Keys and the filter language",
           ("live", "picker", "detail", "sessions", "samples", "callers", "flame",
            "connections", "events", "files", "inflight", "diff", "diff-hist"), essential=True),
    Action("quit", "q", "quit", "Quit (asks before stopping a running command)",
           ("live", "picker", "detail", "sessions", "samples", "callers", "flame",
            "connections", "events", "files", "inflight", "diff", "diff-hist"),
           essential=True),
    # Checked as it arrives, like "/": the keys typed after it act on the table, not in the
    # filter (the screen refuses it when no filter is being typed: Enter is then the table's).
    # Last: a screen's own Enter comes first, and keeps its place in the footer.
    Action("filter_done", "enter", "apply", "Typing a filter: apply it and go back to the "
           "table", ("live", "connections", "events", "diff"), footer=False, priority=True),
)


# Textual's key names, as a person types them (the palette showed `greater_than_sign`).
_KEY_NAMES = {
    "slash": "/", "question_mark": "?", "greater_than_sign": ">", "full_stop": ".",
    "less_than_sign": "<", "comma": ",", "escape": "Esc", "enter": "Enter", "space": "Space",
    "tab": "Tab", "backspace": "Backspace", "delete": "Delete", "home": "Home", "end": "End",
    "pageup": "PgUp", "pagedown": "PgDn", "up": "↑", "down": "↓", "left": "←", "right": "→",
}  # fmt: skip
_MODIFIERS = {"ctrl": "Ctrl", "shift": "Shift", "alt": "Alt", "meta": "Meta"}

# Keys that are no action of a screen's, shown after each screen's own in help.
PALETTE_KEY = "ctrl+p"
PALETTE_HELP = "Command palette: every action, searchable"

# What the help screen calls each screen.
SCREEN_TITLES = {
    "live": "the live view", "picker": "the process picker", "detail": "a syscall's details",
    "sessions": "saved sessions", "samples": "CPU samples", "callers": "callers and callees",
    "flame": "the flame view", "connections": "TCP connections", "help": "help",
    "events": "the event log", "files": "files", "inflight": "calls in flight",
    "diff": "the difference of two runs", "diff-hist": "latency histograms of A and B",
}  # fmt: skip


def key_display(keys: str) -> str:
    """A binding's keys as typed: "greater_than_sign,full_stop" is "> or .", "escape" is
    "Esc", "ctrl+p" is "Ctrl+P". The help screen and the command palette both use it."""
    return " or ".join(_one_key(k.strip()) for k in keys.split(","))


def _one_key(key: str) -> str:
    *mods, name = key.split("+")
    function_key = name[:1] == "f" and name[1:].isdigit()  # f5 is F5
    shown = _KEY_NAMES.get(name) or (name.upper() if mods or function_key else name)
    return "+".join([*(_MODIFIERS.get(m, m.title()) for m in mods), shown])


def key_lines(screen: str) -> list[tuple[str, str]]:
    """(keys as typed, what they do) for every action of `screen`, then the command
    palette's: the lines a help screen shows for it."""
    lines = [(key_display(a.keys), a.description) for a in actions_for(screen)]
    return [*lines, (key_display(PALETTE_KEY), PALETTE_HELP)]


def help_sections(screen: str) -> tuple[list[Action], list[Action]]:
    """What `?` lists: the actions of `screen` first, then every other action once (an
    action several screens share, with the same keys and words, is one line)."""
    here = actions_for(screen)
    seen = {(a.keys, a.description) for a in here}
    others = []
    for action in ACTIONS:
        if (action.keys, action.description) not in seen:
            seen.add((action.keys, action.description))
            others.append(action)
    return here, others


def bindings_for(screen: str) -> list[BindingType]:
    # Textual's Screen declares BINDINGS as list[BindingType]; list is invariant.
    return [
        Binding(a.keys, a.name, a.label, show=a.footer, priority=a.priority)
        for a in ACTIONS
        if screen in a.screens
    ]


def actions_for(screen: str) -> list[Action]:
    return [a for a in ACTIONS if screen in a.screens]


class ActionsProvider(Provider):
    """The command palette's list: every action of the current screen."""

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, run, keys in self._entries():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), run, help=keys)

    async def discover(self) -> Hits:
        for text, run, keys in self._entries():
            yield Hit(1.0, text, run, help=keys)

    def _entries(self) -> Iterator[tuple[str, Callable[[], object], str]]:
        """(what the palette lists, what choosing it runs, its keys) for each action of the
        current screen."""
        screen = self.screen
        for action in actions_for(getattr(screen, "ACTION_SCREEN", "")):
            yield (f"{action.label}: {action.description}",
                   partial(screen.run_action, action.name), f"key: {key_display(action.keys)}")
