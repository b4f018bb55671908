"""Text from outside, for widgets: never parsed as markup, control characters made visible.

A string given to Static.update, Label, notify or a DataTable cell is parsed as Textual
markup: a process named `[/b]x[red` would raise MarkupError there, and one named `[b]` would
restyle the screen. So the TUI builds what it shows from outside as rich.text.Text objects
from sanitized strings (tracing.boundary.display_text.sanitize), and writes its own emphasis
as styles, never as markup around data.
"""

from __future__ import annotations

from rich.style import StyleType
from rich.text import Text

from tracing.boundary.display_text import sanitize


def data(value: object, style: StyleType = "", limit: int | None = None) -> Text:
    """One value from outside (a name, a path, an error message) as Text."""
    return Text(sanitize(str(value), limit), style=style)


Part = str | Text | tuple[str, StyleType]


def line(*parts: Part) -> Text:
    """Text assembled from parts: strings and (string, style) pairs are sanitized (the
    program's own words come through unchanged), Text parts are taken as they are."""
    text = Text()
    for part in parts:
        if isinstance(part, Text):
            text.append_text(part)
        elif isinstance(part, tuple):
            text.append(sanitize(part[0]), style=part[1])
        else:
            text.append(sanitize(part))
    return text


def error_line(message: object) -> Text:
    """"✗ message" for a message that may quote outside text (an error, a typed filter)."""
    return line("✗ ", str(message))
