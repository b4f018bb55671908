"""The filters' error messages quote what was typed or pasted: one line of data, bounded, no
control characters; and a regex that Python's re warns about is parsed without a warning
(printed under the TUI, a warning would land on the terminal)."""

from __future__ import annotations

import warnings

import pytest

from tracing.query.connection_filter import parse_connection_filter
from tracing.query.syscall_filter import parse_filter
from tracing.query.terms import FilterError


@pytest.mark.parametrize(("text", "message"), [
    ("p99>[/b]", "bad duration '[/b]' for p99 at 0: use a number with ns, us, ms or s, "
                 "e.g. p99>1ms"),
    ("comm~\x1b(", "invalid regex '\\x1b(' for comm at 0: missing ), unterminated subpattern"),
    ("pid=\x1b]0;X\x07", "bad number '\\x1b]0;X\\x07' for pid at 0: use a whole number, e.g. "
                         "pid=42"),
    ("\u202ecomm=1", "unknown field '\\u202ecomm' at 0: use name, pid, tid, comm, nr, count, "
                     "errors, unexpected, err%, rate, total, avg, p50, p95, p99, max"),
    ("p99>\n1ms", "'>' needs a duration at 0: e.g. p99>1ms"),  # a newline separates terms
])
def test_messages_show_typed_text_escaped(text: str, message: str) -> None:
    with pytest.raises(FilterError) as caught:
        parse_filter(text)
    assert caught.value.message == message == str(caught.value)


def test_connection_filter_messages_too() -> None:
    with pytest.raises(FilterError) as caught:
        parse_connection_filter("port=\x1b[2J")
    assert "\x1b" not in caught.value.message
    assert caught.value.message.startswith("bad port '\\x1b[2J' for port at 0")


def test_a_pasted_line_of_escapes_makes_a_short_message() -> None:
    with pytest.raises(FilterError) as caught:
        parse_filter("p99>" + "\x1b" * 990)
    assert caught.value.message.startswith("bad duration '" + "\\x1b" * 5 + "…' for p99")
    assert len(caught.value.message) < 120


def test_a_pasted_megabyte_is_refused_by_its_length() -> None:
    with pytest.raises(FilterError) as caught:
        parse_filter("p99>" + "\x1b" * 1_000_000)
    assert caught.value.message == ("the filter is 1,000,004 characters long; the limit is "
                                    "1,000: shorten it (Esc clears it)")


def test_regex_warnings_are_not_printed() -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        flt = parse_filter("comm~[[a]")  # re: FutureWarning "Possible nested set"
    assert seen == []
    assert flt.matches_key(name="read", nr=0, pid=1, tid=1, comm="[")
