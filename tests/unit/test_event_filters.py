"""The event log's filter language (tracing.query.event_filter): every field, its operators,
"either" fields, negation, and the one-line messages for bad input."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tracing.query.event_filter import EVENT_HELP, parse_event_filter, path_term
from tracing.query.terms import MAX_FILTER_CHARS, FilterError


@dataclass(frozen=True)
class Ev:
    pid: int = 42
    tid: int = 43
    comm: str = "app"
    thread_comm: str = "app"  # the thread's own name: the process's unless it has one
    name: str = "openat"
    paths: tuple[str, ...] = ("/etc/app.conf",)
    addr: str = ""
    fds: tuple[int, ...] = ()
    ret: int = -1
    errno: str = "ENOENT"
    duration_ns: int = 12_000


OPEN_FAIL = Ev()
READ = Ev(name="read", paths=("/var/log/x.log",), fds=(3,), ret=512, errno="")
CONNECT = Ev(name="connect", comm="curl", thread_comm="curl", paths=(), fds=(5,), ret=-1,
             errno="ECONNREFUSED",
             addr='{sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("127.0.0.1")}')
OPEN_OK = Ev(paths=("/etc/passwd",), fds=(3,), ret=3, errno="", duration_ns=2_000_000)
EVENTS = [OPEN_FAIL, READ, CONNECT, OPEN_OK]


def kept(text: str) -> list[Ev]:
    flt = parse_event_filter(text)
    return [e for e in EVENTS if flt.matches(e)]


@pytest.mark.parametrize(("text", "expected"), [
    ("", EVENTS),
    ("path~app", [OPEN_FAIL]),
    ("path~^/etc/", [OPEN_FAIL, OPEN_OK]),
    ("path=/etc/passwd", [OPEN_OK]),
    ("path!=/etc/passwd", [OPEN_FAIL, READ, CONNECT]),
    ("fd=3", [READ, OPEN_OK]),
    ("fd!=3", [OPEN_FAIL, CONNECT]),
    ("ret=-1", [OPEN_FAIL, CONNECT]),
    ("ret>0", [READ, OPEN_OK]),
    ("ret>=512", [READ]),
    ("errno=ENOENT", [OPEN_FAIL]),
    ("errno=enoent", [OPEN_FAIL]),
    ("errno!=ENOENT", [READ, CONNECT, OPEN_OK]),
    ("addr~443", [CONNECT]),
    ("addr~127\\.0", [CONNECT]),
    ("name=openat", [OPEN_FAIL, OPEN_OK]),
    ("name~^(read|connect)$", [READ, CONNECT]),
    ("comm=curl", [CONNECT]),
    ("pid=42 tid=43", EVENTS),
    ("duration>1ms", [OPEN_OK]),
    ("open", [OPEN_FAIL, OPEN_OK]),
    ("log", [READ]),
    ("!errno=ENOENT ret=-1", [CONNECT]),
    ("errno=ERESTARTSYS", []),
])
def test_each_field_keeps_exactly_the_matching_events(text: str, expected: list[Ev]) -> None:
    assert kept(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("fd=x", "bad number 'x' for fd at 0: use a whole number, e.g. fd=42"),
    ("ret=one", "bad number 'one' for ret at 0: use a whole number, e.g. ret=-1 (failed) or "
                "ret>0"),
    ("errno=ENOPE", "unknown errno 'ENOPE' for errno at 0: use an errno name, e.g. "
                    "errno=ENOENT"),
    ("path>3", "bad operator '>' for path at 0: use =, != or ~"),
    ("fd>3", "bad operator '>' for fd at 0: use = or !="),
    ("addr=", "'=' needs an address at 0: e.g. addr~443"),
    ("path~(", "invalid regex '(' for path at 0: missing ), unterminated subpattern"),
    ("size=3", "unknown field 'size' at 0: use name, pid, tid, comm, path, fd, ret, errno, "
               "addr, duration"),
    ('path="x', 'unterminated quote at 0: add the closing "'),
])
def test_bad_terms_say_what_is_wrong_in_one_line(text: str, message: str) -> None:
    with pytest.raises(FilterError) as err:
        parse_event_filter(text)
    assert err.value.message == message


def test_a_pasted_megabyte_is_refused_before_parsing() -> None:
    with pytest.raises(FilterError) as err:
        parse_event_filter("path~a " * 200_000)
    assert err.value.message == (f"the filter is 1,400,000 characters long; the limit is "
                                 f"{MAX_FILTER_CHARS:,}: shorten it (Esc clears it)")


def test_a_pasted_escape_sequence_is_shown_as_data() -> None:
    with pytest.raises(FilterError) as err:
        parse_event_filter("fd=\x1b]0;x\x07")
    assert "\x1b" not in err.value.message and "\\x1b" in err.value.message


@pytest.mark.parametrize(("path", "term"), [
    ("/etc/passwd", "path=/etc/passwd"),
    ("/tmp/a b", 'path="/tmp/a b"'),
    ('/tmp/say "hi"', "path='/tmp/say \"hi\"'"),
])
def test_path_term_picks_exactly_that_path(path: str, term: str) -> None:
    assert path_term(path) == term
    flt = parse_event_filter(term)
    assert flt.matches(Ev(paths=(path,)))
    assert not flt.matches(Ev(paths=(path + "x",)))


def test_the_help_names_every_new_field() -> None:
    for name in ("path~", "fd=", "ret=", "errno=", "addr~"):
        assert name in EVENT_HELP
