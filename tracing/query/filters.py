"""The keyboard filter language of the live syscall view (pure Python: no bcc, no Textual).

A filter is whitespace-separated terms, all of which must hold. KEY terms (a bare word, name,
nr, pid, tid, comm) select the traced (pid, tid, syscall) entries before the view groups
them; METRIC terms (count, errors, err%, rate and the durations) test each grouped row. The
split matters: `pid=42 errors>0` grouped by syscall keeps pid 42's syscalls that failed,
which testing `pid` on a row grouped across processes could not express.

The connections view speaks the same language over TCP connections, with its own fields
(`parse_connection_filter`): the splitting, quotes, `!`, value checks and messages are shared.

The TUI parses at each key and applies the filter once typing pauses, and a person may
paste anything: a filter is at most
MAX_FILTER_CHARS long (checked before any other work, so a pasted megabyte costs nothing),
a regex at most MAX_REGEX_CHARS, and parsing is one pass over the text. Each term compiles
once into a predicate, and terms already parsed are reused while the person types on
(typing at the end re-parses only the last term). The first bad term is reported as a
`FilterError` (never anything else) with its position. See docs/filters.md for the user's
view.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import operator
import re
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from tracing.boundary.display_text import sanitize
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
from tracing.model.units import parse_duration_ns

# What the TUI's `e` key applies: errors other than the expected EAGAIN, EINPROGRESS and
# EINTR (tracing/model/expected_errors.py), which `errors` still counts, as strace does.
ERRORS_ONLY = "unexpected>0"

# A filter is typed by a person: 1,000 characters hold dozens of terms. The bound keeps every
# parse (and the message about it) small whatever is pasted: a 33,000-character paste once
# froze the view for 100 s, parsed again at each of its keystrokes.
MAX_FILTER_CHARS = 1_000
# re compiles in time and memory that grow with the pattern (and recurses on nesting).
MAX_REGEX_CHARS = 256

HELP_TEXT = """\
Filter: terms separated by spaces, all must match; empty shows everything.
  read           syscall name contains "read" (any case)
  name=read      exact name               name~^(read|write)$  regex on name
  pid=42  tid=43  nr=0  comm=nginx  comm~^py  comm="my prog"  (exact)
  count>=10k  calls>100  errors>0  err%>5  rate>1000   (k and M suffixes)
  total>2s  avg<=250us  p50  p95  p99>1ms  max>1s      (ns, us, ms, s)
  operators: = != > >= < <=       a leading ! negates: !read  !errors>0
Name, nr, pid, tid and comm pick the traced entries before rows are grouped;
the other fields test each grouped row. By syscall, `pid=42 errors>0` shows
the syscalls of pid 42 that failed at least once.
  unexpected>0   errors but EAGAIN, EINPROGRESS, EINTR (normal by design)
  e errors only (unexpected>0)  Escape clears  bad text keeps last filter"""

# Canonical field -> (kind, key). The key is the matches_key() argument for key fields and
# the metrics mapping key for metric fields; `calls` is an alias of `count`.
_FIELDS: dict[str, tuple[str, str]] = {
    "name": ("name", "name"),
    "pid": ("int", "pid"),
    "tid": ("int", "tid"),
    "comm": ("comm", "comm"),
    "nr": ("int", "nr"),
    "count": ("count", "count"),
    "calls": ("count", "count"),
    "errors": ("count", "errors"),
    "unexpected": ("count", "unexpected"),
    "err%": ("percent", "err_pct"),
    "rate": ("count", "rate"),
    "total": ("duration", "total_ns"),
    "avg": ("duration", "avg_ns"),
    "p50": ("duration", "p50_ns"),
    "p95": ("duration", "p95_ns"),
    "p99": ("duration", "p99_ns"),
    "max": ("duration", "max_ns"),
}
_KEY_KINDS = frozenset({"name", "comm", "int"})
_FIELD_LIST = ("name, pid, tid, comm, nr, count, errors, unexpected, err%, rate, total, avg, "
               "p50, p95, p99, max")

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
_OPS_BY_KIND = {
    "name": ("=", "!=", "~"),
    "comm": ("=", "!=", "~"),
    "int": ("=", "!="),
    "count": tuple(_COMPARE),
    "percent": tuple(_COMPARE),
    "duration": tuple(_COMPARE),
}
_OP_CHARS = frozenset("=!<>~")
_QUOTES = "\"'"

_COUNT_SCALE = {"": 1, "k": 1_000, "K": 1_000, "M": 1_000_000}
_COUNT_RE = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)([kKM]?)")
_PERCENT_RE = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)%?")
_INT_RE = re.compile(r"[0-9]+")


class FilterError(ValueError):
    """A filter that does not parse: a one-line message and where the bad term starts."""

    def __init__(self, message: str, position: int) -> None:
        # The message quotes what was typed (or pasted): shown as data, on one line.
        message = sanitize(message)
        super().__init__(message)
        self.message = message
        self.position = position  # index in the text of the bad term (its `!`, if negated)


@dataclass(frozen=True)
class Term:
    """One parsed term. `field` is canonical ("word" for a bare word, "count" for calls)."""

    field: str
    op: str  # "contains" for a bare word, else the operator as typed
    value: str  # the value as typed, quotes removed
    negated: bool
    position: int
    key: str  # matches_key() argument, metrics mapping key, or connection field
    test: Callable[[Any], bool] = dataclasses.field(repr=False, compare=False)

    def holds(self, value: Any) -> bool:
        return self.test(value) != self.negated


@dataclass(frozen=True)
class Filter:
    """A parsed filter; build it with parse_filter(). Equal filters have equal text."""

    text: str
    key_terms: tuple[Term, ...] = dataclasses.field(repr=False, compare=False)
    metric_terms: tuple[Term, ...] = dataclasses.field(repr=False, compare=False)

    @property
    def is_empty(self) -> bool:
        return not self.key_terms and not self.metric_terms

    @property
    def has_key_terms(self) -> bool:
        return bool(self.key_terms)

    @property
    def has_metric_terms(self) -> bool:
        return bool(self.metric_terms)

    def matches_key(self, *, name: str, nr: int, pid: int, tid: int, comm: str) -> bool:
        """True when the (pid, tid, syscall) entry passes every KEY term."""
        if not self.key_terms:
            return True
        entry = {"name": name, "nr": nr, "pid": pid, "tid": tid, "comm": comm}
        return all(term.holds(entry[term.key]) for term in self.key_terms)

    def matches_row(self, metrics: Mapping[str, float]) -> bool:
        """True when a grouped row passes every METRIC term.

        A term whose metric is missing from `metrics` (or NaN) does not match, negated or
        not: a value that cannot be compared must not let a row through by accident.
        """
        for term in self.metric_terms:
            value = metrics.get(term.key)
            if value is None or value != value:  # value != value: NaN
                return False
            if not term.holds(value):
                return False
        return True


def parse_filter(text: str) -> Filter:
    """Parse the filter text; raises FilterError naming the first bad term and its position."""
    key_terms: list[Term] = []
    metric_terms: list[Term] = []
    for start, raw, chars in _split_terms(text):
        term = _TERMS.get(("syscall", start, raw), functools.partial(_parse_term, start, chars))
        is_key = term.field == "word" or _FIELDS[term.field][0] in _KEY_KINDS
        (key_terms if is_key else metric_terms).append(term)
    return Filter(text, tuple(key_terms), tuple(metric_terms))


# A term is a list of (char, quoted) pairs: quoted characters are never operators or `!`,
# which is how `comm="a=b c"` keeps its `=` and its space inside the value.
_Chars = list[tuple[str, bool]]


def check_length(text: str) -> None:
    """Refuse a filter longer than MAX_FILTER_CHARS before looking at it any further."""
    if len(text) > MAX_FILTER_CHARS:
        raise FilterError(f"the filter is {len(text):,} characters long; the limit is "
                          f"{MAX_FILTER_CHARS:,}: shorten it (Esc clears it)", 0)


def _split_terms(text: str) -> list[tuple[int, str, _Chars]]:
    """Split at unquoted whitespace, removing quotes; each term comes with its start index
    and its text as typed (quotes included: the key of the parsed-term cache)."""
    check_length(text)
    terms: list[tuple[int, str, _Chars]] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start, chars = i, []
        while i < n and not text[i].isspace():
            ch = text[i]
            if ch in _QUOTES:
                end = text.find(ch, i + 1)
                if end < 0:
                    raise FilterError(f"unterminated quote at {start}: add the closing {ch}", start)
                chars.extend((c, True) for c in text[i + 1 : end])
                i = end + 1
            else:
                chars.append((ch, False))
                i += 1
        terms.append((start, text[start:i], chars))
    return terms


class _TermCache:
    """Parsed terms by (language, start, text as typed), the newest few hundred: while a
    person types at the end of a filter, the terms before the cursor parse once. A term's
    start is in the key because its messages and position name it."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._terms: OrderedDict[tuple[str, int, str], Term] = OrderedDict()

    def get(self, key: tuple[str, int, str], parse: Callable[[], Term]) -> Term:
        term = self._terms.get(key)
        if term is None:
            term = parse()  # a FilterError propagates, and nothing is kept
            self._terms[key] = term
            if len(self._terms) > self._size:
                self._terms.popitem(last=False)
        else:
            self._terms.move_to_end(key)
        return term


# Up to MAX_FILTER_CHARS / 2 terms in a filter: the cache holds a whole one and more.
_TERMS = _TermCache(1024)


class _Parts(NamedTuple):
    """A term taken apart, before any language gives it a meaning."""

    negated: bool
    name: str | None  # the field name in lower case; None for a bare word
    op: str
    value: str  # the value, or the bare word


def _term_parts(start: int, chars: _Chars) -> _Parts:
    # A leading `!=` is an operator with its field missing, not a negated `=...` term.
    negated = chars[:1] == [("!", False)] and chars[1:2] != [("=", False)]
    if negated:
        chars = chars[1:]
        if not chars:
            raise FilterError(f"'!' needs a term after it at {start}: e.g. !read", start)
        if chars[0] == ("!", False):
            raise FilterError(f"'!!' at {start}: use one '!' to negate a term", start)
    op_at = next((i for i, (c, q) in enumerate(chars) if c in _OP_CHARS and not q), None)
    if op_at is None:
        return _Parts(negated, None, "", "".join(c for c, _ in chars))
    op_end = op_at
    while op_end < len(chars) and chars[op_end][0] in _OP_CHARS and not chars[op_end][1]:
        op_end += 1
    name = "".join(c for c, _ in chars[:op_at]).lower()
    op = "".join(c for c, _ in chars[op_at:op_end])
    value = "".join(c for c, _ in chars[op_end:])
    return _Parts(negated, name, op, value)


def _parse_term(start: int, chars: _Chars) -> Term:
    negated, name, op, value = _term_parts(start, chars)
    if name is None:
        return _word_term(value, negated, start)
    return _field_term(name, op, value, negated, start)


@dataclass(frozen=True)
class _Language:
    """What one view's filter accepts: each field's kind, each kind's operators, and the
    words its messages use. The syscall view and the connections view share everything
    else (splitting, quotes, `!`, the value checks and the messages' form)."""

    kinds: Mapping[str, str]  # field -> kind
    ops: Mapping[str, tuple[str, ...]]  # kind -> operators
    field_list: str
    nouns: Mapping[str, str]  # kind -> what `=` wants ("number" when missing)
    example: Callable[[str, str], str]  # (field, op) -> an example term


def _check_term(lang: _Language, name: str, op: str, value: str, start: int) -> str:
    """The field's kind, once the field, the operator and a value are there."""
    if not name:
        raise FilterError(
            f"missing field before '{_shown(op)}' at {start}: use {lang.field_list}", start
        )
    if name not in lang.kinds:
        raise FilterError(
            f"unknown field '{_shown(name)}' at {start}: use {lang.field_list}", start
        )
    kind = lang.kinds[name]
    allowed = lang.ops[kind]
    if op not in allowed:
        raise FilterError(
            f"bad operator '{_shown(op)}' for {name} at {start}: use {_or_list(allowed)}", start
        )
    if not value:
        noun = "regex" if op == "~" else lang.nouns.get(kind, "number")
        article = "an" if noun[0] in "aeiou" else "a"
        raise FilterError(
            f"'{op}' needs {article} {noun} at {start}: e.g. {lang.example(name, op)}", start
        )
    return kind


def _word_term(word: str, negated: bool, start: int) -> Term:
    if not word:
        raise FilterError(f'empty quotes at {start}: put a name between them, e.g. "read"', start)
    needle = word.lower()
    return Term("word", "contains", word, negated, start, "name", lambda v: needle in v.lower())


def _field_term(name: str, op: str, value: str, negated: bool, start: int) -> Term:
    kind = _check_term(_SYSCALL_LANGUAGE, name, op, value, start)
    key = _FIELDS[name][1]
    test = _PREDICATE_BUILDERS[kind](name, op, value, start)
    canonical = "count" if name == "calls" else name
    return Term(canonical, op, value, negated, start, key, test)


def _shown(text: str) -> str:
    """The user's text for a one-line message: a pasted megabyte must not become the line,
    nor a pasted escape sequence act on the terminal."""
    return sanitize(text, 24)


def _or_list(ops: tuple[str, ...]) -> str:
    return ", ".join(ops[:-1]) + " or " + ops[-1]


def _example(name: str, op: str) -> str:
    examples = {
        "name": "name=read", "comm": "comm=nginx", "pid": "pid=42", "tid": "tid=42",
        "nr": "nr=0", "count": "count>100", "calls": "calls>100", "errors": "errors>0",
        "unexpected": "unexpected>0", "err%": "err%>5", "rate": "rate>1000",
    }  # fmt: skip
    if op == "~":
        return f"{name}~^read" if name == "name" else f"{name}~^py"
    return examples.get(name, f"{name}>1ms")  # the rest are durations


def _text_predicate(name: str, op: str, value: str, start: int) -> Callable[[Any], bool]:
    # Syscall names are lower case, so `name=` ignores case; a comm is whatever the program
    # set, so `comm=` and `comm~` respect it (a regex can opt out with (?i)).
    ignore_case = name == "name"
    if op == "~":
        pattern = _compile_regex(value, re.IGNORECASE if ignore_case else 0, name, start)
        return _searcher(pattern)
    wanted = value.lower() if ignore_case else value
    equal = op == "="
    if ignore_case:
        return lambda v: (v.lower() == wanted) == equal
    return lambda v: (v == wanted) == equal


def _compile_regex(value: str, flags: int, name: str, start: int) -> re.Pattern[str]:
    if len(value) > MAX_REGEX_CHARS:
        raise FilterError(f"regex for {name} at {start} is {len(value):,} characters long; "
                          f"the limit is {MAX_REGEX_CHARS}: shorten it", start)
    try:
        with warnings.catch_warnings():
            # re warns (FutureWarning) about some patterns, e.g. "[[": a warning printed on
            # the terminal under the TUI, at each keystroke. The pattern still compiles.
            warnings.simplefilter("ignore")
            return re.compile(value, flags)
    # re raises OverflowError for huge repeats and RecursionError for deep nesting, not only
    # re.error; the user is mid-keystroke, so every one of them is just a bad regex.
    except re.error as exc:
        reason = exc.msg
    except (OverflowError, RecursionError) as exc:
        reason = str(exc)
    raise FilterError(f"invalid regex '{_shown(value)}' for {name} at {start}: {reason}", start)


def _searcher(pattern: re.Pattern[str]) -> Callable[[str], bool]:
    """pattern.search, remembered per text: a table asks about the same few names and
    addresses at every redraw, and a pattern that backtracks hard then costs once per name."""

    @functools.lru_cache(maxsize=512)
    def found(text: str) -> bool:
        return pattern.search(text) is not None

    return found


def _int_predicate(name: str, op: str, value: str, start: int) -> Callable[[Any], bool]:
    # pids, tids and numbers are small; the cap also keeps int() off its ~4300-digit ValueError.
    if not _INT_RE.fullmatch(value) or len(value) > 30:
        raise FilterError(
            f"bad number '{_shown(value)}' for {name} at {start}: use a whole number, e.g. "
            f"{_example(name, op)}",
            start,
        )
    return _comparison(op, int(value))


def _count_predicate(name: str, op: str, value: str, start: int) -> Callable[[Any], bool]:
    m = _COUNT_RE.fullmatch(value)
    if not m:
        raise FilterError(
            f"bad number '{_shown(value)}' for {name} at {start}: use a number with "
            f"optional k or M, e.g. {_example(name, op)}",
            start,
        )
    return _comparison(op, float(m.group(1)) * _COUNT_SCALE[m.group(2)])


def _percent_predicate(name: str, op: str, value: str, start: int) -> Callable[[Any], bool]:
    m = _PERCENT_RE.fullmatch(value)
    if not m:
        raise FilterError(
            f"bad percentage '{_shown(value)}' for {name} at {start}: use a number, e.g. err%>5",
            start,
        )
    return _comparison(op, float(m.group(1)))


def _duration_predicate(name: str, op: str, value: str, start: int) -> Callable[[Any], bool]:
    try:
        ns = parse_duration_ns(value)
    # OverflowError: a digit string too long for a float rounds to inf, which has no int.
    except (ValueError, OverflowError):
        raise FilterError(
            f"bad duration '{_shown(value)}' for {name} at {start}: use a number with "
            f"ns, us, ms or s, e.g. {name}>1ms",
            start,
        ) from None
    return _comparison(op, ns)


def _comparison(op: str, threshold: float) -> Callable[[Any], bool]:
    compare = _COMPARE[op]
    return lambda v: compare(v, threshold)


_PREDICATE_BUILDERS: dict[str, Callable[[str, str, str, int], Callable[[Any], bool]]] = {
    "name": _text_predicate,
    "comm": _text_predicate,
    "int": _int_predicate,
    "count": _count_predicate,
    "percent": _percent_predicate,
    "duration": _duration_predicate,
}

_SYSCALL_LANGUAGE = _Language(
    kinds={name: kind for name, (kind, _) in _FIELDS.items()},
    ops=_OPS_BY_KIND,
    field_list=_FIELD_LIST,
    nouns={"name": "name", "comm": "name", "duration": "duration"},
    example=_example,
)


# -- the connections view ----------------------------------------------------------------------
#
# The same language over TCP connections: every term tests one connection, so there is no
# key/metric split. Fields that name two things (`port`: local or remote; `addr`; the
# container's name or id) hold when either does, and their `!=` is the negation of `=`
# ("neither is"), since "either is not 443" would hold for nearly every connection.

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
_TEXT_OPS = ("=", "!=", "~")
_CONN_OPS = {
    "port": tuple(_COMPARE), "addr": _TEXT_OPS, "container": _TEXT_OPS, "state": _TEXT_OPS,
    "dir": ("=", "!="), "result": ("=", "!="), "int": ("=", "!="), "comm": _TEXT_OPS,
    "duration": tuple(_COMPARE),
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


def _conn_example(name: str, op: str) -> str:
    if op == "~":
        return _CONN_REGEX_EXAMPLES.get(name, f"{name}~^x")
    return _CONN_EXAMPLES.get(name, f"{name}=1")


_CONNECTION_LANGUAGE = _Language(kinds={name: kind for name, (kind, _) in _CONN_FIELDS.items()},
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
    terms = [_TERMS.get(("connection", start, raw), functools.partial(_parse_conn_term, start,
                                                                     chars))
             for start, raw, chars in _split_terms(text)]
    return ConnectionFilter(text, tuple(terms))


def _parse_conn_term(start: int, chars: _Chars) -> Term:
    negated, name, op, value = _term_parts(start, chars)
    if name is None:
        return _conn_word_term(value, negated, start)
    return _conn_field_term(name, op, value, negated, start)


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
    kind = _check_term(_CONNECTION_LANGUAGE, name, op, value, start)
    values = _CONN_FIELDS[name][1]
    if op == "!=":  # "neither is": see above
        equal = _CONN_PREDICATES[kind](name, "=", value, start)

        def test(at: _At) -> bool:
            return not any(equal(v) for v in values(at))
    else:
        holds = _CONN_PREDICATES[kind](name, op, value, start)

        def test(at: _At) -> bool:
            return any(holds(v) for v in values(at))
    return Term(name, op, value, negated, start, name, test)


def _port_predicate(name: str, op: str, value: str, start: int) -> Callable[[Any], bool]:
    if not _INT_RE.fullmatch(value) or len(value) > 5 or int(value) > 65535:
        raise FilterError(f"bad port '{_shown(value)}' for {name} at {start}: use a number "
                          f"from 0 to 65535, e.g. {_conn_example(name, op)}", start)
    return _comparison(op, int(value))


def _addr_predicate(name: str, op: str, value: str, start: int) -> Callable[[Any], bool]:
    if op == "~":
        pattern = _compile_regex(value, re.IGNORECASE, name, start)
        return _searcher(pattern)
    try:
        # A network (10.0.0.0/8) holds its addresses; an address equals itself however it
        # is written (::1 is 0:0::1).
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise FilterError(f"bad address '{_shown(value)}' for {name} at {start}: use an IP "
                          f"address or a network, e.g. addr=10.0.0.1, addr=10.0.0.0/8, "
                          f"addr=::1", start) from None
    return lambda v: (ip := _ip(v)) is not None and ip in network


@functools.lru_cache(maxsize=4096)
def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _container_predicate(name: str, op: str, value: str, start: int) -> Callable[[Any], bool]:
    # Values are (name, id): the name exactly, or the id by a prefix as `docker ps` shows.
    if op == "~":
        pattern = _compile_regex(value, 0, name, start)
        found = _searcher(pattern)
        return lambda v: any(found(t) for t in v if t)
    prefix = value.lower()
    return lambda v: v[0] == value or (bool(v[1]) and v[1].startswith(prefix))


def _state_predicate(name: str, op: str, value: str, start: int) -> Callable[[Any], bool]:
    if op == "~":
        pattern = _compile_regex(value, re.IGNORECASE, name, start)
        return _searcher(pattern)
    wanted = value.upper().replace("-", "_")  # ss writes TIME-WAIT
    if wanted not in TCP_STATE_NAMES:
        raise FilterError(f"unknown state '{_shown(value)}' for {name} at {start}: use "
                          f"{', '.join(sorted(TCP_STATE_NAMES))}", start)
    return lambda v: v == wanted


def _dir_predicate(name: str, op: str, value: str, start: int) -> Callable[[Any], bool]:
    wanted = _DIRECTIONS.get(value.lower())
    if wanted is None:
        raise FilterError(f"bad direction '{_shown(value)}' for {name} at {start}: use in "
                          f"(accepted) or out (connected)", start)
    return lambda v: v == wanted


def _result_predicate(name: str, op: str, value: str, start: int) -> Callable[[Any], bool]:
    word = value.lower()
    if word == RESULT_FAILED:  # any failure, not only those without a word of their own
        return lambda c: c.failed
    if word in _RESULT_WORDS:
        return lambda c: c.result == word
    if _ERRNO_RE.fullmatch(value.upper()):
        errno_name = value.upper()
        return lambda c: c.error == errno_name
    raise FilterError(f"bad result '{_shown(value)}' for {name} at {start}: use ok, refused, "
                      f"timeout, reset, unreachable, failed or an errno name (ECONNRESET)",
                      start)


_CONN_PREDICATES: dict[str, Callable[[str, str, str, int], Callable[[Any], bool]]] = {
    "port": _port_predicate,
    "addr": _addr_predicate,
    "container": _container_predicate,
    "state": _state_predicate,
    "dir": _dir_predicate,
    "result": _result_predicate,
    "int": _int_predicate,
    "comm": _text_predicate,
    "duration": _duration_predicate,
}
