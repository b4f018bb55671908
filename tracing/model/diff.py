"""The difference between two runs (or two stretches of one run): what `sikte-tui diff` shows.

Plain data, shared by the computation (tracing/session/diff.py), the command line
(cli/diff_cmd.py) and the TUI (tui/diff.py). Every table has the same shape: rows named by
what they count (a syscall, a command name, a path, a remote endpoint), each with its metrics
in A and in B; a row only in one run has None for the other. Rates are per second of each
side's own duration, so runs of different lengths compare.

Pure: no bcc, no Textual, no pandas.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tracing.model.stats import Hist

Metrics = Mapping[str, float]  # metric name -> value (ints stay ints)


@dataclass(frozen=True, slots=True)
class DiffSide:
    """One side: a saved session, or a stretch of one."""

    label: str  # as shown: the session's name, and the stretch when not the whole session
    path: str
    start_s: float  # the stretch, in seconds from the session's start
    end_s: float
    host: str = ""
    kernel: str = ""
    arch: str = ""
    timing: str = "exact"  # how its calls were timed (tracing.model.timing; older: exact)

    @property
    def duration_s(self) -> float:
        return max(self.end_s - self.start_s, 1e-9)


@dataclass(frozen=True, slots=True)
class DiffRow:
    key: str  # the syscall's name (labelled with its ABI where two share it), comm, path...
    a: Metrics | None  # None: only in B
    b: Metrics | None  # None: only in A
    hist_a: Hist = ()  # the latency histograms (syscall and process rows), for the overlay
    hist_b: Hist = ()

    @property
    def only_in(self) -> str | None:
        """"a" or "b" when the row is in one run only."""
        if self.a is None:
            return "b"
        if self.b is None:
            return "a"
        return None

    def value(self, side: str, metric: str) -> float:
        values = self.a if side == "a" else self.b
        return values.get(metric, 0) if values is not None else 0

    def change(self, metric: str) -> float:
        """B minus A (a row missing from one side counts 0 there)."""
        return self.value("b", metric) - self.value("a", metric)


@dataclass(frozen=True, slots=True)
class DiffTable:
    name: str  # "syscalls", "processes", "files", "endpoints"
    title: str  # as shown: "by syscall", "by command name", ...
    metrics: tuple[str, ...]  # the metrics of every row, in the order shown
    rows: tuple[DiffRow, ...]  # sorted by the largest change in total time (or its stand-in)


@dataclass(frozen=True, slots=True)
class Diff:
    a: DiffSide
    b: DiffSide
    tables: tuple[DiffTable, ...]
    # The two runs come from different machines, kernels or architectures: syscalls are
    # matched by name only (numbers differ between architectures), and `notes` says so.
    by_name: bool = False
    notes: tuple[str, ...] = field(default=())

    def table(self, name: str) -> DiffTable:
        return next(t for t in self.tables if t.name == name)
