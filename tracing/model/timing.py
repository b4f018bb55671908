"""How the kernel times syscalls: every call, a sample of each thread's calls, or not at all.

Shared by the engine (which compiles the BPF program for a mode), the model (a snapshot says
which mode made its figures), the store and the UI (which label sampled figures as estimates
and show "-" for time figures when nothing was timed).
"""

from __future__ import annotations

from enum import StrEnum


class Timing(StrEnum):
    """The timing mode of a trace.

    exact: every call timed. sampled: counts and errors exact; total time, histogram and
    percentiles are estimates from a sample of each thread's calls. off: counts and errors
    only, no clock reads, every time figure 0 (shown as "-").
    """

    EXACT = "exact"
    SAMPLED = "sampled"
    OFF = "off"


TIMING_CHOICES: tuple[str, ...] = tuple(t.value for t in Timing)


def parse_timing(text: str) -> Timing:
    """The mode named by `text` (case and surrounding spaces ignored).

    Raises ValueError naming the choices, so the CLI can print it as a one-line error.
    """
    key = text.strip().lower()
    for mode in Timing:
        if mode.value == key:
            return mode
    # The rejected text comes from outside: bounded and repr'd so it cannot forge output.
    shown = repr(text[:40])
    raise ValueError(f"unknown timing mode {shown}: choose one of {', '.join(TIMING_CHOICES)}")


def timing_of(value: object) -> Timing:
    """The mode stored in a session or snapshot, EXACT for anything missing or unknown.

    Older sessions have no timing field: their figures were all exact.
    """
    if isinstance(value, Timing):
        return value
    if isinstance(value, str):
        try:
            return parse_timing(value)
        except ValueError:
            return Timing.EXACT
    return Timing.EXACT


ESTIMATE_MARK = "~"  # before a time figure estimated from sampled calls
NO_TIME = "-"  # a time figure that was not measured (timing off): never shown as 0

# One sentence each output gives when its time figures are not exact.
TIMING_NOTES = {
    Timing.SAMPLED: (f"{ESTIMATE_MARK} marks estimates: times come from a sample of each "
                     "thread's calls (--timing sampled); counts and errors are exact"),
    Timing.OFF: (f"{NO_TIME} marks what was not measured: --timing off counts calls and "
                 "errors only"),
}


def timing_note(timing: object) -> str:
    """The sentence that explains the marks of a mode's time figures ("" for exact)."""
    return TIMING_NOTES.get(timing_of(timing), "")


def format_time(text: str, timing: object) -> str:
    """A formatted time figure as a mode shows it: marked as an estimate when sampled,
    NO_TIME when off (`text` is the figure formatted as if exact)."""
    mode = timing_of(timing)
    if mode is Timing.OFF:
        return NO_TIME
    if mode is Timing.SAMPLED:
        return ESTIMATE_MARK + text
    return text


def diff_timing_note(a: object, b: object) -> str:
    """What `diff` says when sides A and B were not both timed exactly ("" when they were):
    their times do not compare like for like, their counts and errors do."""
    ta, tb = timing_of(a), timing_of(b)
    if ta is tb:
        if ta is Timing.SAMPLED:
            return "both sides timed sampled: their times are estimates (counts and errors " \
                "are exact)"
        if ta is Timing.OFF:
            return "both sides timed off: no times to compare, counts and errors only"
        return ""
    note = f"timed differently: A {ta}, B {tb}"
    if Timing.SAMPLED in (ta, tb):
        note += ("; the times of a sampled side are estimates, compare them loosely (counts "
                 "and errors are exact on both)")
    if Timing.OFF in (ta, tb):
        note += "; a side traced with timing off has no times: compare counts and errors"
    return note
