"""strace's string quoting, byte by byte (src/util.c string_quote)."""

from __future__ import annotations

import pytest

from tracing.decode.fdnames import annotate_fd, escape_fd_name
from tracing.decode.quote import PATH_BOUND, escape, quote, quote_path


@pytest.mark.parametrize(("data", "expected"), [
    (b"plain /etc/x", "plain /etc/x"),
    (b'q"b\\s', 'q\\"b\\\\s'),
    (b"\t\n\v\f\r", "\\t\\n\\v\\f\\r"),
    (b"\x00", "\\0"),
    (b"\x001", "\\0001"),  # the next byte is an octal digit: three digits
    (b"\x008", "\\08"),  # 8 is not an octal digit: the short form
    (b"\x01\x027", "\\1\\0027"),
    (b"\x1b[0m", "\\33[0m"),
    (b"\x7f", "\\177"),
    (b"\xff\xfe", "\\377\\376"),
    ("é".encode(), "\\303\\251"),  # non-ASCII bytes in octal, as strace's default
])
def test_escape(data: bytes, expected: str) -> None:
    assert escape(data) == expected


def test_escape_is_printable_ascii_whatever_the_bytes() -> None:
    shown = escape(bytes(range(256)))
    assert shown.isascii() and shown.isprintable()


def test_quote_cuts_at_the_bound_with_dots_after_the_quote() -> None:
    assert quote(b"x" * 32) == '"' + "x" * 32 + '"'
    assert quote(b"x" * 33) == '"' + "x" * 32 + '"...'
    assert quote(b"abc", 2) == '"ab"...'
    assert quote(b"abc", None) == '"abc"'
    assert quote(b"abc", more=True) == '"abc"...'


def test_the_look_ahead_stops_at_the_cut() -> None:
    """strace looks ahead only inside what it shows: a cut before a digit keeps the short
    form."""
    assert quote(b"\x01" + b"7", 1) == '"\\1"...'


def test_paths_up_to_4095_bytes() -> None:
    full = b"/" + b"p" * (PATH_BOUND - 1)
    assert quote_path(full) == f'"{full.decode()}"'
    assert quote_path(full, truncated=True) == f'"{full.decode()}"...'
    assert quote_path(full + b"q") == f'"{full.decode()}"...'


def test_descriptor_names_escape_angle_brackets() -> None:
    assert annotate_fd(3, {3: "/etc/passwd"}) == "3</etc/passwd>"
    assert annotate_fd(4, {3: "/etc/passwd"}) == "4"
    assert annotate_fd(3, None) == "3"
    assert escape_fd_name("/a<b>7\n") == "/a\\74b\\0767\\n"
    assert escape_fd_name(b"/x\xff") == "/x\\377"
