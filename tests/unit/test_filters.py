"""The filter language of the live syscall view: every form, valid and invalid, exactly."""

from __future__ import annotations

import math
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tracing.query.syscall_filter import ERRORS_ONLY, HELP_TEXT, Filter, parse_filter
from tracing.query.terms import FilterError, Term

FIELDS = ("name, pid, tid, comm, nr, count, errors, unexpected, err%, rate, total, avg, p50, "
          "p95, p99, max")

# One traced entry and one grouped row that the tables below test against.
ENTRY = {"name": "read", "nr": 0, "pid": 42, "tid": 43, "comm": "nginx"}
ROW = {
    "count": 12_000,
    "errors": 3,
    "err_pct": 0.025,
    "rate": 400.0,
    "total_ns": 3_000_000_000,
    "avg_ns": 250_000,
    "p50_ns": 100_000,
    "p95_ns": 900_000,
    "p99_ns": 1_500_000,
    "max_ns": 2_500_000_000,
}


def key_match(text: str, **changes: object) -> bool:
    return parse_filter(text).matches_key(**{**ENTRY, **changes})  # type: ignore[arg-type]


def row_match(text: str, **changes: float) -> bool:
    return parse_filter(text).matches_row({**ROW, **changes})


def parse_error(text: str) -> FilterError:
    with pytest.raises(FilterError) as info:
        parse_filter(text)
    return info.value


# --- empty ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", " ", "  \t\n "])
def test_empty_text_matches_everything(text: str) -> None:
    f = parse_filter(text)
    assert f.is_empty
    assert not f.has_key_terms
    assert not f.has_metric_terms
    assert f.text == text
    assert f.matches_key(name="anything", nr=999, pid=1, tid=1, comm="x")
    assert f.matches_row({})


# --- key terms --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name", "expected"),
    [
        ("read", "read", True),
        ("read", "pread64", True),
        ("read", "readv", True),
        ("read", "readlinkat", True),
        ("read", "write", False),
        ("READ", "read", True),
        ("Read", "preadv2", True),
        ("sig", "rt_sigaction", True),
        ('"read"', "pread64", True),
        ("name~^read", "readv", True),
        ("name~^read", "pread64", False),
        ("name~READ$", "pread", True),
        ("name~^(read|write)$", "write", True),
        ("name~^(read|write)$", "writev", False),
        ("name~64", "pread64", True),
        ("name=read", "read", True),
        ("name=read", "readv", False),
        ("name=read", "pread64", False),
        ("name=READ", "read", True),
        ("NAME=read", "read", True),
        ("name!=read", "read", False),
        ("name!=read", "readv", True),
    ],
)
def test_name_forms(text: str, name: str, expected: bool) -> None:
    assert key_match(text, name=name) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pid=42", True),
        ("pid=41", False),
        ("pid=420", False),
        ("pid=042", True),
        ("pid!=42", False),
        ("pid!=41", True),
        ("tid=43", True),
        ("tid=42", False),
        ("tid!=43", False),
        ("nr=0", True),
        ("nr=1", False),
        ("nr!=1", True),
        ("comm=nginx", True),
        ("comm=NGINX", False),
        ("comm=ngin", False),
        ("comm=nginx2", False),
        ("comm!=nginx", False),
        ("comm!=bash", True),
        ("comm~^ng", True),
        ("comm~inx$", True),
        ("comm~NG", False),
        ("comm~(?i)NG", True),
        ('pid="42"', True),
    ],
)
def test_pid_tid_nr_comm_forms(text: str, expected: bool) -> None:
    assert key_match(text) is expected


@pytest.mark.parametrize(
    ("text", "comm", "expected"),
    [
        ('comm="my prog"', "my prog", True),
        ("comm='my prog'", "my prog", True),
        ('comm="my prog"', "my", False),
        ('comm=my" "prog', "my prog", True),
        ('comm="a=b c"', "a=b c", True),
        ('comm~"^my p"', "my prog", True),
        ('comm="it\'s"', "it's", True),
        ("comm='say \"hi\"'", 'say "hi"', True),
        ('!comm="my prog"', "my prog", False),
    ],
)
def test_quoted_values(text: str, comm: str, expected: bool) -> None:
    assert key_match(text, comm=comm) is expected


def test_quoted_regex_keeps_operator_characters() -> None:
    f = parse_filter('name~"^(?!read)" pid=42')
    assert f.key_terms[0].value == "^(?!read)"
    assert f.matches_key(**{**ENTRY, "name": "write"})  # type: ignore[arg-type]
    assert not f.matches_key(**ENTRY)  # type: ignore[arg-type]


def test_quoted_bare_word_with_a_space_is_one_term() -> None:
    f = parse_filter('"io uring" read')
    assert [t.value for t in f.key_terms] == ["io uring", "read"]


# --- metric terms -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("count>=10k", True),
        ("count>=12k", True),
        ("count>12k", False),
        ("count=12000", True),
        ("count!=12000", False),
        ("count<1M", True),
        ("count<=11999", False),
        ("count>1.5k", True),
        ("COUNT>1", True),
        ("calls>100", True),
        ("calls<100", False),
        ("calls=12K", True),
        ("errors>0", True),
        ("errors=3", True),
        ("errors<3", False),
        ("errors>=3", True),
        ("err%>5", False),
        ("err%<0.1", True),
        ("err%>0.02", True),
        ("err%>5%", False),
        ("err%<=.025", True),
        ("rate>100", True),
        ("rate>=1k", False),
        ("rate<1k", True),
        ("rate=400", True),
        ("rate>399.5", True),
        ("total>2s", True),
        ("total>3s", False),
        ("total>=3s", True),
        ("total>500ns", True),
        ("avg<=250us", True),
        ("avg<250us", False),
        ("avg=250us", True),
        ("avg=250000", True),
        ("avg>250µs", False),
        ("p50>100us", False),
        ("p50>=100us", True),
        ("p95>0.5ms", True),
        ("p95<1ms", True),
        ("p99>1ms", True),
        ("p99>1.5ms", False),
        ("p99<=1500000ns", True),
        ("p99!=1.5ms", False),
        ("max>2s", True),
        ("max>2.5s", False),
        ("max<3s", True),
    ],
)
def test_metric_comparisons(text: str, expected: bool) -> None:
    assert row_match(text) is expected


@pytest.mark.parametrize(
    ("value", "ns"),
    [
        ("500", 500),
        ("500ns", 500),
        ("250us", 250_000),
        ("250µs", 250_000),
        ("1ms", 1_000_000),
        ("1.5ms", 1_500_000),
        ("2s", 2_000_000_000),
        (".5s", 500_000_000),
        ('"1 ms"', 1_000_000),
    ],
)
def test_duration_units(value: str, ns: int) -> None:
    f = parse_filter(f"max={value}")
    assert f.matches_row({"max_ns": ns})
    assert not f.matches_row({"max_ns": ns + 1})


@pytest.mark.parametrize(
    ("value", "count"),
    [("7", 7), ("10k", 10_000), ("10K", 10_000), ("1.5k", 1_500), ("2M", 2_000_000)],
)
def test_count_suffixes(value: str, count: int) -> None:
    f = parse_filter(f"count={value}")
    assert f.matches_row({"count": count})
    assert not f.matches_row({"count": count + 1})


@pytest.mark.parametrize("text", ["errors>0", "!errors>0", "p99>1ms", "!p99>1ms", "err%<5"])
def test_missing_or_nan_metric_does_not_match_even_negated(text: str) -> None:
    f = parse_filter(text)
    assert not f.matches_row({})
    assert not f.matches_row(dict.fromkeys(ROW, math.nan))


def test_row_without_metric_terms_matches_any_mapping() -> None:
    assert parse_filter("read pid=42").matches_row({})


# --- negation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "changes", "expected"),
    [
        ("!read", {}, False),
        ("!read", {"name": "write"}, True),
        ("!read", {"name": "pread64"}, False),
        ("!name=read", {}, False),
        ("!name=read", {"name": "readv"}, True),
        ("!name~^read", {"name": "pread64"}, True),
        ("!name~^read", {}, False),
        ("!pid=42", {}, False),
        ("!pid=42", {"pid": 7}, True),
        ("!pid!=42", {}, True),
        ("!tid=43", {}, False),
        ("!nr=0", {"nr": 1}, True),
        ("!comm=nginx", {}, False),
        ("!comm~^ng", {"comm": "bash"}, True),
    ],
)
def test_negated_key_terms(text: str, changes: dict[str, object], expected: bool) -> None:
    assert key_match(text, **changes) is expected


@pytest.mark.parametrize(
    ("text", "changes", "expected"),
    [
        ("!errors>0", {}, False),
        ("!errors>0", {"errors": 0}, True),
        ("!count>=10k", {}, False),
        ("!calls<10", {}, True),
        ("!err%>5", {}, True),
        ("!rate>100", {}, False),
        ("!p99>1ms", {}, False),
        ("!p99>1ms", {"p99_ns": 1_000_000}, True),
        ("!max<1s", {}, True),
    ],
)
def test_negated_metric_terms(text: str, changes: dict[str, float], expected: bool) -> None:
    assert row_match(text, **changes) is expected


# --- AND, and the key/metric split ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "changes", "expected"),
    [
        ("read pid=42", {}, True),
        ("read pid=42", {"pid": 7}, False),
        ("read !readv", {"name": "pread64"}, True),
        ("read !readv", {"name": "readv"}, False),
        ("read   comm=nginx\ttid=43", {}, True),
        ("read comm=nginx tid=44", {}, False),
        ("name~^p read 64", {"name": "pread64"}, True),
        ("name~^p read 64", {"name": "preadv"}, False),
    ],
)
def test_key_terms_are_anded(text: str, changes: dict[str, object], expected: bool) -> None:
    assert key_match(text, **changes) is expected


@pytest.mark.parametrize(
    ("text", "changes", "expected"),
    [
        ("errors>0 p99>1ms", {}, True),
        ("errors>0 p99>1ms", {"errors": 0}, False),
        ("errors>0 p99>1ms", {"p99_ns": 10}, False),
        ("count>=10k !err%>1 max>2s", {}, True),
    ],
)
def test_metric_terms_are_anded(text: str, changes: dict[str, float], expected: bool) -> None:
    assert row_match(text, **changes) is expected


def test_key_and_metric_terms_are_split() -> None:
    f = parse_filter("pid=42 errors>0 read !p99>1ms comm~x nr=3 calls>5")
    assert [t.field for t in f.key_terms] == ["pid", "word", "comm", "nr"]
    assert [t.field for t in f.metric_terms] == ["errors", "p99", "count"]
    assert f.has_key_terms and f.has_metric_terms and not f.is_empty


def test_key_matching_ignores_metric_terms_and_row_matching_ignores_key_terms() -> None:
    f = parse_filter("pid=42 errors>0")
    assert f.matches_key(**ENTRY)  # type: ignore[arg-type]  # no metrics needed here
    assert not f.matches_key(**{**ENTRY, "pid": 7})  # type: ignore[arg-type]
    assert f.matches_row(ROW)  # a row grouped by syscall has no pid to test
    assert not f.matches_row({**ROW, "errors": 0})


@pytest.mark.parametrize(
    ("text", "has_key", "has_metric"),
    [("read", True, False), ("errors>0", False, True), ("!comm=x max>1s", True, True)],
)
def test_has_key_and_metric_terms(text: str, has_key: bool, has_metric: bool) -> None:
    f = parse_filter(text)
    assert (f.has_key_terms, f.has_metric_terms, f.is_empty) == (has_key, has_metric, False)


def test_terms_describe_what_was_typed() -> None:
    f = parse_filter('  !calls>=10k comm="my prog" p99>1ms')
    assert f.metric_terms[0] == Term("count", ">=", "10k", True, 2, "count", test=bool)
    assert f.key_terms[0] == Term("comm", "=", "my prog", False, 14, "comm", test=bool)
    assert f.metric_terms[1] == Term("p99", ">", "1ms", False, 29, "p99_ns", test=bool)


def test_errors_only_is_a_metric_filter_on_unexpected_errors() -> None:
    f = parse_filter(ERRORS_ONLY)
    assert ERRORS_ONLY == "unexpected>0"  # errors other than EAGAIN, EINPROGRESS, EINTR
    assert f.has_metric_terms and not f.has_key_terms
    assert f.matches_row({"errors": 3, "unexpected": 1})
    assert not f.matches_row({"errors": 3, "unexpected": 0})


def test_filters_compare_by_text() -> None:
    assert parse_filter("read pid=1") == parse_filter("read pid=1")
    assert hash(parse_filter("read")) == hash(parse_filter("read"))
    assert parse_filter("read") != parse_filter("write")
    assert isinstance(parse_filter("read"), Filter)


# --- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        # unknown or missing field
        ("foo=1", f"unknown field 'foo' at 0: use {FIELDS}", 0),
        ("read foo>3", f"unknown field 'foo' at 5: use {FIELDS}", 5),
        ("!foo=1", f"unknown field 'foo' at 0: use {FIELDS}", 0),
        ("err>1", f"unknown field 'err' at 0: use {FIELDS}", 0),
        (">5", f"missing field before '>' at 0: use {FIELDS}", 0),
        ("read =x", f"missing field before '=' at 5: use {FIELDS}", 5),
        ("!=3", f"missing field before '!=' at 0: use {FIELDS}", 0),
        ("!>3", f"missing field before '>' at 0: use {FIELDS}", 0),
        # bad operator
        ("count=>3", "bad operator '=>' for count at 0: use =, !=, >, >=, < or <=", 0),
        ("p99=<1ms", "bad operator '=<' for p99 at 0: use =, !=, >, >=, < or <=", 0),
        ("count~3", "bad operator '~' for count at 0: use =, !=, >, >=, < or <=", 0),
        ("errors<>0", "bad operator '<>' for errors at 0: use =, !=, >, >=, < or <=", 0),
        ("pid==3", "bad operator '==' for pid at 0: use = or !=", 0),
        ("pid>3", "bad operator '>' for pid at 0: use = or !=", 0),
        ("nr~3", "bad operator '~' for nr at 0: use = or !=", 0),
        ("name>read", "bad operator '>' for name at 0: use =, != or ~", 0),
        ("comm=~x", "bad operator '=~' for comm at 0: use =, != or ~", 0),
        # missing value
        ("pid=", "'=' needs a number at 0: e.g. pid=42", 0),
        ("read tid=", "'=' needs a number at 5: e.g. tid=42", 5),
        ("nr!=", "'!=' needs a number at 0: e.g. nr=0", 0),
        ("count>", "'>' needs a number at 0: e.g. count>100", 0),
        ("calls>=", "'>=' needs a number at 0: e.g. calls>100", 0),
        ("errors>", "'>' needs a number at 0: e.g. errors>0", 0),
        ("err%>", "'>' needs a number at 0: e.g. err%>5", 0),
        ("rate<", "'<' needs a number at 0: e.g. rate>1000", 0),
        ("p99>", "'>' needs a duration at 0: e.g. p99>1ms", 0),
        ("avg<=", "'<=' needs a duration at 0: e.g. avg>1ms", 0),
        ("name=", "'=' needs a name at 0: e.g. name=read", 0),
        ("name~", "'~' needs a regex at 0: e.g. name~^read", 0),
        ("comm=", "'=' needs a name at 0: e.g. comm=nginx", 0),
        ('comm=""', "'=' needs a name at 0: e.g. comm=nginx", 0),
        ("comm~", "'~' needs a regex at 0: e.g. comm~^py", 0),
        # not a number
        ("pid=abc", "bad number 'abc' for pid at 0: use a whole number, e.g. pid=42", 0),
        ("pid=-1", "bad number '-1' for pid at 0: use a whole number, e.g. pid=42", 0),
        ("tid=1k", "bad number '1k' for tid at 0: use a whole number, e.g. tid=42", 0),
        ("nr=1.5", "bad number '1.5' for nr at 0: use a whole number, e.g. nr=0", 0),
        (
            "count>abc",
            "bad number 'abc' for count at 0: use a number with optional k or M, e.g. count>100",
            0,
        ),
        (
            "count>10m",
            "bad number '10m' for count at 0: use a number with optional k or M, e.g. count>100",
            0,
        ),
        (
            "rate>1ms",
            "bad number '1ms' for rate at 0: use a number with optional k or M, e.g. rate>1000",
            0,
        ),
        ("err%>x", "bad percentage 'x' for err% at 0: use a number, e.g. err%>5", 0),
        ("err%>5%%", "bad percentage '5%%' for err% at 0: use a number, e.g. err%>5", 0),
        # bad duration
        (
            "p99>1xs",
            "bad duration '1xs' for p99 at 0: use a number with ns, us, ms or s, e.g. p99>1ms",
            0,
        ),
        (
            "read avg<=1m",
            "bad duration '1m' for avg at 5: use a number with ns, us, ms or s, e.g. avg>1ms",
            5,
        ),
        (
            "max>-1s",
            "bad duration '-1s' for max at 0: use a number with ns, us, ms or s, e.g. max>1ms",
            0,
        ),
        (
            "total>ms",
            "bad duration 'ms' for total at 0: use a number with ns, us, ms or s, e.g. total>1ms",
            0,
        ),
        # bad regex
        ("name~(", "invalid regex '(' for name at 0: missing ), unterminated subpattern", 0),
        ("comm~[z-a]", "invalid regex '[z-a]' for comm at 0: bad character range z-a", 0),
        ("read !name~*x", "invalid regex '*x' for name at 5: nothing to repeat", 5),
        # quotes and negation
        ('comm="my prog', 'unterminated quote at 0: add the closing "', 0),
        ("read comm='x", "unterminated quote at 5: add the closing '", 5),
        ('"read', 'unterminated quote at 0: add the closing "', 0),
        ('""', 'empty quotes at 0: put a name between them, e.g. "read"', 0),
        ("!", "'!' needs a term after it at 0: e.g. !read", 0),
        ("read !", "'!' needs a term after it at 5: e.g. !read", 5),
        ("!!read", "'!!' at 0: use one '!' to negate a term", 0),
        ("  pid=x", "bad number 'x' for pid at 2: use a whole number, e.g. pid=42", 2),
    ],
)
def test_error_message_and_position(text: str, message: str, position: int) -> None:
    error = parse_error(text)
    assert (error.message, error.position) == (message, position)
    assert str(error) == message
    assert isinstance(error, ValueError)


def test_first_bad_term_is_reported() -> None:
    assert parse_error("pid=x foo=1").position == 0
    assert parse_error("read foo=1 pid=x").position == 5


@pytest.mark.parametrize(
    "text",
    [
        "p99>" + "9" * 400,  # a float that overflows to inf: no int
        "pid=" + "9" * 5000,  # past int()'s digit limit
        "name~" + "(" * 2000,  # too deep for re's parser
        "name~a{99999999999}",  # repeat count too large
        "x" * 10_000 + "=1",
    ],
)
def test_pathological_input_gives_a_short_filter_error(text: str) -> None:
    error = parse_error(text)
    assert error.position == 0
    assert len(error.message) < 200 and "\n" not in error.message


def test_huge_count_is_a_number_no_row_exceeds() -> None:
    assert not parse_filter("count>" + "9" * 400).matches_row({"count": 1e300})


def test_random_input_raises_only_filter_error() -> None:
    alphabet = "ab rp9.0ksmu%!=<>~\"'()[]*\\ \tµ" + "namecount"
    rng = random.Random(1234)
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 16)))
        try:
            f = parse_filter(text)
        except FilterError as error:
            assert 0 <= error.position < len(text)
        else:
            f.matches_key(**ENTRY)  # type: ignore[arg-type]
            f.matches_row(ROW)


# --- help text and purity ---------------------------------------------------------------


def test_help_text_fits_the_help_screen() -> None:
    lines = HELP_TEXT.splitlines()
    assert len(lines) <= 20
    assert max(len(line) for line in lines) <= 76


@pytest.mark.parametrize("word", [*FIELDS.split(", "), "calls", "!", "Escape", ERRORS_ONLY])
def test_help_text_mentions(word: str) -> None:
    assert word in HELP_TEXT


def test_imports_neither_bcc_nor_textual() -> None:
    code = (
        "import sys, tracing.query.syscall_filter, tracing.query.connection_filter\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('bcc', 'textual')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
