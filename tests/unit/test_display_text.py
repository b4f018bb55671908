"""tracing.boundary.display_text.sanitize: exact escaped forms, the length bound, the characters it
leaves alone, and that its class of unsafe characters is every control, format, separator
and surrogate character Python's Unicode database knows."""

from __future__ import annotations

import sys
import unicodedata

import pytest

from tracing.boundary.display_text import ELLIPSIS, escape_char, join_command, sanitize

UNSAFE_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs"}


@pytest.mark.parametrize(("text", "shown"), [
    ("\x1b[2J\x1b]0;X\x07", "\\x1b[2J\\x1b]0;X\\x07"),  # clear screen, retitle, bell
    ("\x1b]0;PWNED\x07", "\\x1b]0;PWNED\\x07"),
    ("a\tb\nc\rd", "a\\tb\\nc\\rd"),
    ("\x00\x01\x08\x0b\x0c\x1f", "\\x00\\x01\\x08\\x0b\\x0c\\x1f"),
    ("\x7f", "\\x7f"),  # DEL
    ("\x80\x85\x9b\x9f", "\\x80\\x85\\x9b\\x9f"),  # C1: NEL, CSI...
    ("\xa0\xad", "\xa0\\xad"),  # NBSP is a space; the soft hyphen draws nothing
    ("\u202eexe.txt", "\\u202eexe.txt"),  # right-to-left override
    ("a\u202a\u202b\u202c\u202d", "a\\u202a\\u202b\\u202c\\u202d"),  # embeddings, pop
    ("\u2066\u2067\u2068\u2069", "\\u2066\\u2067\\u2068\\u2069"),  # isolates
    ("\u200e\u200f\u061c", "\\u200e\\u200f\\u061c"),  # LRM, RLM, Arabic letter mark
    ("zero\u200bwidth\u200d\ufeff", "zero\\u200bwidth\\u200d\\ufeff"),
    ("line\u2028para\u2029", "line\\u2028para\\u2029"),
    ("tag\U000e0041\U000e007f", "tag\\U000e0041\\U000e007f"),  # invisible tag characters
    ("bad\udcff\udc80", "bad\\xff\\x80"),  # undecodable bytes (surrogateescape)
    ("lone\ud800", "lone\\ud800"),
    ("[/b]x[red", "[/b]x[red"),  # markup is the TUI's business: plain text here
    ("naïve café 東京 🙂", "naïve café 東京 🙂"),
    ("back\\slash \\x1b", "back\\slash \\x1b"),  # left alone: sanitizing is idempotent
    ("", ""),
])
def test_escaped_forms(text: str, shown: str) -> None:
    assert sanitize(text) == shown


def test_bytes_are_decoded_keeping_bad_bytes_visible() -> None:
    assert sanitize(b"ok\xff\x1b[0m") == "ok\\xff\\x1b[0m"


@pytest.mark.parametrize("text", ["\x1b[2J\x1b]0;X\x07", "a\u202eb\tc", "\udcff\U000e0041"])
def test_sanitizing_twice_changes_nothing(text: str) -> None:
    once = sanitize(text)
    assert sanitize(once) == once
    assert sanitize(sanitize(text, 7), 7) == sanitize(text, 7)


@pytest.mark.parametrize(("text", "limit", "shown"), [
    ("abcdef", 6, "abcdef"),
    ("abcdefg", 6, "abcde…"),
    ("abc", 1, ELLIPSIS),
    ("a", 1, "a"),
    ("ab\x1bcd", 4, "ab…"),  # "ab\x1b" would cut the escape: it is left out whole
    ("ab\x1bcd", 7, "ab\\x1b…"),
    ("ab\x1bcd", 8, "ab\\x1bcd"),
    ("a\u202eb", 5, "a…"),
    ("a\u202eb", 8, "a\\u202eb"),
    ("\U000e0041xyz", 10, "…"),  # the escape alone is 10 characters: left out
    ("\U000e0041xyz", 11, "\\U000e0041…"),
    ("ab\\x41cdef", 6, "ab\\x4…"),  # nothing escaped: plain text, cut plainly
    ("\x1bb\\x41cdef", 9, "\\x1bb…"),  # escaped text: a literal \x41 is cut as one
])
def test_limit_never_cuts_an_escape(text: str, limit: int, shown: str) -> None:
    assert sanitize(text, limit) == shown
    assert len(sanitize(text, limit)) <= limit


def test_limit_reads_only_what_it_needs() -> None:
    huge = "\x1b" * 10_000_000
    assert sanitize(huge, 9) == "\\x1b\\x1b…"


def test_keep_leaves_newlines_and_tabs_for_multiline_text() -> None:
    assert sanitize("a\tb\nc\r\x1b", keep="\n\t") == "a\tb\nc\\r\\x1b"
    assert sanitize("a\tb\nc", keep="\n") == "a\\tb\nc"
    with pytest.raises(ValueError, match="keep"):
        sanitize("x", keep="\x1b")
    with pytest.raises(ValueError, match="limit"):
        sanitize("x", 0)


def test_join_command() -> None:
    assert join_command(("sh", "-c", "printf '\x1b]0;X\x07'")) == "sh -c printf '\\x1b]0;X\\x07'"
    assert join_command(("x" * 50,), 10) == "x" * 9 + "…"


def test_escape_char_forms() -> None:
    assert [escape_char(c) for c in "\t\n\r\x1b\x9b\u202e\udc9b\ud800\U000e0001"] == [
        "\\t", "\\n", "\\r", "\\x1b", "\\x9b", "\\u202e", "\\x9b", "\\ud800", "\\U000e0001"]


def test_every_unsafe_character_is_escaped_and_nothing_else() -> None:
    """The hand-written class against this Python's Unicode database (a newer one adding a
    format character fails here: add it to _UNSAFE)."""
    missed, extra = [], []
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        unsafe = unicodedata.category(char) in UNSAFE_CATEGORIES
        escaped = sanitize(char) != char
        if unsafe and not escaped:
            missed.append(hex(code))
        elif escaped and not unsafe and not 0x13439 <= code <= 0x1343F:  # Cf in Unicode 15
            extra.append(hex(code))
    assert missed == []
    assert extra == []
