"""The filter language of the connections view (pure Python: no bcc, no Textual).

The same language as the syscall view's (tracing.query.terms: splitting, quotes, `!`,
bounds, value checks and messages) over TCP connections, with fields of its own: every term
tests one connection, so there is no key/metric split. Fields that name two things (`port`:
local or remote; `addr`; the container's name or id) hold when either does, and their `!=`
is the negation of `=` ("neither is"), since "either is not 443" would hold for nearly every
connection. See docs/filters.md for the user's view.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from tracing.model.connections import (
    INBOUND,
    OUTBOUND,
    RESULT_FAILED,
    RESULT_OK,
    RESULT_REFUSED,
    RESULT_RESET,
    RESULT_TIMEOUT,
    RESULT_UNREACHABLE,
    TCP_STATES,
    Connection,
)
from tracing.query.terms import (
    COMPARE,
    INT_RE,
    TEXT_OPS,
    Chars,
    FilterError,
    Language,
    Predicate,
    PredicateBuilder,
    Term,
    comparison,
    compile_regex,
    duration_predicate,
    example_maker,
    field_term,
    int_predicate,
    parse_term,
    parse_terms,
    searcher,
    shown,
    text_predicate,
)

FAILURES_ONLY = "result=failed"  # what the connections view's `e` key applies

CONNECTION_HELP = """\
Filter: terms separated by spaces, all must match; empty shows everything.
  curl         comm, local or remote endpoint, or container contains "curl"
  port=443     local or remote port   sport=8080 (local)  dport=443 (remote)
  port<1024    ports also compare with != > >= < <=
  addr=10.0.0.1  addr=10.0.0.0/8  addr=::1  addr~^192\\.168  (either end)
  container=web  container=3f2a9c (id prefix)  container~^db
  state=established  state~WAIT  dir=in  dir=out  duration>1s  duration<5ms
  result=refused  (or timeout, reset, unreachable, ok)  result=ECONNRESET
  result=failed  any failure
  pid=42  tid=43  comm=nginx  comm~^py    a leading ! negates: !dir=in
  e failures only (result=failed)  Escape clears  bad text keeps the last"""

# A state filter naming a state the kernel does not have is a typo worth saying so.
TCP_STATE_NAMES = frozenset(TCP_STATES.values())
_DIRECTIONS = {"in": INBOUND, "inbound": INBOUND, "out": OUTBOUND, "outbound": OUTBOUND}
_RESULT_WORDS = frozenset({
    RESULT_OK, RESULT_REFUSED, RESULT_TIMEOUT, RESULT_RESET, RESULT_UNREACHABLE, RESULT_FAILED,
})
_ERRNO_RE = re.compile(r"E[A-Z0-9]+")


class _At(NamedTuple):
    """What a connection term tests: the connection, and "now" for the ones that live on."""

    conn: Connection
    now_ns: int


# field -> (kind, the values it tests: one, or two for "either" fields)
_CONN_FIELDS: dict[str, tuple[str, Callable[[_At], tuple[Any, ...]]]] = {
    "port": ("port", lambda a: (a.conn.sport, a.conn.dport)),
    "sport": ("port", lambda a: (a.conn.sport,)),
    "dport": ("port", lambda a: (a.conn.dport,)),
    "addr": ("addr", lambda a: (a.conn.saddr, a.conn.daddr)),
    "container": ("container", lambda a: ((a.conn.container_name, a.conn.container_id),)),
    "state": ("state", lambda a: (a.conn.state,)),
    "dir": ("dir", lambda a: (a.conn.direction,)),
    "result": ("result", lambda a: (a.conn,)),
    "pid": ("int", lambda a: (a.conn.pid,)),
    "tid": ("int", lambda a: (a.conn.tid,)),
    "comm": ("comm", lambda a: (a.conn.comm,)),
    "duration": ("duration", lambda a: (a.conn.duration_ns(a.now_ns),)),
}
_CONN_FIELD_LIST = ", ".join(_CONN_FIELDS)
_CONN_OPS = {
    "port": tuple(COMPARE), "addr": TEXT_OPS, "container": TEXT_OPS, "state": TEXT_OPS,
    "dir": ("=", "!="), "result": ("=", "!="), "int": ("=", "!="), "comm": TEXT_OPS,
    "duration": tuple(COMPARE),
}
_CONN_NOUNS = {"addr": "address", "container": "name or id", "state": "state",
               "dir": "direction", "result": "result", "comm": "name", "duration": "duration"}
_CONN_EXAMPLES = {
    "port": "port=443", "sport": "sport=8080", "dport": "dport=443", "addr": "addr=10.0.0.1",
    "container": "container=web", "state": "state=ESTABLISHED", "dir": "dir=out",
    "result": "result=refused", "pid": "pid=42", "tid": "tid=42", "comm": "comm=nginx",
    "duration": "duration>1s",
}
_CONN_REGEX_EXAMPLES = {"addr": r"addr~^10\.", "container": "container~^web",
                        "state": "state~WAIT", "comm": "comm~^py"}


_conn_example = example_maker(_CONN_EXAMPLES, _CONN_REGEX_EXAMPLES, "^x")


_CONNECTION_LANGUAGE = Language(kinds={name: kind for name, (kind, _) in _CONN_FIELDS.items()},
                                 ops=_CONN_OPS, field_list=_CONN_FIELD_LIST, nouns=_CONN_NOUNS,
                                 example=_conn_example)


@dataclass(frozen=True)
class ConnectionFilter:
    """A parsed connection filter; build it with parse_connection_filter()."""

    text: str
    terms: tuple[Term, ...] = dataclasses.field(repr=False, compare=False)

    @property
    def is_empty(self) -> bool:
        return not self.terms

    def matches(self, conn: Connection, now_ns: int) -> bool:
        """True when the connection passes every term; `now_ns` (monotonic) is how long the
        open ones have lived, for `duration`."""
        at = _At(conn, now_ns)
        return all(term.holds(at) for term in self.terms)


def parse_connection_filter(text: str) -> ConnectionFilter:
    """Parse a connections-view filter; raises FilterError naming the first bad term and its
    position, like parse_filter."""
    return ConnectionFilter(text, tuple(parse_terms("connection", text, _parse_conn_term)))


def _parse_conn_term(start: int, chars: Chars) -> Term:
    return parse_term(start, chars, _conn_word_term, _conn_field_term)


def _conn_word_term(word: str, negated: bool, start: int) -> Term:
    if not word:
        raise FilterError(f'empty quotes at {start}: put a word between them, e.g. "curl"',
                          start)
    needle = word.lower()

    def test(at: _At) -> bool:
        c = at.conn
        texts = (c.comm, c.local, c.remote, c.container_name, c.container_id)
        return any(needle in t.lower() for t in texts)

    return Term("word", "contains", word, negated, start, "word", test)


def _conn_field_term(name: str, op: str, value: str, negated: bool, start: int) -> Term:
    return field_term(_CONNECTION_LANGUAGE, _CONN_FIELDS, _CONN_PREDICATES, name, op, value,
                      negated, start)


def _port_predicate(name: str, op: str, value: str, start: int) -> Predicate:
    if not INT_RE.fullmatch(value) or len(value) > 5 or int(value) > 65535:
        raise FilterError(f"bad port '{shown(value)}' for {name} at {start}: use a number "
                          f"from 0 to 65535, e.g. {_conn_example(name, op)}", start)
    return comparison(op, int(value))


def _addr_predicate(name: str, op: str, value: str, start: int) -> Predicate:
    if op == "~":
        pattern = compile_regex(value, re.IGNORECASE, name, start)
        return searcher(pattern)
    try:
        # A network (10.0.0.0/8) holds its addresses; an address equals itself however it
        # is written (::1 is 0:0::1).
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise FilterError(f"bad address '{shown(value)}' for {name} at {start}: use an IP "
                          f"address or a network, e.g. addr=10.0.0.1, addr=10.0.0.0/8, "
                          f"addr=::1", start) from None
    return lambda v: (ip := _ip(v)) is not None and ip in network


@functools.lru_cache(maxsize=4096)
def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _container_predicate(name: str, op: str, value: str, start: int) -> Predicate:
    # Values are (name, id): the name exactly, or the id by a prefix as `docker ps` shows.
    if op == "~":
        pattern = compile_regex(value, 0, name, start)
        found = searcher(pattern)
        return lambda v: any(found(t) for t in v if t)
    prefix = value.lower()
    return lambda v: v[0] == value or (bool(v[1]) and v[1].startswith(prefix))


def _state_predicate(name: str, op: str, value: str, start: int) -> Predicate:
    if op == "~":
        pattern = compile_regex(value, re.IGNORECASE, name, start)
        return searcher(pattern)
    wanted = value.upper().replace("-", "_")  # ss writes TIME-WAIT
    if wanted not in TCP_STATE_NAMES:
        raise FilterError(f"unknown state '{shown(value)}' for {name} at {start}: use "
                          f"{', '.join(sorted(TCP_STATE_NAMES))}", start)
    return lambda v: v == wanted


def _dir_predicate(name: str, op: str, value: str, start: int) -> Predicate:
    wanted = _DIRECTIONS.get(value.lower())
    if wanted is None:
        raise FilterError(f"bad direction '{shown(value)}' for {name} at {start}: use in "
                          f"(accepted) or out (connected)", start)
    return lambda v: v == wanted


def _result_predicate(name: str, op: str, value: str, start: int) -> Predicate:
    word = value.lower()
    if word == RESULT_FAILED:  # any failure, not only those without a word of their own
        return lambda c: c.failed
    if word in _RESULT_WORDS:
        return lambda c: c.result == word
    if _ERRNO_RE.fullmatch(value.upper()):
        errno_name = value.upper()
        return lambda c: c.error == errno_name
    raise FilterError(f"bad result '{shown(value)}' for {name} at {start}: use ok, refused, "
                      f"timeout, reset, unreachable, failed or an errno name (ECONNRESET)",
                      start)


_CONN_PREDICATES: dict[str, PredicateBuilder] = {
    "port": _port_predicate,
    "addr": _addr_predicate,
    "container": _container_predicate,
    "state": _state_predicate,
    "dir": _dir_predicate,
    "result": _result_predicate,
    "int": int_predicate,
    "comm": text_predicate,
    "duration": duration_predicate,
}
