"""The filter language of the event log (pure Python: no bcc, no Textual).

The same language as the other views' (tracing.query.terms: splitting, quotes, `!`, bounds,
value checks and messages) over individual decoded events: every term tests one event.
Fields of its own: `path` (the path argument or the descriptor's path), `fd` (the descriptor
an event acts on or returns), `ret` (the result as strace shows it: -1 for a failure),
`errno`, `addr` (the decoded socket address) and `duration`; and the syscall view's `name`,
`pid`, `tid`, `comm`. Fields that name two things (`path`: the argument's or the
descriptor's; `fd`; `comm`: the process's name or the thread's own) hold when either does,
and their `!=` is "neither is". See docs/filters.md for the user's view.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from tracing.decode.constants import constants
from tracing.query.terms import (
    COMPARE,
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

EVENT_HELP = """\
Filter: terms separated by spaces, all must match; empty shows every event.
  open          syscall name, comm or path contains "open" (any case)
  path~app      path (argument or descriptor) matches a regex   path=/etc/passwd
  fd=3          the descriptor acted on or returned            fd!=0
  ret=-1        the result as shown (-1: failed)   ret>0  ret>=4096
  errno=ENOENT  the failure's errno name            errno!=EAGAIN
  addr~443      the decoded socket address          addr~"10\\.0\\."
  name=openat  name~^(read|write)$  pid=42  tid=43  comm=nginx  duration>1ms
  comm=NAME     the process's or the thread's name   comm!=NAME: neither
  operators: = != > >= < <= ~   a leading ! negates: !errno=EAGAIN
  s changes which events the kernel sends  Escape clears  bad text keeps the last"""

_SIGNED_INT_RE = re.compile(r"-?[0-9]+")
# A number no header names shows as E<n> where a name would be (syscall_tables.errno_name).
_UNNAMED_ERRNO_RE = re.compile(r"E[0-9]+")


class EventFacts(Protocol):
    """What an event term tests (tui/event_rows.py's LogEvent gives it)."""

    @property
    def pid(self) -> int: ...
    @property
    def tid(self) -> int: ...
    @property
    def comm(self) -> str: ...  # the process's name
    @property
    def thread_comm(self) -> str: ...  # the thread's own name (the process's: main thread)
    @property
    def name(self) -> str: ...
    @property
    def paths(self) -> tuple[str, ...]: ...  # the path argument's, the descriptor's
    @property
    def addr(self) -> str: ...
    @property
    def fds(self) -> tuple[int, ...]: ...  # the descriptor acted on, the one returned
    @property
    def ret(self) -> int: ...  # as strace shows it: -1 for a failure
    @property
    def errno(self) -> str: ...  # "ENOENT", "" when the call did not fail
    @property
    def duration_ns(self) -> int | None: ...  # None: not timed


# field -> (kind, the values it tests: one, or several for "either" fields)
_EVENT_FIELDS: dict[str, tuple[str, Callable[[EventFacts], tuple[Any, ...]]]] = {
    "name": ("name", lambda e: (e.name,)),
    "pid": ("int", lambda e: (e.pid,)),
    "tid": ("int", lambda e: (e.tid,)),
    "comm": ("comm", lambda e: (e.comm, e.thread_comm)),
    "path": ("path", lambda e: e.paths),
    "fd": ("int", lambda e: e.fds),
    "ret": ("ret", lambda e: (e.ret,)),
    "errno": ("errno", lambda e: (e.errno,)),
    "addr": ("addr", lambda e: (e.addr,)),
    # An untimed call (--timing off, or one sampled mode left out) has no duration: no
    # comparison holds for it.
    "duration": ("duration", lambda e: () if e.duration_ns is None else (e.duration_ns,)),
}
_EVENT_FIELD_LIST = ", ".join(_EVENT_FIELDS)
_EVENT_OPS = {
    "name": TEXT_OPS, "comm": TEXT_OPS, "path": TEXT_OPS, "addr": TEXT_OPS,
    "int": ("=", "!="), "ret": tuple(COMPARE), "errno": ("=", "!="),
    "duration": tuple(COMPARE),
}  # fmt: skip
_EVENT_NOUNS = {"name": "name", "comm": "name", "path": "path", "addr": "address",
                "errno": "errno name", "duration": "duration"}
_EVENT_EXAMPLES = {
    "name": "name=openat", "pid": "pid=42", "tid": "tid=42", "comm": "comm=nginx",
    "path": "path=/etc/passwd", "fd": "fd=3", "ret": "ret=-1", "errno": "errno=ENOENT",
    "addr": "addr~443", "duration": "duration>1ms",
}  # fmt: skip
_EVENT_REGEX_EXAMPLES = {"name": "name~^open", "comm": "comm~^py", "path": "path~conf$",
                         "addr": "addr~443"}


_event_example = example_maker(_EVENT_EXAMPLES, _EVENT_REGEX_EXAMPLES)


_EVENT_LANGUAGE = Language(kinds={name: kind for name, (kind, _) in _EVENT_FIELDS.items()},
                           ops=_EVENT_OPS, field_list=_EVENT_FIELD_LIST, nouns=_EVENT_NOUNS,
                           example=_event_example)


@dataclass(frozen=True)
class EventFilter:
    """A parsed event filter; build it with parse_event_filter()."""

    text: str
    terms: tuple[Term, ...] = dataclasses.field(repr=False, compare=False)

    @property
    def is_empty(self) -> bool:
        return not self.terms

    @property
    def fields(self) -> frozenset[str]:
        """The fields its terms test ("word" for bare words)."""
        return frozenset(t.field for t in self.terms)

    def matches(self, event: EventFacts) -> bool:
        return all(term.holds(event) for term in self.terms)


def parse_event_filter(text: str) -> EventFilter:
    """Parse an event-log filter; raises FilterError naming the first bad term and its
    position, like parse_filter."""
    return EventFilter(text, tuple(parse_terms("event", text, _parse_event_term)))


def path_term(path: str) -> str:
    """The term that picks one exact path, quoted when it holds a space or a character the
    filter language reads (the Files view's Enter uses it)."""
    if path and not any(c.isspace() or c in "=!<>~\"'" for c in path):
        return f"path={path}"
    quote = "'" if '"' in path else '"'
    return f"path={quote}{path}{quote}"


def _parse_event_term(start: int, chars: Chars) -> Term:
    return parse_term(start, chars, _event_word_term, _event_field_term)


def _event_word_term(word: str, negated: bool, start: int) -> Term:
    if not word:
        raise FilterError(f'empty quotes at {start}: put a word between them, e.g. "open"',
                          start)
    needle = word.lower()

    def test(e: EventFacts) -> bool:
        return any(needle in t.lower() for t in (e.name, e.comm, e.thread_comm, *e.paths))

    return Term("word", "contains", word, negated, start, "word", test)


def _event_field_term(name: str, op: str, value: str, negated: bool, start: int) -> Term:
    return field_term(_EVENT_LANGUAGE, _EVENT_FIELDS, _EVENT_PREDICATES, name, op, value,
                      negated, start)


def _path_predicate(name: str, op: str, value: str, start: int) -> Predicate:
    # Paths are bytes the traced program chose: compared as given, case and all.
    if op == "~":
        return searcher(compile_regex(value, 0, name, start))
    return lambda v: v == value


def _addr_predicate(name: str, op: str, value: str, start: int) -> Predicate:
    if op == "~":
        return searcher(compile_regex(value, re.IGNORECASE, name, start))
    return lambda v: v == value


def _ret_predicate(name: str, op: str, value: str, start: int) -> Predicate:
    if not _SIGNED_INT_RE.fullmatch(value) or len(value) > 30:
        raise FilterError(f"bad number '{shown(value)}' for {name} at {start}: use a whole "
                          f"number, e.g. ret=-1 (failed) or ret>0", start)
    return comparison(op, int(value))


def _errno_predicate(name: str, op: str, value: str, start: int) -> Predicate:
    wanted = value.upper()
    known = constants()  # the kernel headers' names, its restart codes (ERESTARTSYS) too
    if (known.value("errno", wanted) is None and known.value("kernel_errno", wanted) is None
            and not _UNNAMED_ERRNO_RE.fullmatch(wanted)):
        raise FilterError(f"unknown errno '{shown(value)}' for {name} at {start}: use an "
                          f"errno name, e.g. errno=ENOENT", start)
    return lambda v: v == wanted


_EVENT_PREDICATES: dict[str, PredicateBuilder] = {
    "name": text_predicate,
    "comm": text_predicate,
    "int": int_predicate,
    "path": _path_predicate,
    "addr": _addr_predicate,
    "ret": _ret_predicate,
    "errno": _errno_predicate,
    "duration": duration_predicate,
}
