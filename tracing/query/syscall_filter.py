"""The keyboard filter language of the live syscall view (pure Python: no bcc, no Textual).

A filter is whitespace-separated terms, all of which must hold. KEY terms (a bare word, name,
nr, pid, tid, comm) select the traced (pid, tid, syscall) entries before the view groups
them; METRIC terms (count, errors, err%, rate and the durations) test each grouped row. The
split matters: `pid=42 errors>0` grouped by syscall keeps pid 42's syscalls that failed,
which testing `pid` on a row grouped across processes could not express.

The splitting, quotes, `!`, bounds, value checks and messages are shared with the
connections view's language (tracing.query.terms). Each term compiles once into a
predicate. See docs/filters.md for the user's view.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass

from tracing.query.terms import (
    COMPARE,
    Chars,
    FilterError,
    Language,
    Predicate,
    PredicateBuilder,
    Term,
    check_term,
    comparison,
    duration_predicate,
    int_predicate,
    parse_term,
    parse_terms,
    shown,
    text_predicate,
)

# What the TUI's `e` key applies: errors other than the expected EAGAIN, EINPROGRESS and
# EINTR (tracing/model/expected_errors.py), which `errors` still counts, as strace does.
ERRORS_ONLY = "unexpected>0"

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

_OPS_BY_KIND = {
    "name": ("=", "!=", "~"),
    "comm": ("=", "!=", "~"),
    "int": ("=", "!="),
    "count": tuple(COMPARE),
    "percent": tuple(COMPARE),
    "duration": tuple(COMPARE),
}

_COUNT_SCALE = {"": 1, "k": 1_000, "K": 1_000, "M": 1_000_000}
_COUNT_RE = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)([kKM]?)")
_PERCENT_RE = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)%?")


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

    def matches_key(self, *, name: str, nr: int, pid: int, tid: int, comm: str,
                    thread_comm: str | None = None) -> bool:
        """True when the (pid, tid, syscall) entry passes every KEY term. `comm` terms test
        the process's name and the thread's own (`thread_comm`, when it has one): `comm=`
        holds when either is the name, `comm!=` when neither is."""
        if not self.key_terms:
            return True
        comms = (comm,) if thread_comm is None or thread_comm == comm else (comm, thread_comm)
        entry = {"name": name, "nr": nr, "pid": pid, "tid": tid, "comm": comms}
        return all(term.holds(entry[term.key]) for term in self.key_terms)

    def matches_row(self, metrics: Mapping[str, object]) -> bool:
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
    # _parse_term is looked up at each call: tests count the terms it parses.
    for term in parse_terms("syscall", text, _parse_term):
        is_key = term.field == "word" or _FIELDS[term.field][0] in _KEY_KINDS
        (key_terms if is_key else metric_terms).append(term)
    return Filter(text, tuple(key_terms), tuple(metric_terms))


def _parse_term(start: int, chars: Chars) -> Term:
    return parse_term(start, chars, _word_term, _field_term)


def _word_term(word: str, negated: bool, start: int) -> Term:
    if not word:
        raise FilterError(f'empty quotes at {start}: put a name between them, e.g. "read"', start)
    needle = word.lower()
    return Term("word", "contains", word, negated, start, "name", lambda v: needle in v.lower())


def _field_term(name: str, op: str, value: str, negated: bool, start: int) -> Term:
    kind = check_term(_SYSCALL_LANGUAGE, name, op, value, start)
    key = _FIELDS[name][1]
    test = _PREDICATE_BUILDERS[kind](name, op, value, start)
    canonical = "count" if name == "calls" else name
    return Term(canonical, op, value, negated, start, key, test)


def _example(name: str, op: str) -> str:
    examples = {
        "name": "name=read", "comm": "comm=nginx", "pid": "pid=42", "tid": "tid=42",
        "nr": "nr=0", "count": "count>100", "calls": "calls>100", "errors": "errors>0",
        "unexpected": "unexpected>0", "err%": "err%>5", "rate": "rate>1000",
    }  # fmt: skip
    if op == "~":
        return f"{name}~^read" if name == "name" else f"{name}~^py"
    return examples.get(name, f"{name}>1ms")  # the rest are durations


def _count_predicate(name: str, op: str, value: str, start: int) -> Predicate:
    m = _COUNT_RE.fullmatch(value)
    if not m:
        raise FilterError(
            f"bad number '{shown(value)}' for {name} at {start}: use a number with "
            f"optional k or M, e.g. {_example(name, op)}",
            start,
        )
    return comparison(op, float(m.group(1)) * _COUNT_SCALE[m.group(2)])


def _percent_predicate(name: str, op: str, value: str, start: int) -> Predicate:
    m = _PERCENT_RE.fullmatch(value)
    if not m:
        raise FilterError(
            f"bad percentage '{shown(value)}' for {name} at {start}: use a number, e.g. err%>5",
            start,
        )
    return comparison(op, float(m.group(1)))


def _comm_predicate(name: str, op: str, value: str, start: int) -> Predicate:
    """Over an entry's names (its process's, its thread's): either holds; `!=`: neither is.
    Remembered per pair of names, as searcher() remembers each text: a table asks about the
    same few for each of its entries."""
    negate = op == "!="
    holds = text_predicate(name, "=" if negate else op, value, start)

    @functools.lru_cache(maxsize=512)
    def test(names: tuple[str, ...]) -> bool:
        return any(holds(n) for n in names) != negate

    return test


_PREDICATE_BUILDERS: dict[str, PredicateBuilder] = {
    "name": text_predicate,
    "comm": _comm_predicate,
    "int": int_predicate,
    "count": _count_predicate,
    "percent": _percent_predicate,
    "duration": duration_predicate,
}

_SYSCALL_LANGUAGE = Language(
    kinds={name: kind for name, (kind, _) in _FIELDS.items()},
    ops=_OPS_BY_KIND,
    field_list=_FIELD_LIST,
    nouns={"name": "name", "comm": "name", "duration": "duration"},
    example=_example,
)
