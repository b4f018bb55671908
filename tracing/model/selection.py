"""Which individual syscalls become events: the user's event selection.

The kernel counts every syscall in its aggregates whatever is selected; the selection only
decides which calls also cross the ring buffer as decoded events (failed ones, slower than a
threshold, one in N, all, or none), and whether descriptors and per-file I/O are followed.
It is switched at run time (bpf/syscalls.bpf.c reads it from its `config` map), parsed from
`record --events` and the TUI, and described for the UI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from tracing.boundary.display_text import sanitize
from tracing.model.units import parse_duration_ns

# Bits of the kernel's config.events (bpf/syscalls.bpf.c takes them as -D flags from here).
SEL_ALL = 1
SEL_FAILED = 2
SEL_SLOW = 4
SEL_SAMPLE = 8

_NS_UNITS = ((1_000_000_000, "s"), (1_000_000, "ms"), (1_000, "µs"), (1, "ns"))
SPEC_HELP = ("failed, all, none, slow:DURATION (e.g. slow:10ms), sample:N, nofiles, joined "
             "with commas")


def _duration_text(ns: int) -> str:
    """10_000_000 -> '10 ms': the largest unit that divides it exactly."""
    for scale, unit in _NS_UNITS:
        if ns % scale == 0:
            return f"{ns // scale:,} {unit}"
    return f"{ns} ns"  # not reached: 1 divides everything


@dataclass(frozen=True)
class EventSelection:
    """Which syscalls the kernel sends up as events (aggregates always count every one).
    `files`: follow the descriptor table and count I/O per file."""

    all: bool = False
    failed: bool = True
    slow_ns: int = 0
    sample_n: int = 0
    files: bool = True

    none: ClassVar[EventSelection]

    @property
    def any(self) -> bool:
        return self.all or self.failed or self.slow_ns > 0 or self.sample_n > 0

    @property
    def bits(self) -> int:
        """config.events for the kernel."""
        return ((SEL_ALL if self.all else 0) | (SEL_FAILED if self.failed else 0)
                | (SEL_SLOW if self.slow_ns > 0 else 0) | (SEL_SAMPLE if self.sample_n > 0 else 0))

    @classmethod
    def parse(cls, text: str) -> EventSelection:
        """'failed', 'all', 'none', 'slow:10ms', 'sample:100', or several joined with commas
        ('failed,slow:5ms'); 'nofiles' leaves descriptors and per-file I/O unfollowed
        ('failed,nofiles'); ValueError saying what is accepted."""
        terms = [t.strip() for t in text.split(",")]
        if not text.strip() or any(not t for t in terms):
            raise ValueError(f"empty selection: use {SPEC_HELP}")
        if "none" in terms:
            if len(terms) > 1:
                raise ValueError("'none' cannot be combined with other terms")
            return cls.none
        fields: dict[str, int | bool] = {"failed": False}
        for term in terms:
            fields.update(_parse_term(term))
        return cls(**fields)  # type: ignore[arg-type]

    def describe(self) -> str:
        """For the UI: 'failed', 'failed, slower than 10 ms', '1 in 100', 'all', 'none'."""
        if self.all:
            parts = ["all"]
        else:
            parts = ["failed"] if self.failed else []
            if self.slow_ns > 0:
                parts.append(f"slower than {_duration_text(self.slow_ns)}")
            if self.sample_n > 0:
                parts.append(f"1 in {self.sample_n:,}")
        if not self.files and parts:
            parts.append("no files")
        return ", ".join(parts) or "none"


EventSelection.none = EventSelection(failed=False, files=False)


def _parse_term(term: str) -> dict[str, int | bool]:
    name, sep, value = term.partition(":")
    name = name.strip().lower()
    if name in ("failed", "all") and not sep:
        return {name: True}
    if name == "nofiles" and not sep:  # events without the descriptor table's cost
        return {"files": False}
    if name == "slow" and sep:
        ns = parse_duration_ns(value.strip())
        if ns <= 0:
            raise ValueError(f"slow:{sanitize(value, 40)}: give a duration above zero "
                             "(e.g. slow:10ms)")
        return {"slow_ns": ns}
    if name == "sample" and sep:
        try:
            n = int(value.strip())
        except ValueError:
            n = 0
        if n <= 0:
            raise ValueError(f"sample:{sanitize(value, 40)}: give a whole number N above "
                             "zero (1 in N)")
        return {"sample_n": n}
    raise ValueError(f"unknown term '{sanitize(term, 40)}': use {SPEC_HELP}")
