"""What both filter languages share: splitting a filter into terms, quotes, `!`, the checks
of a field, its operator and its value, the messages about them, and the value tests
(predicates) that more than one field uses. Pure Python: no bcc, no Textual.

A filter is whitespace-separated terms, all of which must hold. Each view's language
(tracing.query.syscall_filter, tracing.query.connection_filter) says which fields it has,
their kinds and their operators, as a `Language`, and turns each term into a `Term`.

A person may paste anything while the TUI parses at each key: a filter is at most
MAX_FILTER_CHARS long (checked before any other work, so a pasted megabyte costs nothing),
a regex at most MAX_REGEX_CHARS, and parsing is one pass over the text. Terms already parsed
are reused while the person types on (typing at the end re-parses only the last term). The
first bad term is reported as a `FilterError` (never anything else) with its position.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
import re
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from tracing.boundary.display_text import sanitize
from tracing.model.units import parse_duration_ns

# A filter is typed by a person: 1,000 characters hold dozens of terms. The bound keeps every
# parse (and the message about it) small whatever is pasted: a 33,000-character paste once
# froze the view for 100 s, parsed again at each of its keystrokes.
MAX_FILTER_CHARS = 1_000
# re compiles in time and memory that grow with the pattern (and recurses on nesting).
MAX_REGEX_CHARS = 256

COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
TEXT_OPS = ("=", "!=", "~")
_OP_CHARS = frozenset("=!<>~")
_QUOTES = "\"'"
INT_RE = re.compile(r"[0-9]+")
# The examples of whole-number fields (pid, tid, nr) in messages, in both languages.
_INT_EXAMPLES = {"nr": "nr=0"}

# A value test: the field's value (or values, for some connection fields) -> holds.
Predicate = Callable[[Any], bool]
# Builds a field's predicate from (field, operator, value, start); FilterError when bad.
PredicateBuilder = Callable[[str, str, str, int], Predicate]


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


# A term is a list of (char, quoted) pairs: quoted characters are never operators or `!`,
# which is how `comm="a=b c"` keeps its `=` and its space inside the value.
Chars = list[tuple[str, bool]]


def check_length(text: str) -> None:
    """Refuse a filter longer than MAX_FILTER_CHARS before looking at it any further."""
    if len(text) > MAX_FILTER_CHARS:
        raise FilterError(f"the filter is {len(text):,} characters long; the limit is "
                          f"{MAX_FILTER_CHARS:,}: shorten it (Esc clears it)", 0)


def _split_terms(text: str) -> list[tuple[int, str, Chars]]:
    """Split at unquoted whitespace, removing quotes; each term comes with its start index
    and its text as typed (quotes included: the key of the parsed-term cache)."""
    check_length(text)
    terms: list[tuple[int, str, Chars]] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start = i
        chars: Chars = []
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


def parse_terms(language: str, text: str, parse: Callable[[int, Chars], Term]) -> list[Term]:
    """The terms of `text`, each parsed by `parse(start, chars)` unless the cache holds it
    (by `language`, start and text as typed); FilterError at the first bad one."""
    return [_TERMS.get((language, start, raw), functools.partial(parse, start, chars))
            for start, raw, chars in _split_terms(text)]


class _Parts(NamedTuple):
    """A term taken apart, before any language gives it a meaning."""

    negated: bool
    name: str | None  # the field name in lower case; None for a bare word
    op: str
    value: str  # the value, or the bare word


def _term_parts(start: int, chars: Chars) -> _Parts:
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


def parse_term(start: int, chars: Chars, word: Callable[[str, bool, int], Term],
               field: Callable[[str, str, str, bool, int], Term]) -> Term:
    """A term taken apart, then made by `word(value, negated, start)` for a bare word or
    `field(name, op, value, negated, start)`: each language says what those mean."""
    negated, name, op, value = _term_parts(start, chars)
    if name is None:
        return word(value, negated, start)
    return field(name, op, value, negated, start)


@dataclass(frozen=True)
class Language:
    """What one view's filter accepts: each field's kind, each kind's operators, and the
    words its messages use. The syscall view and the connections view share everything
    else (splitting, quotes, `!`, the value checks and the messages' form)."""

    kinds: Mapping[str, str]  # field -> kind
    ops: Mapping[str, tuple[str, ...]]  # kind -> operators
    field_list: str
    nouns: Mapping[str, str]  # kind -> what `=` wants ("number" when missing)
    example: Callable[[str, str], str]  # (field, op) -> an example term


def check_term(lang: Language, name: str, op: str, value: str, start: int) -> str:
    """The field's kind, once the field, the operator and a value are there."""
    if not name:
        raise FilterError(
            f"missing field before '{shown(op)}' at {start}: use {lang.field_list}", start
        )
    if name not in lang.kinds:
        raise FilterError(
            f"unknown field '{shown(name)}' at {start}: use {lang.field_list}", start
        )
    kind = lang.kinds[name]
    allowed = lang.ops[kind]
    if op not in allowed:
        raise FilterError(
            f"bad operator '{shown(op)}' for {name} at {start}: use {_or_list(allowed)}", start
        )
    if not value:
        noun = "regex" if op == "~" else lang.nouns.get(kind, "number")
        article = "an" if noun[0] in "aeiou" else "a"
        raise FilterError(
            f"'{op}' needs {article} {noun} at {start}: e.g. {lang.example(name, op)}", start
        )
    return kind


def example_maker(examples: Mapping[str, str], regex_examples: Mapping[str, str],
                  regex_default: str = "x") -> Callable[[str, str], str]:
    """A Language's `example`: the view's own example for a field, else a generic one."""
    def example(name: str, op: str) -> str:
        if op == "~":
            return regex_examples.get(name, f"{name}~{regex_default}")
        return examples.get(name, f"{name}=1")
    return example


def field_term(lang: Language, fields: Mapping[str, tuple[str, Callable[[Any], Iterable[Any]]]],
               predicates: Mapping[str, PredicateBuilder], name: str, op: str, value: str,
               negated: bool, start: int) -> Term:
    """A `field OP value` term over a field that may hold several values (a path argument
    and a descriptor's name, both ends of a connection): it holds when one of them does;
    `!=` means "neither is", not "one of them is not"."""
    kind = check_term(lang, name, op, value, start)
    values = fields[name][1]  # (kind, the values of the field in an item)
    if op == "!=":
        equal = predicates[kind](name, "=", value, start)

        def test(item: Any) -> bool:
            return not any(equal(v) for v in values(item))
    else:
        holds = predicates[kind](name, op, value, start)

        def test(item: Any) -> bool:
            return any(holds(v) for v in values(item))
    return Term(name, op, value, negated, start, name, test)


def shown(text: str) -> str:
    """The user's text for a one-line message: a pasted megabyte must not become the line,
    nor a pasted escape sequence act on the terminal."""
    return sanitize(text, 24)


def _or_list(ops: tuple[str, ...]) -> str:
    return ", ".join(ops[:-1]) + " or " + ops[-1]


# -- value tests that both languages use -------------------------------------------------


def text_predicate(name: str, op: str, value: str, start: int) -> Predicate:
    # Syscall names are lower case, so `name=` ignores case; a comm is whatever the program
    # set, so `comm=` and `comm~` respect it (a regex can opt out with (?i)).
    ignore_case = name == "name"
    if op == "~":
        pattern = compile_regex(value, re.IGNORECASE if ignore_case else 0, name, start)
        return searcher(pattern)
    wanted = value.lower() if ignore_case else value
    equal = op == "="
    if ignore_case:
        return lambda v: (v.lower() == wanted) == equal
    return lambda v: (v == wanted) == equal


def compile_regex(value: str, flags: int, name: str, start: int) -> re.Pattern[str]:
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
    raise FilterError(f"invalid regex '{shown(value)}' for {name} at {start}: {reason}", start)


def searcher(pattern: re.Pattern[str]) -> Callable[[str], bool]:
    """pattern.search, remembered per text: a table asks about the same few names and
    addresses at every redraw, and a pattern that backtracks hard then costs once per name."""

    @functools.lru_cache(maxsize=512)
    def found(text: str) -> bool:
        return pattern.search(text) is not None

    return found


def int_predicate(name: str, op: str, value: str, start: int) -> Predicate:
    # pids, tids and numbers are small; the cap also keeps int() off its ~4300-digit ValueError.
    if not INT_RE.fullmatch(value) or len(value) > 30:
        example = _INT_EXAMPLES.get(name, f"{name}=42")
        raise FilterError(
            f"bad number '{shown(value)}' for {name} at {start}: use a whole number, e.g. "
            f"{example}",
            start,
        )
    return comparison(op, int(value))


def duration_predicate(name: str, op: str, value: str, start: int) -> Predicate:
    try:
        ns = parse_duration_ns(value)
    # OverflowError: a digit string too long for a float rounds to inf, which has no int.
    except (ValueError, OverflowError):
        raise FilterError(
            f"bad duration '{shown(value)}' for {name} at {start}: use a number with "
            f"ns, us, ms or s, e.g. {name}>1ms",
            start,
        ) from None
    return comparison(op, ns)


def comparison(op: str, threshold: float) -> Predicate:
    compare = COMPARE[op]
    return lambda v: compare(v, threshold)
