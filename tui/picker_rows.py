"""The picker's model, off the UI thread: processes prepared once each (Candidate, Catalog)
and the fuzzy matching of a query over them (match_all), with the rows they make and the
orders they are shown in. Pure Python (no Textual); tui/picker.py is the screen that runs
these on its worker threads and applies the results.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from tracing.boundary.display_text import join_command, sanitize
from tracing.model.units import format_bytes
from tracing.query import fuzzy
from tracing.system.proclist import ProcessEntry
from tui.columns import Row, RowKey

COMMAND_MATCH = 512  # characters of a command line kept, shown and matched
CHECK_CANCEL_EVERY = 128  # processes matched between checks that the query is still current
SHOWN_FIELDS = 3  # command, user, pid are shown; the name (the fourth) is matched, not shown


def format_started(ts: float, now: float) -> str:
    local = time.localtime(ts)
    if now - ts < 86400:
        return time.strftime("%H:%M", local)
    return time.strftime("%b%d", local)


# -- prepared processes (worker thread) -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Candidate:
    """What the picker shows and matches of one process, made once per process: other
    users' text, sanitized and on one line, and folded for matching."""

    key: tuple[int, float]  # (pid, start time): a pid reused later is another process
    name: str
    cmdline: tuple[str, ...]  # as listed, to notice an exec (same pid and start time)
    user: str
    command: str
    fields: tuple[fuzzy.Field, ...]  # command, user, pid, name: matched in this order

    @classmethod
    def of(cls, entry: ProcessEntry) -> Candidate:
        name, user = sanitize(entry.name, 64), sanitize(entry.user, 64)
        command = join_command(entry.cmdline, COMMAND_MATCH) or f"[{name}]"
        fields = tuple(fuzzy.Field.of(t) for t in (command, user, str(entry.pid), name))
        return cls((entry.pid, entry.create_time), entry.name, entry.cmdline, entry.user,
                   command, fields)

    def describes(self, entry: ProcessEntry) -> bool:
        return self.name == entry.name and self.cmdline == entry.cmdline \
            and self.user == entry.user


@dataclass(frozen=True, slots=True)
class Listed:
    """One listed process: as listed, as prepared, and its table row."""

    entry: ProcessEntry
    candidate: Candidate
    row: Row


class Catalog:
    """The prepared processes of the last listing, reused by the next one: a process listed
    again as it was keeps its row, one whose figures changed keeps its prepared text. Kept
    only for processes still listed, so it is as large as the process list and no larger.
    Reusing rows matters beyond the work saved: thousands of new objects every refresh made
    the garbage collector's full collections (tens of ms on the UI thread) frequent."""

    def __init__(self, selected: set[int], clock: Callable[[], float]) -> None:
        self.selected, self.clock = selected, clock
        self._known: dict[tuple[int, float], Listed] = {}
        self._lock = threading.Lock()  # two listings may overlap when one is slow

    def prepare(self, entries: Sequence[ProcessEntry]) -> list[Listed]:
        with self._lock:
            known, current = self._known, {}
            listed = []
            for entry in entries:
                key = (entry.pid, entry.create_time)
                item = known.get(key)
                if item is None or item.entry != entry:
                    candidate = item.candidate if item is not None \
                        and item.candidate.describes(entry) else Candidate.of(entry)
                    item = Listed(entry, candidate,
                                  _row(entry, candidate, self.selected, self.clock))
                current[key] = item
                listed.append(item)
            self._known = current
            return listed


def _row(entry: ProcessEntry, candidate: Candidate, selected: set[int],
         clock: Callable[[], float]) -> Row:
    """A process's row; its cells are made when it is drawn, with the selection then."""
    def cells() -> dict[str, str]:
        return {"selected": "✓" if entry.pid in selected else " ", "pid": str(entry.pid),
                "user": candidate.fields[1].text, "cpu": f"{entry.cpu_pct:.1f}",
                "rss": format_bytes(entry.rss), "threads": str(entry.threads),
                "started": format_started(entry.create_time, clock()),
                "command": candidate.command}
    values = {"pid": entry.pid, "user": entry.user, "cpu": entry.cpu_pct, "rss": entry.rss,
              "threads": entry.threads, "started": entry.create_time,
              "command": candidate.command}
    return Row((entry.pid,), values, cells)


# -- matching (worker thread) ---------------------------------------------------------------


# A match as kept: (tier, score, spans), plain tuples of numbers, which the garbage collector
# stops tracking; thousands of Match objects kept from key to key made its full collections
# (tens of ms each) frequent.
Hit = tuple[int, int, fuzzy.Spans]


@dataclass(frozen=True, slots=True)
class Matches:
    """One query's matches over one listing: candidate key -> hit or None (no match), and
    the hits by row key."""

    query: str
    listed: list[Listed]
    found: Mapping[tuple[int, float], Hit | None]
    hits: Mapping[RowKey, Hit]


def match_all(query: str, listed: list[Listed], basis: Matches | None,
              cancelled: Callable[[], bool] = lambda: False) -> Matches | None:
    """Every listed process matched against `query`, reusing `basis` (an earlier result):
    the same query on the same prepared process is not matched again, and a process that
    did not match a prefix of the query cannot match the query. None when cancelled."""
    terms = fuzzy.terms(query)
    same = basis is not None and basis.query == query
    narrower = basis is not None and query.startswith(basis.query)
    old = basis.found if basis is not None else {}
    prepared = {item.candidate.key: item.candidate for item in basis.listed} \
        if basis is not None else {}
    found: dict[tuple[int, float], Hit | None] = {}
    hits: dict[RowKey, Hit] = {}
    for n, item in enumerate(listed):
        if n % CHECK_CANCEL_EVERY == 0 and cancelled():
            return None
        candidate = item.candidate
        key = candidate.key
        if prepared.get(key) is candidate and key in old and (
                same or (narrower and old[key] is None)):
            hit = old[key]
        else:
            m = fuzzy.match(terms, candidate.fields, SHOWN_FIELDS)
            hit = None if m is None else (m.tier, m.score, m.spans)
        found[key] = hit
        if hit is not None:
            hits[item.row.key] = hit
    return Matches(query, listed, found, hits)


def sorted_rows(listed: Sequence[Listed], sort: str, reverse: bool) -> list[Row]:
    """Every row in the sort column's order, ties by pid."""
    rows = [item.row for item in listed]
    rows.sort(key=lambda r: (r.values[sort], r.values["pid"]), reverse=reverse)
    return rows


def filtered_rows(ordered: Sequence[Row], hits: Mapping[RowKey, Hit]) -> list[Row]:
    """The rows that matched, best match first; equal matches keep the sort order."""
    rows = [r for r in ordered if r.key in hits]
    rows.sort(key=lambda r: hits[r.key][:2], reverse=True)
    return rows
