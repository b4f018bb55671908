"""Overhead: how much more CPU and wall time a workload takes under each tracer.

Every run goes through benchmarks/runner.py, which times the workload process itself
(wait4 rusage, children included), so no tracer's start-up (bcc compiling, perf opening
events) is counted. The tools take turns within each round, starting one further along each
round, and each figure is the median over the rounds.
"""

from __future__ import annotations

import functools
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
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
    tail,
)

RUNNER = Path(__file__).resolve().parent / "runner.py"
RUN_TIMEOUT_S = 900
ATTACH_TIMEOUT_S = 120
TAR_TREE = "usr/share"  # relative to /, so tar prints no "Removing leading /" warning

UNTRACED = "untraced"
SIKTE_NONE = "sikte-tui record --events none"
SIKTE_DEFAULT = "sikte-tui record"
SIKTE_NO_SAMPLES = "sikte-tui record --events none --sample-hz 0"  # sampling's share
STRACE = "strace -c -f"
PERF = "perf trace -s"
SYSCOUNT = "syscount-bpfcc -L -p PID"
SIKTE_TOOLS = (SIKTE_NONE, SIKTE_DEFAULT)
WAITING_NOTE = ("strace and perf trace work in their own process while the workload waits, "
                "which its CPU time does not show: for them the wall ratio is the fair one.")


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    argv: tuple[str, ...]
    target: float  # the largest sikte-tui CPU ratio the issue accepts
    ok_exits: frozenset[int] = frozenset({0})
    earlier: Mapping[str, str] = field(default_factory=dict)  # tool -> earlier ratio
    min_syscalls: int = 0  # sikte-tui must count at least this many (a sanity check)


def workloads(quick: bool) -> tuple[Workload, ...]:
    count = 200_000 if quick else 1_000_000
    dd = Workload(
        key="dd",
        title=f"one-byte dd ({fmt_int(2 * count)} read+write syscalls)",
        argv=("dd", "if=/dev/zero", "of=/dev/null", "bs=1", f"count={count}", "status=none"),
        target=1.5,
        earlier={STRACE: "160x", PERF: "19x", SYSCOUNT: "2.6x"},
        min_syscalls=2 * count,
    )
    # GNU tar does not read the files at all when the archive is /dev/null (it only stats
    # them), so the archive goes to /dev/zero, which swallows writes just the same.
    tar = Workload(
        key="tar",
        title=f"tar -cf /dev/zero /{TAR_TREE} (page cache warm)",
        argv=("tar", "-C", "/", "-cf", "/dev/zero", TAR_TREE),
        target=1.05,
        ok_exits=frozenset({0, 1}),  # 1: a file changed while read (a package upgrade)
    )
    return dd, tar


@dataclass(frozen=True)
class Measurement:
    cpu_s: float
    wall_s: float
    syscalls: int | None = None  # as counted by sikte-tui, when it was the tracer


class ToolFailed(Exception):
    """A tool could not run or measure the workload; the reason goes in the results."""


Runner = Callable[[Workload, Path], Measurement]


@dataclass(frozen=True)
class Tool:
    name: str
    run: Runner
    probe: Callable[[], str | None] = lambda: None  # why it cannot run here, or None


# -- running one measurement -------------------------------------------------------------------


def _runner_argv(out: Path, gate: bool = False) -> list[str]:
    return [sys.executable, "-I", str(RUNNER), str(out), *(["--gate"] if gate else []), "--"]


def _out_path(scratch: Path) -> Path:
    return scratch / f"run-{uuid.uuid4().hex}.json"


def _read_measurement(out: Path, workload: Workload, rc: int, output: bytes) -> Measurement:
    if not out.exists():
        raise ToolFailed(f"exit status {rc}: {tail(output)}")
    data = json.loads(out.read_text())
    out.unlink()
    if data["exit"] not in workload.ok_exits:
        raise ToolFailed(f"the workload exited with {data['exit']}: {tail(output)}")
    return Measurement(cpu_s=data["user_s"] + data["sys_s"], wall_s=data["wall_s"])


def wrapped(prefix: Sequence[str]) -> Runner:
    """A tool that launches the command it traces: PREFIX runner.py OUT -- WORKLOAD."""

    def run(workload: Workload, scratch: Path) -> Measurement:
        out = _out_path(scratch)
        proc = subprocess.run(
            [*prefix, *_runner_argv(out), *workload.argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=RUN_TIMEOUT_S,
        )
        return _read_measurement(out, workload, proc.returncode, proc.stderr)

    return run


def sikte_record(*options: str) -> Runner:
    """sikte-tui record --json: timed like the others, and its count is kept as a check."""

    def run(workload: Workload, scratch: Path) -> Measurement:
        out = _out_path(scratch)
        proc = subprocess.run(
            # With the journal, as a user runs it, but in the scratch directory.
            [sikte_executable(), "record", *options, "--json", "--user", str(os.getuid()),
             "--db-path", str(scratch / f"run-{time.monotonic_ns()}.sikte.db"),
             "--", *_runner_argv(out), *workload.argv],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=RUN_TIMEOUT_S,
        )
        measured = _read_measurement(out, workload, proc.returncode, proc.stderr)
        try:
            syscalls = sum(row["count"] for row in json.loads(proc.stdout)["syscalls"])
        except (ValueError, KeyError, TypeError):
            raise ToolFailed(f"no JSON summary (exit {proc.returncode}): "
                             f"{tail(proc.stderr)}") from None
        if syscalls < workload.min_syscalls:
            raise ToolFailed(f"counted only {syscalls} syscalls, expected {workload.min_syscalls}")
        return Measurement(measured.cpu_s, measured.wall_s, syscalls)

    return run


def _read_until(stream: int, marker: bytes, timeout_s: float) -> tuple[bool, bytes]:
    """Read a pipe until `marker` shows up, it closes, or the time is up."""
    seen = b""
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as sel:
        sel.register(stream, selectors.EVENT_READ)
        while marker not in seen:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                return False, seen
            chunk = os.read(stream, 4096)
            if not chunk:
                return False, seen
            seen += chunk
    return True, seen


@functools.cache
def _bcc_environment() -> Mapping[str, str]:
    """Our environment plus the kernel headers sikte-tui found, which bcc tools need too."""
    from tracing.engine import kheaders

    env = dict(os.environ, PYTHONUNBUFFERED="1")
    kheaders.prepare_bcc_environment(kheaders.find_kernel_headers(), environ=env)
    return env


def _end_gated(gated: subprocess.Popen[bytes]) -> None:
    """Reap the gated runner; killed unreleased, its workload sees the gate close and exits."""
    if gated.poll() is None:
        gated.kill()
    gated.wait()
    for stream in (gated.stdin, gated.stdout):
        if stream and not stream.closed:
            stream.close()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Ask a tool to finish with Ctrl+C (it prints its summary), then reap it."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


def attached_syscount(workload: Workload, scratch: Path) -> Measurement:
    """syscount cannot launch a command: start the workload gated, attach with -p, release."""
    out = _out_path(scratch)
    with open(scratch / "runner.stderr", "w+b") as errors:
        gated = subprocess.Popen(
            [*_runner_argv(out, gate=True), *workload.argv],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors,
        )
        assert gated.stdin is not None and gated.stdout is not None
        pid = int(gated.stdout.readline() or 0)
        if not pid:
            _end_gated(gated)
            errors.seek(0)
            raise ToolFailed(f"the timing wrapper did not start: {tail(errors.read())}")
        counter = subprocess.Popen(
            [syscount_executable(), "-L", "-p", str(pid)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=_bcc_environment(),
        )
        assert counter.stdout is not None
        try:
            ready, said = _read_until(counter.stdout.fileno(), b"Tracing", ATTACH_TIMEOUT_S)
            if not ready:
                raise ToolFailed(f"syscount did not attach: {tail(said)}")
            gated.stdin.write(b"go\n")
            gated.stdin.close()
            gated.wait(timeout=RUN_TIMEOUT_S)
        finally:
            _end_gated(gated)
            _stop(counter)
        errors.seek(0)
        return _read_measurement(out, workload, gated.returncode, errors.read())


# -- the tools -------------------------------------------------------------------------------


def sikte_executable() -> str:
    beside = Path(sys.executable).with_name("sikte-tui")
    return str(beside) if beside.exists() else shutil.which("sikte-tui") or "sikte-tui"


def syscount_executable() -> str:
    path = os.environ.get("PATH", "") + ":/usr/sbin:/usr/share/bcc/tools"
    return shutil.which("syscount-bpfcc", path=path) or shutil.which("syscount", path=path) or ""


def _probe_command(argv: Sequence[str]) -> str | None:
    if shutil.which(argv[0]) is None:
        return f"{argv[0]} is not installed"
    proc = subprocess.run(argv, capture_output=True, timeout=120)
    if proc.returncode != 0:
        return f"'{' '.join(argv)}' failed ({proc.returncode}): {tail(proc.stderr)}"
    return None


def _probe_sikte() -> str | None:
    if shutil.which(sikte_executable()) is None:
        return "sikte-tui is not installed in the venv (run make bootstrap)"
    return None


def _probe_syscount() -> str | None:
    return None if syscount_executable() else "syscount-bpfcc is not installed (bpfcc-tools)"


def tools() -> tuple[Tool, ...]:
    return (
        Tool(UNTRACED, wrapped([])),
        Tool(SIKTE_NONE, sikte_record("--events", "none"), _probe_sikte),
        Tool(SIKTE_DEFAULT, sikte_record(), _probe_sikte),
        Tool(SIKTE_NO_SAMPLES, sikte_record("--events", "none", "--sample-hz", "0"),
             _probe_sikte),
        Tool(STRACE, wrapped(["strace", "-c", "-f", "-o", "/dev/null"]),
             lambda: _probe_command(["strace", "-c", "-f", "-o", "/dev/null", "true"])),
        Tool(PERF, wrapped(["perf", "trace", "-s", "-o", "/dev/null", "--"]),
             lambda: _probe_command(["perf", "trace", "-s", "-o", "/dev/null", "--", "true"])),
        Tool(SYSCOUNT, attached_syscount, _probe_syscount),
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
    warm_up(workload)
    for round_no in range(ctx.runs):
        for tool in rotated(available, round_no):
            if tool.name in samples.failed:
                continue
            try:
                samples.runs[tool.name].append(tool.run(workload, ctx.scratch))
            except (ToolFailed, subprocess.TimeoutExpired) as err:
                samples.failed[tool.name] = str(err)
                ctx.log(f"{tool.name} failed on {workload.key}: {err}")
        ctx.log(f"overhead {workload.key}: round {round_no + 1}/{ctx.runs} done")
    return samples


def _reference(workload: Workload, tool: str) -> str:
    if tool in SIKTE_TOOLS:
        return f"target ≤ {workload.target:g}x"
    return f"earlier {workload.earlier[tool]}" if tool in workload.earlier else ""


def _row(workload: Workload, samples: Samples, tool: str) -> tuple[str, ...]:
    if tool in samples.failed and not samples.runs.get(tool):
        return (tool, "0", "-", "-", "-", "-", "did not run (see below)")
    cpu, wall = samples.cpu(tool), samples.wall(tool)
    return (
        tool,
        str(len(samples.runs[tool])),
        f"{cpu:.3f}",
        fmt_ratio(ratio(cpu, samples.cpu(UNTRACED))),
        f"{wall:.3f}",
        fmt_ratio(ratio(wall, samples.wall(UNTRACED))),
        _reference(workload, tool),
    )


def section(workload: Workload, all_tools: Sequence[Tool], samples: Samples) -> Section:
    notes = [f"{tool}: {why}" for tool, why in samples.failed.items()]
    notes.append(WAITING_NOTE)
    if (count := samples.syscalls()) is not None:
        notes.insert(0, f"sikte-tui counted {fmt_int(count)} syscalls per run "
                        "(the workload's, plus about a thousand of the timing wrapper's).")
    return Section(
        title=f"Overhead: {workload.title}",
        columns=("tool", "runs", "CPU s", "CPU ratio", "wall s", "wall ratio",
                 "target or earlier"),
        rows=tuple(_row(workload, samples, t.name) for t in all_tools),
        notes=tuple(notes),
    )


def checks(workload: Workload, samples: Samples) -> tuple[Check, ...]:
    result = []
    for tool in SIKTE_TOOLS:
        r = ratio(samples.cpu(tool), samples.cpu(UNTRACED))
        measured = fmt_ratio(r) if samples.runs.get(tool) else "not measured"
        ok = r <= workload.target if samples.runs.get(tool) else None
        result.append(Check(f"{workload.key}: `{tool}` ≤ {workload.target:g}x untraced CPU",
                            measured, ok))
    return tuple(result)


def run(ctx: BenchContext) -> BenchResult:
    all_tools = tools()
    unavailable = {t.name: why for t in all_tools if (why := t.probe())}
    for name, why in unavailable.items():
        ctx.log(f"{name} cannot run here: {why}")
    available = [t for t in all_tools if t.name not in unavailable]
    sections: list[Section] = []
    all_checks: list[Check] = []
    for workload in workloads(ctx.quick):
        samples = measure(workload, available, ctx)
        samples.failed = {**unavailable, **samples.failed}
        sections.append(section(workload, all_tools, samples))
        all_checks.extend(checks(workload, samples))
    return BenchResult(sections=tuple(sections), checks=tuple(all_checks))
