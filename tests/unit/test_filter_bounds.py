"""The filter parser's work is bounded whatever is pasted (no root, no Textual).

A 33,000-character paste once froze the live view for 100 s: each of its keystrokes parsed
the whole text again. Now a filter longer than MAX_FILTER_CHARS is refused before its text
is read, parsing reads each character a bounded number of times, terms already parsed are
reused while typing goes on, and a regex is bounded before it is compiled.
"""

from __future__ import annotations

import contextlib

import pytest

from tracing.query import syscall_filter, terms
from tracing.query.connection_filter import parse_connection_filter
from tracing.query.syscall_filter import parse_filter
from tracing.query.terms import MAX_FILTER_CHARS, MAX_REGEX_CHARS, FilterError

PARSERS = [parse_filter, parse_connection_filter]


class CountingText(str):
    """A str that counts how many of its characters the parser reads one by one."""

    reads = 0

    def __getitem__(self, index):  # type: ignore[override]
        type(self).reads += 1
        return super().__getitem__(index)


@pytest.fixture
def counting() -> type[CountingText]:
    CountingText.reads = 0
    return CountingText


@pytest.fixture(autouse=True)
def fresh_term_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(terms, "_TERMS", terms._TermCache(1024))


@pytest.mark.parametrize("parse", PARSERS)
@pytest.mark.parametrize("text", ["a" * 33_000, "ab " * 11_000, "name~" + "(a" * 16_000,
                                  '"' + "x" * 33_000, "\x1b" * 1_000_000])
def test_a_long_paste_is_refused_unread(parse, text: str, counting) -> None:
    with pytest.raises(FilterError) as caught:
        parse(counting(text))
    assert counting.reads == 0
    assert caught.value.message == (
        f"the filter is {len(text):,} characters long; the limit is 1,000: shorten it "
        f"(Esc clears it)")
    assert caught.value.position == 0


@pytest.mark.parametrize("parse", PARSERS)
def test_the_longest_filter_parses_in_one_pass(parse, counting) -> None:
    text = "pid=42 " * (MAX_FILTER_CHARS // 7) + "pid=4"
    text = text + "2" * (MAX_FILTER_CHARS - len(text))
    assert len(text) == MAX_FILTER_CHARS
    parsed = parse(counting(text))
    # One pass: the splitter reads each character twice (is it a space? which is it?), and
    # each term's text once more as a slice.
    assert counting.reads <= 3 * MAX_FILTER_CHARS, counting.reads
    assert len(getattr(parsed, "key_terms", None) or parsed.terms) == MAX_FILTER_CHARS // 7 + 1


def test_one_character_more_is_refused(counting) -> None:
    text = "read " * 200
    assert len(text) == MAX_FILTER_CHARS
    assert len(parse_filter(text).key_terms) == 200
    with pytest.raises(FilterError, match=r"^the filter is 1,001 characters long; the limit is "
                       r"1,000: shorten it \(Esc clears it\)$"):
        parse_filter(text + "x")


@pytest.mark.parametrize(("parse", "field"), [(parse_filter, "name"), (parse_filter, "comm"),
                                              (parse_connection_filter, "addr"),
                                              (parse_connection_filter, "container"),
                                              (parse_connection_filter, "state")])
def test_a_regex_is_bounded_before_it_compiles(parse, field: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    compiled: list[str] = []
    real_compile = terms.re.compile
    monkeypatch.setattr(terms.re, "compile",
                        lambda p, f=0: compiled.append(p) or real_compile(p, f))
    parse(f"{field}~" + "a" * MAX_REGEX_CHARS)
    assert compiled == ["a" * MAX_REGEX_CHARS]
    with pytest.raises(FilterError) as caught:
        parse(f"{field}~" + "(a" * 200)
    assert caught.value.message == (f"regex for {field} at 0 is 400 characters long; the limit "
                                    f"is 256: shorten it")
    assert compiled == ["a" * MAX_REGEX_CHARS]  # the long one was never compiled


def test_typing_on_parses_only_the_last_term(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[int] = []
    real = syscall_filter._parse_term
    monkeypatch.setattr(syscall_filter, "_parse_term",
                        lambda start, chars: parsed.append(start) or real(start, chars))
    text = "read pid=42 errors>0 p99>1ms "
    for end in range(1, len(text) + 1):  # typed key by key
        with contextlib.suppress(FilterError):  # "pid=" needs its number: nothing is kept
            parse_filter(text[:end])
    # Each prefix of a term is parsed once, as it was typed, and never again.
    starts = {0: "read", 5: "pid=42", 12: "errors>0", 21: "p99>1ms"}
    assert sorted(parsed) == sorted(s for s, word in starts.items()
                                    for _ in range(len(word)))
    parsed.clear()
    flt = parse_filter(text + "comm=x")
    assert parsed == [len(text)]
    assert flt.matches_key(name="read", nr=0, pid=42, tid=1, comm="x")


def test_a_cached_term_keeps_its_own_position() -> None:
    with pytest.raises(FilterError) as first:
        parse_filter("pid=x")
    with pytest.raises(FilterError) as later:
        parse_filter("read pid=x")
    assert (first.value.position, later.value.position) == (0, 5)
    assert later.value.message.startswith("bad number 'x' for pid at 5")


def test_a_regex_is_searched_once_per_text() -> None:
    flt = parse_filter("comm~^(a|a)*b$")  # backtracks 2^n on n a's
    for pid in range(500):
        assert not flt.matches_key(name="read", nr=0, pid=pid, tid=pid, comm="a" * 12)
    # A table asks about the same comm for each of its entries: it is searched once.
    cached = flt.key_terms[0].test.cache_info()  # type: ignore[attr-defined]
    assert (cached.misses, cached.hits) == (1, 499)
