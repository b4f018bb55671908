"""Overhead: how much more CPU and wall time a workload takes under each tracer.

Every run goes through benchmarks/runner.py (see benchmarks/tracers.py), which times the
workload process itself, so no tracer's start-up is counted. The tools take turns within
each round, starting one further along each round, and each figure is the median over the
rounds, as a ratio against the untraced run of the same workload in the same run.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

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
from benchmarks.tracers import (
    BPFTRACE_READY,
    SYSCOUNT_READY,
    Measurement,
    Tool,
    ToolFailed,
    Workload,
    attaching,
    bcc_environment,
    bpftrace_program,
    check_bpftrace,
    check_syscount,
    probe_command,
    probe_executable,
    probe_sikte,
    probe_sikte_timing,
    sikte_record,
    syscount_bcc_executable,
    syscount_libbpf_argv,
    syscount_libbpf_executable,
    wrapped,
)

TAR_TREE = "usr/share"  # relative to /, so tar prints no "Removing leading /" warning
TAR_SMALL_TREE = "usr/share/doc"  # about a tenth of usr/share's syscalls on Debian

UNTRACED = "untraced"
UNTRACED_SMALL = "untraced, smaller run"
SIKTE_NONE = "sikte-tui record --events none"  # --timing exact, the default
SIKTE_DEFAULT = "sikte-tui record"
SIKTE_SAMPLED = "sikte-tui record --events none --timing sampled"
SIKTE_OFF = "sikte-tui record --events none --timing off"
STRACE = "strace -c -f (smaller run)"
PERF = "perf trace -s (smaller run)"
SYSCOUNT_BCC = "syscount-bpfcc -L -p PID"
SYSCOUNT_LIBBPF = "syscount -L -p PID (libbpf-tools)"
BPFTRACE = "bpftrace latency one-liner"
FLOOR = "two empty raw tracepoints (the floor)"
# A standalone bcc script, outside the packages: only tracing/engine/ may import bcc there.
FLOOR_PROBE = Path(__file__).resolve().parent.parent / "scripts" / "bench_floor_probe.py"
SIKTE_TOOLS = (SIKTE_NONE, SIKTE_DEFAULT, SIKTE_SAMPLED, SIKTE_OFF)
WAITING_NOTE = ("strace and perf trace work in their own process while the workload waits, "
                "which its CPU time does not show: for them the wall ratio is the fair one.")

# The anchors' rounds: their figures are context, sikte-tui's rows and the untraced ones get
# every round (--runs); 3 keeps a full `make bench` within its 15 minutes.
ANCHOR_ROUNDS = 3

# Issue 18's targets: the largest CPU ratio accepted, per workload and sikte-tui row.
TARGETS: Mapping[str, Mapping[str, float]] = {
    "dd": {SIKTE_NONE: 1.9, SIKTE_DEFAULT: 1.9, SIKTE_SAMPLED: 1.5, SIKTE_OFF: 1.35},
    "tar": {SIKTE_NONE: 1.10, SIKTE_DEFAULT: 1.10},
}


def dd_argv(count: int) -> tuple[str, ...]:
    return ("dd", "if=/dev/zero", "of=/dev/null", "bs=1", f"count={count}", "status=none")


def tar_argv(tree: str) -> tuple[str, ...]:
    # GNU tar does not read the files at all when the archive is /dev/null (it only stats
    # them), so the archive goes to /dev/zero, which swallows writes just the same.
    return ("tar", "-C", "/", "-cf", "/dev/zero", tree)


def workloads(quick: bool) -> tuple[Workload, ...]:
    count = 200_000 if quick else 1_000_000
    small = count // 10
    dd = Workload(
        key="dd",
        title=f"one-byte dd ({fmt_int(2 * count)} read+write syscalls)",
        argv=dd_argv(count),
        small_argv=dd_argv(small),
        small_title=f"dd count={fmt_int(small)} ({fmt_int(2 * small)} syscalls)",
        min_syscalls=2 * count,
        small_min_syscalls=2 * small,
    )
    tar = Workload(
        key="tar",
        title=f"tar -cf /dev/zero /{TAR_TREE} (page cache warm)",
        argv=tar_argv(TAR_TREE),
        small_argv=tar_argv(TAR_SMALL_TREE),
        small_title=f"tar of /{TAR_SMALL_TREE}",
        ok_exits=frozenset({0, 1}),  # 1: a file changed while read (a package upgrade)
    )
    return dd, tar


def bpftrace_argv(pid: int) -> list[str]:
    return ["bpftrace", "-e", bpftrace_program(pid)]


def tools() -> tuple[Tool, ...]:
    def syscount_bcc(pid: int) -> list[str]:
        return [syscount_bcc_executable(), "-L", "-p", str(pid)]

    def syscount_libbpf(pid: int) -> list[str]:
        return syscount_libbpf_argv(["-L", "-p", str(pid)])

    return (
        Tool(UNTRACED, wrapped([])),
        # In the same rounds as the slow tools whose base it is.
        Tool(UNTRACED_SMALL, wrapped([]), small=True, max_rounds=ANCHOR_ROUNDS),
        Tool(SIKTE_NONE, sikte_record("--events", "none"), probe_sikte),
        Tool(SIKTE_DEFAULT, sikte_record(), probe_sikte),
        Tool(SIKTE_SAMPLED, sikte_record("--events", "none", "--timing", "sampled"),
             probe_sikte_timing),
        Tool(SIKTE_OFF, sikte_record("--events", "none", "--timing", "off"),
             probe_sikte_timing),
        Tool(STRACE, wrapped(["strace", "-c", "-f", "-o", "/dev/null"]),
             lambda _ctx: probe_command(["strace", "-c", "-f", "-o", "/dev/null", "true"]),
             small=True, max_rounds=ANCHOR_ROUNDS),
        Tool(PERF, wrapped(["perf", "trace", "-s", "-o", "/dev/null", "--"]),
             lambda _ctx: probe_command(["perf", "trace", "-s", "-o", "/dev/null", "--",
                                         "true"]),
             small=True, max_rounds=ANCHOR_ROUNDS),
        Tool(SYSCOUNT_BCC,
             # It needs the same kernel headers as sikte-tui: pass the ones sikte-tui found.
             attaching(syscount_bcc, SYSCOUNT_READY, "syscount-bpfcc", bcc_environment,
                       check_syscount),
             lambda _ctx: probe_executable(syscount_bcc_executable(), "bpfcc-tools"),
             max_rounds=ANCHOR_ROUNDS),
        Tool(SYSCOUNT_LIBBPF, attaching(syscount_libbpf, SYSCOUNT_READY, "syscount",
                                          check=check_syscount),
             lambda _ctx: probe_executable(syscount_libbpf_executable(), "libbpf-tools"),
             max_rounds=ANCHOR_ROUNDS),
        # What any tracer on these tracepoints pays at least, in the same run.
        Tool(FLOOR, attaching(lambda _pid: [sys.executable, str(FLOOR_PROBE)], SYSCOUNT_READY,
                              "the floor probe", bcc_environment),
             max_rounds=ANCHOR_ROUNDS),
        Tool(BPFTRACE, attaching(bpftrace_argv, BPFTRACE_READY, "bpftrace",
                                 check=check_bpftrace),
             lambda _ctx: probe_executable(shutil.which("bpftrace") or "", "bpftrace"),
             max_rounds=ANCHOR_ROUNDS),
    )


# -- rounds and results ----------------------------------------------------------------------


@dataclass
class Samples:
    runs: dict[str, list[Measurement]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # tool -> why it has no figures

    def cpu(self, tool: str) -> float:
        return median_or_nan([m.cpu_s for m in self.runs.get(tool, [])])

    def wall(self, tool: str) -> float:
        return median_or_nan([m.wall_s for m in self.runs.get(tool, [])])

    def bpf_shown(self, tool: str) -> float:
        """The median in-kernel ns per call sikte-tui reported for this row (nan: none)."""
        return median_or_nan([m.bpf_ns_per_call for m in self.runs.get(tool, [])
                              if m.bpf_ns_per_call is not None])

    def ns_per_call(self, tool: str, base: str = UNTRACED) -> float:
        """What the benchmark measured: the workload's extra CPU per syscall traced, over
        the untraced run (or over the floor: what BPF run-time statistics can see)."""
        extra = self.cpu(tool) - self.cpu(base)
        count = self.syscalls()
        return extra * 1e9 / count if count else float("nan")

    def syscalls(self) -> int | None:
        counts = [m.syscalls for ms in self.runs.values() for m in ms if m.syscalls]
        return min(counts) if counts else None


def warm_up(workload: Workload) -> None:
    """Two untimed runs: the page cache holds the tree, and dd's pages are hot."""
    for _ in range(2):
        subprocess.run(workload.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def rotated(items: Sequence[Tool], start: int) -> list[Tool]:
    start %= len(items)
    return [*items[start:], *items[:start]]


def measure(workload: Workload, available: Sequence[Tool], ctx: BenchContext) -> Samples:
    samples = Samples(runs={t.name: [] for t in available})
    spent = dict.fromkeys(samples.runs, 0.0)  # wall s per tool, start-up included
    warm_up(workload)
    for round_no in range(ctx.runs):
        for tool in rotated(available, round_no):
            if tool.name in samples.failed or round_no >= (tool.max_rounds or ctx.runs):
                continue
            argv = workload.small_argv if tool.small else workload.argv
            started = time.monotonic()
            try:
                samples.runs[tool.name].append(tool.run(workload, argv, ctx))
            except (ToolFailed, subprocess.TimeoutExpired) as err:
                samples.failed[tool.name] = str(err)
                ctx.log(f"{tool.name} failed on {workload.key}: {err}")
            spent[tool.name] += time.monotonic() - started
        ctx.log(f"overhead {workload.key}: round {round_no + 1}/{ctx.runs} done")
    # Where a full run's minutes go (it must fit in 15), for whoever tunes the rows.
    ctx.log(f"overhead {workload.key}: wall s per tool over all rounds: "
            + ", ".join(f"{name} {s:.0f}" for name, s in sorted(spent.items(),
                                                                 key=lambda kv: -kv[1])))
    return samples


def _row(workload: Workload, samples: Samples, tool: Tool) -> tuple[str, ...]:
    target = TARGETS.get(workload.key, {}).get(tool.name)
    reference = f"≤ {target:g}x" if target else ""
    if tool.name in samples.failed and not samples.runs.get(tool.name):
        return (tool.name, "0", "-", "-", "-", "-", "did not run (see below)")
    base = UNTRACED_SMALL if tool.small else UNTRACED
    cpu, wall = samples.cpu(tool.name), samples.wall(tool.name)
    return (
        tool.name,
        str(len(samples.runs[tool.name])),
        f"{cpu:.3f}",
        fmt_ratio(ratio(cpu, samples.cpu(base))),
        f"{wall:.3f}",
        fmt_ratio(ratio(wall, samples.wall(base))),
        reference,
    )


def section(workload: Workload, all_tools: Sequence[Tool], samples: Samples) -> Section:
    notes = [f"{tool}: {why}" for tool, why in samples.failed.items()]
    notes.append(f"The rows marked smaller run trace {workload.small_title} and their ratios "
                 f"are against `{UNTRACED_SMALL}`, the same smaller workload untraced: on the "
                 "full one strace and perf trace alone would take most of the 15 minutes a "
                 "full `make bench` may take.")
    notes.append(WAITING_NOTE)
    notes.append(f"The anchors (every tool but sikte-tui) run in the first {ANCHOR_ROUNDS} "
                 "rounds only, so that a full run fits in 15 minutes.")
    notes.append(f"`{SIKTE_NONE}` is timing mode exact (the default); the --timing rows "
                 "run once sikte-tui has the flag.")
    for tool in SIKTE_TOOLS:
        if (shown := samples.bpf_shown(tool)) == shown:  # not nan
            notes.append(f"`{tool}` showed {shown:.0f} ns per traced call in the kernel (BPF "
                         f"run-time statistics); the workload measured "
                         f"{samples.ns_per_call(tool):.0f} ns per call more than untraced, "
                         f"{samples.ns_per_call(tool, FLOOR):.0f} more than under two empty "
                         "tracepoints (their entry and exit are outside the programs' run "
                         "time).")
    if (count := samples.syscalls()) is not None:
        notes.insert(0, f"sikte-tui counted {fmt_int(count)} syscalls per run "
                        "(the workload's, plus about a thousand of the timing wrapper's).")
    return Section(
        title=f"Overhead: {workload.title}",
        columns=("tool", "runs", "CPU s", "CPU ratio", "wall s", "wall ratio", "target"),
        rows=tuple(_row(workload, samples, t) for t in all_tools),
        notes=tuple(notes),
    )


def checks(workload: Workload, samples: Samples) -> tuple[Check, ...]:
    result = []
    for tool, target in TARGETS.get(workload.key, {}).items():
        measured = bool(samples.runs.get(tool))
        r = ratio(samples.cpu(tool), samples.cpu(UNTRACED))
        result.append(Check(f"{workload.key}: `{tool}` ≤ {target:g}x untraced CPU",
                            fmt_ratio(r) if measured else "not measured",
                            r <= target if measured else None))
    shown = samples.bpf_shown(SIKTE_NONE)
    if workload.key == "dd" and shown == shown:  # the tree reports its kernel cost
        per_call = samples.ns_per_call(SIKTE_NONE)
        result.append(Check(f"{workload.key}: in-kernel ns/call shown within 20% of the "
                            "measured (--timing exact)",
                            f"{shown:.0f} shown, {per_call:.0f} measured",
                            abs(shown - per_call) <= 0.2 * per_call))
    return tuple(result)


def run(ctx: BenchContext) -> BenchResult:
    all_tools = tools()
    unavailable = {t.name: why for t in all_tools if (why := t.probe(ctx))}
    for name, why in unavailable.items():
        ctx.log(f"{name} cannot run here: {why}")
    available = [t for t in all_tools if t.name not in unavailable]
    if not any(t.small and t.name != UNTRACED_SMALL for t in available):
        available = [t for t in available if t.name != UNTRACED_SMALL]
    sections: list[Section] = []
    all_checks: list[Check] = []
    for workload in workloads(ctx.quick):
        samples = measure(workload, available, ctx)
        samples.failed = {**unavailable, **samples.failed}
        shown = [t for t in all_tools if t.name != UNTRACED_SMALL or t in available]
        sections.append(section(workload, shown, samples))
        all_checks.extend(checks(workload, samples))
    return BenchResult(sections=tuple(sections), checks=tuple(all_checks))
