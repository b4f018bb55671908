"""The keyboard filter language of the live syscall view (pure Python: no bcc, no Textual).

A filter is whitespace-separated terms, all of which must hold. KEY terms (a bare word, name,
nr, pid, tid, comm) select the traced (pid, tid, syscall) entries before the view groups
them; METRIC terms (count, errors, err%, rate and the durations) test each grouped row. The
split matters: `pid=42 errors>0` grouped by syscall keeps pid 42's syscalls that failed,
which testing `pid` on a row grouped across processes could not express.

`parse_filter` runs on every keystroke, so it compiles each term once into a predicate and
reports the first bad term as a `FilterError` (never anything else) with its position.
See docs/filters.md for the user's view.
"""

from __future__ import annotations

import dataclasses
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tracing.units import parse_duration_ns

ERRORS_ONLY = "errors>0"  # what the TUI's `e` key applies

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
  e errors only (errors>0)  Escape clears  bad text keeps the last filter"""

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
_FIELD_LIST = "name, pid, tid, comm, nr, count, errors, err%, rate, total, avg, p50, p95, p99, max"

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
    key: str  # matches_key() argument or metrics mapping key
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
    for start, chars in _split_terms(text):
        term = _parse_term(start, chars)
        is_key = term.field == "word" or _FIELDS[term.field][0] in _KEY_KINDS
        (key_terms if is_key else metric_terms).append(term)
    return Filter(text, tuple(key_terms), tuple(metric_terms))


# A term is a list of (char, quoted) pairs: quoted characters are never operators or `!`,
# which is how `comm="a=b c"` keeps its `=` and its space inside the value.
_Chars = list[tuple[str, bool]]


def _split_terms(text: str) -> list[tuple[int, _Chars]]:
    """Split at unquoted whitespace, removing quotes; each term comes with its start index."""
    terms: list[tuple[int, _Chars]] = []
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
        terms.append((start, chars))
    return terms


def _parse_term(start: int, chars: _Chars) -> Term:
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
        return _word_term("".join(c for c, _ in chars), negated, start)
    op_end = op_at
    while op_end < len(chars) and chars[op_end][0] in _OP_CHARS and not chars[op_end][1]:
        op_end += 1
    name = "".join(c for c, _ in chars[:op_at]).lower()
    op = "".join(c for c, _ in chars[op_at:op_end])
    value = "".join(c for c, _ in chars[op_end:])
    return _field_term(name, op, value, negated, start)


def _word_term(word: str, negated: bool, start: int) -> Term:
    if not word:
        raise FilterError(f'empty quotes at {start}: put a name between them, e.g. "read"', start)
    needle = word.lower()
    return Term("word", "contains", word, negated, start, "name", lambda v: needle in v.lower())


def _field_term(name: str, op: str, value: str, negated: bool, start: int) -> Term:
    if not name:
        raise FilterError(
            f"missing field before '{_shown(op)}' at {start}: use {_FIELD_LIST}", start
        )
    if name not in _FIELDS:
        raise FilterError(f"unknown field '{_shown(name)}' at {start}: use {_FIELD_LIST}", start)
    kind, key = _FIELDS[name]
    allowed = _OPS_BY_KIND[kind]
    if op not in allowed:
        raise FilterError(
            f"bad operator '{_shown(op)}' for {name} at {start}: use {_or_list(allowed)}", start
        )
    if not value:
        noun = {"name": "name", "comm": "name", "duration": "duration"}.get(kind, "number")
        noun = "regex" if op == "~" else noun
        raise FilterError(f"'{op}' needs a {noun} at {start}: e.g. {_example(name, op)}", start)
    test = _PREDICATE_BUILDERS[kind](name, op, value, start)
    canonical = "count" if name == "calls" else name
    return Term(canonical, op, value, negated, start, key, test)


def _shown(text: str) -> str:
    """The user's text for a one-line message: a pasted megabyte must not become the line."""
    return text if len(text) <= 24 else text[:23] + "…"


def _or_list(ops: tuple[str, ...]) -> str:
    return ", ".join(ops[:-1]) + " or " + ops[-1]


def _example(name: str, op: str) -> str:
    examples = {
        "name": "name=read", "comm": "comm=nginx", "pid": "pid=42", "tid": "tid=42",
        "nr": "nr=0", "count": "count>100", "calls": "calls>100", "errors": "errors>0",
        "err%": "err%>5", "rate": "rate>1000",
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
        return lambda v: pattern.search(v) is not None
    wanted = value.lower() if ignore_case else value
    equal = op == "="
    if ignore_case:
        return lambda v: (v.lower() == wanted) == equal
    return lambda v: (v == wanted) == equal


def _compile_regex(value: str, flags: int, name: str, start: int) -> re.Pattern[str]:
    try:
        return re.compile(value, flags)
    # re raises OverflowError for huge repeats and RecursionError for deep nesting, not only
    # re.error; the user is mid-keystroke, so every one of them is just a bad regex.
    except re.error as exc:
        reason = exc.msg
    except (OverflowError, RecursionError) as exc:
        reason = str(exc)
    raise FilterError(f"invalid regex '{_shown(value)}' for {name} at {start}: {reason}", start)


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
