"""One way to show text that came from outside: process names, command lines, paths,
container names, user names, frame names, typed filters and error messages.

sikte-tui runs as root and shows what other users control. A process can name itself
`\\x1b]0;PWNED\\x07` (prctl PR_SET_NAME) and, printed as is, that retitles or clears the
terminal; a right-to-left override (U+202E) makes `exe.txt` read as `txt.exe`. So every such
string is passed through `sanitize` before it is shown, in the TUI and on every line a command
prints. It is pure (no Textual, no bcc) so that the CLI and the TUI share it.

The rules (docs/security.md repeats them):

- Control characters become visible escapes, as strace and Python's repr write them: TAB,
  LF and CR as `\\t`, `\\n`, `\\r`; the rest of C0, DEL and C1 (U+0080 to U+009F) as `\\xHH`.
- Unicode characters that change how text around them is drawn or that draw nothing
  (general categories Cf and Zl/Zp: bidi overrides, embeddings, isolates and marks,
  zero-width spaces and joiners, the BOM, tag characters, line and paragraph separators)
  become `\\uHHHH` or `\\UHHHHHHHH`.
- Lone surrogates (undecodable bytes kept by Python's `surrogateescape`, U+DC80 to U+DCFF)
  become the `\\xHH` of the byte they stand for, so that printing never raises
  UnicodeEncodeError; other lone surrogates become `\\uHHHH`.
- Backslashes are left alone, so sanitizing twice changes nothing (a layer that sanitizes
  again, such as the TUI's tables, is harmless). A name that spells `\\x1b` with a real
  backslash therefore looks like an escaped ESC: a cosmetic ambiguity, never a control byte.
- `limit` bounds the result's length (in characters, escapes counted as shown): longer text
  is cut, never inside an escape, and ends with "…". Only as much input as the limit needs is
  read, so a huge command line costs what is shown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

ELLIPSIS = "…"

# Every character of general category Cc, Cf, Zl, Zp or Cs (Unicode 14, Python 3.11), and
# the format characters Unicode 15 added (U+13439..U+1343F), so a newer Python's data cannot
# let one through. tests/unit/test_display_text.py checks this class against unicodedata.
_UNSAFE = re.compile(
    "["
    "\x00-\x1f\x7f-\x9f\xad"
    "\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    "\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f"
    "\ud800-\udfff\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f"
    "]"
)
_ESCAPE = re.compile(r"\\(?:x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8}|[tnr])")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
_KEEPABLE = frozenset("\t\n")


def escape_char(char: str) -> str:
    """The visible form of one unsafe character (see the module's rules)."""
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def sanitize(text: str | bytes, limit: int | None = None, keep: str = "") -> str:
    """`text` made safe to show as data: no character in it can move the cursor, change
    the terminal or the direction of the text around it, or hide itself.

    `limit`: the most characters returned (at least 1); longer results end with "…".
    `keep`: characters to leave as they are, among "\\n" and "\\t" (multi-line text such as a
    command's output); everything else unsafe is escaped.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    if limit is not None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        text = text[: limit + 1]  # a character shows as at least one: the rest is cut anyway
    if keep and not _KEEPABLE.issuperset(keep):
        raise ValueError("keep may hold only newline and tab")
    if _UNSAFE.search(text) is not None:
        text = _UNSAFE.sub(lambda m: m[0] if m[0] in keep else escape_char(m[0]), text)
        if limit is not None and len(text) > limit:
            return _cut_escaped(text, limit)
    if limit is not None and len(text) > limit:
        return text[: limit - 1] + ELLIPSIS
    return text


def _cut_escaped(text: str, limit: int) -> str:
    """Cut escaped text to `limit` characters with the ellipsis, never inside an escape:
    an escape that would be cut is left out whole."""
    end = limit - 1
    # An escape is at most 10 characters (\UHHHHHHHH): look back that far for its start.
    start = text.rfind("\\", max(end - 10, 0), end)
    if start >= 0:
        match = _ESCAPE.match(text, start)
        if match is not None and match.end() > end:
            end = start
    return text[:end] + ELLIPSIS


def sanitize_all(items: Iterable[str], limit: int | None = None) -> list[str]:
    """Each of `items` sanitized (command line arguments, frames of a stack)."""
    return [sanitize(item, limit) for item in items]


def join_command(argv: Iterable[str], limit: int | None = None) -> str:
    """A command line shown on one line: arguments sanitized and joined by spaces."""
    return sanitize(" ".join(argv), limit)
