"""Writing a large JSON document piece by piece, exactly as json.dumps(doc, indent=2) would.

`record --json` of a trace of 20,000 processes lists tens of thousands of processes and
files: built whole (a dict per row, then one string of the document through the pure-Python
encoder's list of chunks) it held over 100 MB at once. Here the rows of a `Rows` value are
made, encoded and written one at a time; the text is the same byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping

INDENT = 2


class Rows:
    """A list of the document made on demand (once): its rows are not held together."""

    def __init__(self, make: Callable[[], Iterable[object]]) -> None:
        self._make = make

    def __iter__(self) -> Iterator[object]:
        return iter(self._make())


def _dumps(value: object, depth: int) -> str:
    """value as json.dumps(indent=2) writes it `depth` levels in."""
    text = json.dumps(value, indent=INDENT)
    return text.replace("\n", "\n" + " " * (INDENT * depth)) if depth else text


def iter_json(doc: Mapping[str, object]) -> Iterator[str]:
    """The text of json.dumps(doc, indent=2), in pieces (a row or a key at a time)."""
    if not doc:
        yield "{}"
        return
    pad, row_pad = " " * INDENT, " " * (2 * INDENT)
    yield "{"
    for n, (key, value) in enumerate(doc.items()):
        yield ("\n" if n == 0 else ",\n") + pad + json.dumps(key) + ": "
        if not isinstance(value, Rows):
            yield _dumps(value, 1)
            continue
        empty = True
        for row in value:
            yield ("[\n" if empty else ",\n") + row_pad + _dumps(row, 2)
            empty = False
        yield "[]" if empty else "\n" + pad + "]"
    yield "\n}"


def write_json(write: Callable[[str], object], doc: Mapping[str, object],
               chunk: int = 1 << 16) -> None:
    """Write the document through `write` in pieces of about `chunk` characters."""
    pending: list[str] = []
    size = 0
    for piece in iter_json(doc):
        pending.append(piece)
        size += len(piece)
        if size >= chunk:
            write("".join(pending))
            pending, size = [], 0
    write("".join(pending))
