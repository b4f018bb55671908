"""Bystander cost: what a tracer costs the processes it does NOT trace.

A syscall tracer's tracepoints run for every syscall on the machine; the target filter
decides only what happens next. Here an idle process (`sleep`) is the target, and the
one-byte `dd` runs beside it, untraced, under benchmarks/runner.py: its CPU time against the
same `dd` with no tracer loaded, in the same round, is what every other process pays.
Each tracer is started once per round and the `dd` runs DD_PER_ATTACH times under it.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from benchmarks.common import (
    BenchContext,
    BenchResult,
    Check,
    Section,
    fmt_int,
    fmt_ratio,
    median_or_nan,
    ratio,
)
from benchmarks.overhead import dd_argv
from benchmarks.tracers import (
    BPFTRACE_READY,
    SIKTE_READY,
    SYSCOUNT_READY,
    TIMING_MODES,
    Measurement,
    ToolFailed,
    Workload,
    attached,
    bcc_environment,
    bpftrace_program,
    probe_executable,
    probe_sikte,
    probe_sikte_timing,
    sikte_attach_argv,
    sikte_command,
    syscount_bcc_executable,
    syscount_libbpf_argv,
    syscount_libbpf_executable,
    wrapped,
)

DD_PER_ATTACH = 3
# Rounds at most (each starts every tracer once): 3 x 3 runs of dd per row, within the 15
# minutes of a full `make bench`.
MAX_ROUNDS = 3
NOTHING = "nothing loaded"
SYSCOUNT_LIBBPF = "syscount -L -p IDLE (libbpf-tools)"
SYSCOUNT_BCC = "syscount-bpfcc -L -p IDLE"
BPFTRACE = "bpftrace latency one-liner on IDLE"


@dataclass(frozen=True)
class Tracer:
    name: str
    argv: Callable[[int], list[str]] | None  # None: no tracer (the baseline)
    marker: bytes = b""
    env: Callable[[], Mapping[str, str] | None] = lambda: None
    probe: Callable[[], str | None] = lambda: None
    sikte: bool = False  # run in --sikte-tree's directory, so its modules are imported


def sikte_name(mode: str) -> str:
    return f"sikte-tui record --events none --timing {mode} --pid IDLE"


def tracers(ctx: BenchContext) -> tuple[Tracer, ...]:
    def sikte(mode: str) -> Tracer:
        # exact is the default: run without the flag, so a tree before issue 18 measures it
        explicit = None if mode == "exact" else mode
        probe = probe_sikte if explicit is None else probe_sikte_timing
        return Tracer(sikte_name(mode), sikte_attach_argv(ctx, explicit), SIKTE_READY,
                      lambda: sikte_command(ctx)[1], lambda: probe(ctx), sikte=True)

    return (
        Tracer(NOTHING, None),
        *(sikte(mode) for mode in TIMING_MODES),
        Tracer(SYSCOUNT_LIBBPF, lambda pid: syscount_libbpf_argv(["-L", "-p", str(pid)]),
               SYSCOUNT_READY,
               probe=lambda: probe_executable(syscount_libbpf_executable(), "libbpf-tools")),
        Tracer(SYSCOUNT_BCC, lambda pid: [syscount_bcc_executable(), "-L", "-p", str(pid)],
               SYSCOUNT_READY, bcc_environment,
               lambda: probe_executable(syscount_bcc_executable(), "bpfcc-tools")),
        Tracer(BPFTRACE, lambda pid: ["bpftrace", "-e", bpftrace_program(pid)],
               BPFTRACE_READY,
               probe=lambda: probe_executable(shutil.which("bpftrace") or "", "bpftrace")),
    )


def workload(quick: bool) -> Workload:
    count = 200_000 if quick else 1_000_000
    argv = dd_argv(count)
    return Workload(key="bystander", title=f"one-byte dd ({fmt_int(2 * count)} syscalls)",
                    argv=argv, small_argv=argv, small_title="")


def under(tracer: Tracer, idle_pid: int, dd: Workload, ctx: BenchContext) -> list[Measurement]:
    """The untraced dd, DD_PER_ATTACH times, while `tracer` traces the idle process."""
    timed = wrapped([])
    if tracer.argv is None:
        return [timed(dd, dd.argv, ctx) for _ in range(DD_PER_ATTACH)]
    cwd = ctx.sikte_tree if tracer.sikte else None
    with attached(tracer.argv(idle_pid), tracer.marker, tracer.env(), tracer.name, cwd):
        return [timed(dd, dd.argv, ctx) for _ in range(DD_PER_ATTACH)]


def measure(available: Sequence[Tracer], ctx: BenchContext,
            failed: dict[str, str]) -> dict[str, list[Measurement]]:
    dd = workload(ctx.quick)
    runs: dict[str, list[Measurement]] = {t.name: [] for t in available}
    idle = subprocess.Popen(["sleep", "infinity"], stdin=subprocess.DEVNULL)
    try:
        rounds = min(ctx.runs, MAX_ROUNDS)
        for round_no in range(rounds):
            start = round_no % len(available)
            for tracer in [*available[start:], *available[:start]]:
                if tracer.name in failed:
                    continue
                try:
                    runs[tracer.name] += under(tracer, idle.pid, dd, ctx)
                except (ToolFailed, subprocess.TimeoutExpired) as err:
                    failed[tracer.name] = str(err)
                    ctx.log(f"bystander: {tracer.name} failed: {err}")
            ctx.log(f"bystander: round {round_no + 1}/{rounds} done")
    finally:
        idle.kill()
        idle.wait()
    return runs


def cpu(runs: Mapping[str, list[Measurement]], name: str) -> float:
    return median_or_nan([m.cpu_s for m in runs.get(name, [])])


def wall(runs: Mapping[str, list[Measurement]], name: str) -> float:
    return median_or_nan([m.wall_s for m in runs.get(name, [])])


def _row(name: str, runs: Mapping[str, list[Measurement]]) -> tuple[str, ...]:
    if not runs.get(name):
        return (name, "0", "-", "-", "-", "-")
    return (name, str(len(runs[name])), f"{cpu(runs, name):.3f}",
            fmt_ratio(ratio(cpu(runs, name), cpu(runs, NOTHING))),
            f"{wall(runs, name):.3f}", fmt_ratio(ratio(wall(runs, name), wall(runs, NOTHING))))


def checks(runs: Mapping[str, list[Measurement]]) -> tuple[Check, ...]:
    """Issue 18: sikte-tui's bystander cost no higher than syscount's in the same run."""
    anchor = SYSCOUNT_LIBBPF if runs.get(SYSCOUNT_LIBBPF) else SYSCOUNT_BCC
    limit = ratio(cpu(runs, anchor), cpu(runs, NOTHING))
    result = []
    for mode in TIMING_MODES:
        name = sikte_name(mode)
        if not runs.get(name) and mode != "exact":
            continue  # a tree without --timing: nothing to check
        mine = ratio(cpu(runs, name), cpu(runs, NOTHING))
        measured = bool(runs.get(name)) and bool(runs.get(anchor))
        result.append(Check(
            f"bystander dd: `--timing {mode}` ≤ `{anchor.split(' (')[0]}`"
            + (f" ({fmt_ratio(limit)})" if measured else ""),
            fmt_ratio(mine) if measured else "not measured",
            mine <= limit if measured else None))
    return tuple(result)


def run(ctx: BenchContext) -> BenchResult:
    all_tracers = tracers(ctx)
    failed = {t.name: why for t in all_tracers if (why := t.probe())}
    for name, why in failed.items():
        ctx.log(f"bystander: {name} cannot run here: {why}")
    available = [t for t in all_tracers if t.name not in failed]
    runs = measure(available, ctx, failed)
    notes = [f"{name}: {why}" for name, why in failed.items()]
    notes += [
        "IDLE is a `sleep infinity` started for the benchmark; the dd beside it is not traced "
        "by anyone, so its extra CPU is what the tracer's probes cost every other process.",
        f"Each tracer is started once per round and the dd runs {DD_PER_ATTACH} times under "
        "it; ratios are against the dd with nothing loaded, in the same rounds.",
    ]
    section = Section(
        title=f"Bystander cost: an untraced {workload(ctx.quick).title} while IDLE is traced",
        columns=("loaded while dd runs", "runs", "CPU s", "CPU ratio", "wall s", "wall ratio"),
        rows=tuple(_row(t.name, runs) for t in all_tracers),
        notes=tuple(notes),
    )
    return BenchResult(sections=(section,), checks=checks(runs))
