"""The tracer's kernel cost as people see it: ns per syscall in our BPF programs and their
share of a CPU, from the run-time statistics a Snapshot carries (bpf_run_ns, bpf_runs,
bpf_on_ns, bpf_stats; tracing/engine/bpf_stats.py reads them).

The statistics cost a clock read pair per program run, so they are on only part of the time
(by default a quarter of a second about every five): the figures are those of
the stretches they were on -- run time per syscall entered then, and run time per second on.

"Per call" is per syscall entered while tracing, anywhere on the machine: every call passes
the raw syscall tracepoints, so the entry program's run count is the number of calls and the
time of both programs (entry and exit) is what they cost in the kernel. The targets' calls
cost the most (the others leave at the target check); while the targets make most of the
machine's calls the figure is the cost per traced call. The share is of one CPU, like the
user-space "tracer CPU" beside it (bpftop does the same). The time the tracepoint dispatch
itself takes is not in the statistics: a benchmark sees it on top.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from tracing.model.stats import Snapshot


class BpfTotals(NamedTuple):
    """Over the stretches BPF statistics were on since the start of the trace: run time of
    our syscall programs, syscalls entered, and how long that was."""

    run_ns: int
    runs: int
    on_ns: int


class BpfRates(NamedTuple):
    ns_per_call: float | None  # None: no call in the stretch
    cpu_pct: float


def rates(run_ns: int, runs: int, on_ns: int) -> BpfRates | None:
    """Over stretches `on_ns` long in all (None: statistics were not on)."""
    if on_ns <= 0:
        return None
    return BpfRates(run_ns / runs if runs > 0 else None, 100.0 * run_ns / on_ns)


def since_start(snapshot: Snapshot) -> BpfRates | None:
    if not snapshot.bpf_stats:
        return None
    return rates(snapshot.bpf_run_ns, snapshot.bpf_runs, snapshot.bpf_on_ns)


def between(before: Snapshot | None, after: Snapshot) -> BpfRates | None:
    """From one snapshot to the next (the header's figure, like the tracer CPU); since the
    start when statistics were not on in between (most ticks: they are on a twentieth of the
    time), or there is no earlier snapshot of the same trace."""
    if not after.bpf_stats:
        return None
    if (before is None or not before.bpf_stats or before.start_ts_ns != after.start_ts_ns
            or after.bpf_on_ns <= before.bpf_on_ns):
        return since_start(after)
    return rates(after.bpf_run_ns - before.bpf_run_ns, after.bpf_runs - before.bpf_runs,
                 after.bpf_on_ns - before.bpf_on_ns)


def header_text(r: BpfRates, short: bool = False) -> str:
    """"BPF 85 ns/call · 2.1% CPU" (the header, beside "tracer CPU"); `short`: "BPF 85ns
    2.1%", for a header too narrow for the other."""
    per_call = "-" if r.ns_per_call is None else f"{r.ns_per_call:,.0f}"
    if short:
        return f"BPF {per_call}ns {r.cpu_pct:.1f}%"
    return f"BPF {per_call} ns/call · {r.cpu_pct:.1f}% CPU"


def header_between(before: Snapshot | None, after: Snapshot) -> tuple[str, str] | None:
    """The header's BPF part from one snapshot to the next, long and short; None: not
    measured."""
    r = between(before, after)
    return None if r is None else (header_text(r), header_text(r, short=True))


def bpf_json(snapshot: Snapshot) -> dict[str, object] | None:
    """record --json's "bpf" and the session's meta "bpf": what the statistics measured
    since the start and what it makes; None without statistics (an old kernel, no
    privilege, SIKTE_BPF_STATS=off)."""
    r = since_start(snapshot)
    if r is None:
        return None
    return {
        "run_ns": snapshot.bpf_run_ns,
        "runs": snapshot.bpf_runs,
        "measured_ns": snapshot.bpf_on_ns,  # how long statistics were on (a share of the trace)
        "ns_per_call": None if r.ns_per_call is None else round(r.ns_per_call, 1),
        "cpu_pct": round(r.cpu_pct, 3),
    }


def summary_line(snapshot: Snapshot) -> str:
    """record's summary line on the tracer's kernel cost."""
    r = since_start(snapshot)
    if r is None:
        return "BPF cost: not measured (no BPF run-time statistics)"
    per_call = "-" if r.ns_per_call is None else f"{r.ns_per_call:,.0f} ns"
    return (f"BPF cost: {per_call} per syscall in the kernel, {r.cpu_pct:.2f}% of a CPU "
            f"(measured over {snapshot.bpf_on_ns / 1e9:,.2f} s of the trace: "
            f"{snapshot.bpf_run_ns / 1e6:,.1f} ms in our programs, {snapshot.bpf_runs:,} "
            "syscalls entered on the machine)")
