"""Fuzzy matching for the process picker, bounded: no recursion, no backtracking, and work
proportional to the text's length times the query's (both bounded by the caller).

A query is split on spaces into terms; every term must match one of a candidate's fields (as
fzf does). A term matches a field when its letters appear in order (case-insensitively).
Matches are ranked by quality, best first:

    prefix      the field starts with the term ("sys" in "systemd")
    word        the term appears whole at a word start ("http" in "python3 -m http.server")
    substring   the term appears whole elsewhere ("ttp" in "http")
    scattered   the letters appear in order with gaps ("pgd" in "postgres -D /data")

and within a tier by a score that rewards letters at word starts and in runs and penalises
gaps (fzf's scheme, simplified). A scattered match takes the shortest window that ends at the
first place the term can end (fzf's "v1" algorithm: a forward scan, then a backward one),
so it is found in two passes of str.find rather than by trying every combination.

Pure: no Textual, no bcc. The caller passes text already made safe to show (sanitized): the
positions returned index into exactly that text, so they can be highlighted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

MAX_TERM = 64  # characters of one term that are matched; the rest of a longer term is ignored
MAX_TERMS = 8  # terms of a query; more are ignored

SCATTERED, SUBSTRING, WORD, PREFIX = range(4)

SCORE_MATCH = 16
BONUS_BOUNDARY = 8  # a letter at a word start (after a space, /, -, _, ., :, = ...)
BONUS_CAMEL = 6  # an upper-case letter after a lower-case one
BONUS_RUN = 4  # a letter right after the previous matched one
GAP_START = 3
GAP_EXTENSION = 1
FIRST_LETTER_WEIGHT = 2  # the first letter's bonus counts double, as in fzf


@dataclass(frozen=True, slots=True)
class Field:
    """One searchable text of a candidate, with its lower-case form of the same length."""

    text: str
    lower: str

    @classmethod
    def of(cls, text: str) -> Field:
        return cls(text, fold(text))


@dataclass(frozen=True, slots=True)
class Term:
    """One folded word of a query, with what matching it needs made once per query."""

    text: str
    at_word: re.Pattern[str]  # the term at a word start (not after a letter or digit)
    inner: int  # the score of its letters after the first when they are found in a run

    @classmethod
    def of(cls, text: str) -> Term:
        inner = sum(SCORE_MATCH + BONUS_RUN + _bonus(text[n - 1], text[n])
                    for n in range(1, len(text)))
        return cls(text, re.compile(r"(?<![^\W_])" + re.escape(text)), inner)


@dataclass(frozen=True, slots=True)
class Match:
    """How well a query matched: `rank` orders matches, larger is better; `spans` are the
    matched characters' indexes, per field index."""

    tier: int
    score: int
    spans: tuple[tuple[int, tuple[int, ...]], ...]

    @property
    def rank(self) -> tuple[int, int]:
        return (self.tier, self.score)

    def positions_in(self, field: int) -> tuple[int, ...]:
        return positions_in(self.spans, field)


Spans = tuple[tuple[int, tuple[int, ...]], ...]


def positions_in(spans: Spans, field: int) -> tuple[int, ...]:
    """The matched positions in one field, in order."""
    found: set[int] = set()
    for index, positions in spans:
        if index == field:
            found.update(positions)
    return tuple(sorted(found))


def fold(text: str) -> str:
    """Lower case with one character for one: a few characters lower-case to two ("İ"),
    which would shift every position after them, so those stay as they are."""
    lower = text.lower()
    if len(lower) == len(text):
        return lower
    return "".join(c if len(c.lower()) != 1 else c.lower() for c in text)


def terms(query: str) -> tuple[Term, ...]:
    """The query's terms, folded and bounded."""
    return tuple(Term.of(fold(t[:MAX_TERM])) for t in query.split()[:MAX_TERMS])


def _bonus(before: str, char: str) -> int:
    """The bonus for a letter `char` after `before`: a word start or a camelCase hump."""
    if not before.isalnum():
        return BONUS_BOUNDARY if char.isalnum() else 0
    if before.islower() and char.isupper():
        return BONUS_CAMEL
    if before.isalpha() and char.isdigit():
        return BONUS_CAMEL
    return 0


def _boundary(text: str, i: int) -> int:
    return BONUS_BOUNDARY if i == 0 else _bonus(text[i - 1], text[i])


def score(text: str, positions: Sequence[int]) -> int:
    """The score of letters found at `positions` of `text` (fzf's scheme, simplified)."""
    total, previous = 0, -1
    for n, i in enumerate(positions):
        bonus = _boundary(text, i) * (FIRST_LETTER_WEIGHT if n == 0 else 1)
        total += SCORE_MATCH + bonus
        if n:
            gap = i - previous - 1
            total += BONUS_RUN if gap == 0 else -(GAP_START + GAP_EXTENSION * (gap - 1))
        previous = i
    return total


def _scattered(term: str, lower: str) -> tuple[int, ...] | None:
    """The letters of term in order, in the shortest window ending where the earliest
    complete match ends: forward to find that end, then backward for the latest start."""
    at = -1
    for char in term:
        at = lower.find(char, at + 1)
        if at < 0:
            return None
    positions = [at]
    for char in reversed(term[:-1]):
        at = lower.rfind(char, 0, at)
        positions.append(at)
    positions.reverse()
    return tuple(positions)


def match_term(term: Term, field: Field) -> tuple[int, int, tuple[int, ...]] | None:
    """(tier, score, positions) of one term in one field, or None. A whole occurrence is
    found by str.find and one regular expression search (a literal after a look-behind:
    linear), a scattered one by two passes of str.find."""
    text, lower = term.text, field.lower
    if not text:
        return None
    start = lower.find(text)
    if start >= 0:
        if start == 0:
            tier = PREFIX
        else:
            word = term.at_word.search(lower, start)
            tier, start = (WORD, word.start()) if word is not None else (SUBSTRING, start)
        first = SCORE_MATCH + FIRST_LETTER_WEIGHT * _boundary(field.text, start)
        return tier, first + term.inner, tuple(range(start, start + len(text)))
    positions = _scattered(text, lower)
    if positions is None:
        return None
    return SCATTERED, score(field.text, positions), positions


def match(query_terms: Sequence[Term], fields: Sequence[Field],
          shown: int | None = None) -> Match | None:
    """The match of every term (each in its best field; the first field on a tie), or None
    when one term matches no field. The tier is the weakest term's; the score is the sum.

    Fields from index `shown` on are matched but not shown (a process's name): when one of
    them is a term's best, its rank counts and the positions are those of the term's best
    shown field, if any, so what is highlighted is what the person sees."""
    if not query_terms:
        return Match(PREFIX, 0, ())
    shown = len(fields) if shown is None else shown
    tier, total, spans = PREFIX, 0, []
    for term in query_terms:
        best: tuple[int, int, int, tuple[int, ...]] | None = None
        visible: tuple[int, int, int, tuple[int, ...]] | None = None
        for index, field in enumerate(fields):
            found = match_term(term, field)
            if found is None:
                continue
            if best is None or found[:2] > best[:2]:
                best = (found[0], found[1], index, found[2])
            if index < shown and (visible is None or found[:2] > visible[:2]):
                visible = (found[0], found[1], index, found[2])
        if best is None:
            return None
        tier = min(tier, best[0])
        total += best[1]
        where = best if best[2] < shown or visible is None else visible
        spans.append((where[2], where[3]))
    return Match(tier, total, tuple(spans))
