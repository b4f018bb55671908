"""How each tracer is put around a workload, and what one timed run of it measured.

Every run goes through benchmarks/runner.py, which times the workload process itself
(wait4 rusage, children included), so no tracer's start-up (bcc compiling, bpftrace's LLVM,
perf opening events) is counted. Tools that launch the command they trace wrap the runner;
tools that can only attach to a PID (the syscounts, bpftrace) attach to a gated runner's
workload, which is released once the tool says it is tracing.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.common import BenchContext, tail

RUNNER = Path(__file__).resolve().parent / "runner.py"
RUN_TIMEOUT_S = 900
ATTACH_TIMEOUT_S = 120
# sikte-tui's cli/main.py, run from another source tree (--sikte-tree) with this venv.
SIKTE_MAIN = "import sys; from cli.main import main; sys.exit(main())"
SIKTE_READY = b"sikte-tui: tracing"
SYSCOUNT_READY = b"Tracing"
BPFTRACE_READY = b"bench-ready"
TIMING_MODES = ("exact", "sampled", "off")


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    argv: tuple[str, ...]
    # The smaller run that the slow tools (strace, perf trace) get, and how it is described:
    # on the full one they alone would take most of the bench's 15 minutes.
    small_argv: tuple[str, ...]
    small_title: str
    ok_exits: frozenset[int] = frozenset({0})
    min_syscalls: int = 0  # sikte-tui must count at least this many (a sanity check)
    small_min_syscalls: int = 0


@dataclass(frozen=True)
class Measurement:
    cpu_s: float
    wall_s: float
    syscalls: int | None = None  # as counted by sikte-tui, when it was the tracer
    # The in-kernel ns per traced call sikte-tui reported (issue 18, record --json "bpf"),
    # when it was the tracer and had BPF run-time statistics.
    bpf_ns_per_call: float | None = None


class ToolFailed(Exception):
    """A tool could not run or measure the workload; the reason goes in the results."""


# A runner times one run of a workload's argv (full or small) under its tool.
Runner = Callable[[Workload, Sequence[str], BenchContext], Measurement]


@dataclass(frozen=True)
class Tool:
    name: str
    run: Runner
    probe: Callable[[BenchContext], str | None] = lambda _ctx: None  # why it cannot run
    small: bool = False  # runs the workload's smaller run (its ratio is against that)
    # At most this many rounds (the anchors: context for sikte-tui's rows, which get every
    # round), so that a full `make bench` fits in 15 minutes; None: every round.
    max_rounds: int | None = None


# -- the timing wrapper ----------------------------------------------------------------------


def runner_argv(out: Path, gate: bool = False) -> list[str]:
    return [sys.executable, "-I", str(RUNNER), str(out), *(["--gate"] if gate else []), "--"]


def out_path(scratch: Path) -> Path:
    return scratch / f"run-{uuid.uuid4().hex}.json"


def read_measurement(out: Path, workload: Workload, rc: int, output: bytes) -> Measurement:
    if not out.exists():
        raise ToolFailed(f"exit status {rc}: {tail(output)}")
    data = json.loads(out.read_text())
    out.unlink()
    if data["exit"] not in workload.ok_exits:
        raise ToolFailed(f"the workload exited with {data['exit']}: {tail(output)}")
    return Measurement(cpu_s=data["user_s"] + data["sys_s"], wall_s=data["wall_s"])


def wrapped(prefix: Sequence[str]) -> Runner:
    """A tool that launches the command it traces: PREFIX runner.py OUT -- WORKLOAD."""

    def run(workload: Workload, argv: Sequence[str], ctx: BenchContext) -> Measurement:
        out = out_path(ctx.scratch)
        proc = subprocess.run(
            [*prefix, *runner_argv(out), *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=RUN_TIMEOUT_S,
        )
        return read_measurement(out, workload, proc.returncode, proc.stderr)

    return run


# -- sikte-tui -------------------------------------------------------------------------------


def sikte_executable() -> str:
    beside = Path(sys.executable).with_name("sikte-tui")
    return str(beside) if beside.exists() else shutil.which("sikte-tui") or "sikte-tui"


def sikte_command(ctx: BenchContext) -> tuple[list[str], dict[str, str] | None]:
    """How to start sikte-tui: this venv's, or another source tree's with this venv."""
    if ctx.sikte_tree is None:
        return [sikte_executable()], None
    env = dict(os.environ, PYTHONPATH=str(ctx.sikte_tree))
    return [sys.executable, "-c", SIKTE_MAIN], env


def sikte_record(*options: str) -> Runner:
    """sikte-tui record --json: timed like the others, and its count is kept as a check."""

    def run(workload: Workload, argv: Sequence[str], ctx: BenchContext) -> Measurement:
        out = out_path(ctx.scratch)
        command, env = sikte_command(ctx)
        proc = subprocess.run(
            # With the journal, as a user runs it, but in the scratch directory.
            [*command, "record", *options, "--json", "--user", str(os.getuid()),
             "--db-path", str(ctx.scratch / f"run-{time.monotonic_ns()}.sikte.db"),
             "--", *runner_argv(out), *argv],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=RUN_TIMEOUT_S,
            env=env,
            cwd=ctx.sikte_tree,
        )
        measured = read_measurement(out, workload, proc.returncode, proc.stderr)
        try:
            summary = json.loads(proc.stdout)
            syscalls = sum(row["count"] for row in summary["syscalls"])
        except (ValueError, KeyError, TypeError):
            raise ToolFailed(f"no JSON summary (exit {proc.returncode}): "
                             f"{tail(proc.stderr)}") from None
        if syscalls < workload.min_syscalls:
            raise ToolFailed(f"counted only {syscalls} syscalls, expected {workload.min_syscalls}")
        return Measurement(measured.cpu_s, measured.wall_s, syscalls, bpf_ns_per_call(summary))

    return run


def bpf_ns_per_call(summary: object) -> float | None:
    """record --json's "bpf": {"ns_per_call": ...}, when this sikte-tui has it."""
    bpf = summary.get("bpf") if isinstance(summary, dict) else None
    value = bpf.get("ns_per_call") if isinstance(bpf, dict) else None
    return float(value) if isinstance(value, int | float) and value > 0 else None


def probe_sikte(ctx: BenchContext) -> str | None:
    command, _ = sikte_command(ctx)
    if shutil.which(command[0]) is None:
        return "sikte-tui is not installed in the venv (run make bootstrap)"
    return None


@functools.cache
def _sikte_help(command: tuple[str, ...], tree: Path | None) -> str:
    env = None if tree is None else dict(os.environ, PYTHONPATH=str(tree))
    proc = subprocess.run([*command, "record", "--help"], capture_output=True, text=True,
                          timeout=60, env=env, cwd=tree)
    return proc.stdout


def probe_sikte_timing(ctx: BenchContext) -> str | None:
    """The --timing rows wait for the flag (issue 18): a tree without it skips them."""
    if why := probe_sikte(ctx):
        return why
    command, _ = sikte_command(ctx)
    if "--timing" not in _sikte_help(tuple(command), ctx.sikte_tree):
        return "this sikte-tui has no --timing flag yet"
    return None


def sikte_attach_argv(ctx: BenchContext, timing: str | None) -> Callable[[int], list[str]]:
    """sikte-tui record on a running PID, as the bystander benchmark attaches it."""
    command, _ = sikte_command(ctx)
    mode = ["--timing", timing] if timing else []
    return lambda pid: [*command, "record", "--events", "none", "--no-journal", *mode,
                        "--pid", str(pid)]


# -- tools that attach to a PID ----------------------------------------------------------------


def read_until(stream: int, marker: bytes, timeout_s: float) -> tuple[bool, bytes]:
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
def bcc_environment() -> Mapping[str, str]:
    """Our environment plus the kernel headers sikte-tui found, which bcc tools need too."""
    from tracing.engine import kheaders

    env = dict(os.environ, PYTHONUNBUFFERED="1")
    kheaders.prepare_bcc_environment(kheaders.find_kernel_headers(), environ=env)
    return env


def _stop(proc: subprocess.Popen[bytes]) -> bytes:
    """Ask a tool to finish with Ctrl+C (it prints its summary), reap it, return its output."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        said, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        said, _ = proc.communicate()
    return said or b""


@dataclass
class Attached:
    """What an attached tool printed: before it was ready, and up to its exit."""

    output: bytes = b""
    extra: dict[str, str] = field(default_factory=dict)


@contextlib.contextmanager
def attached(argv: Sequence[str], marker: bytes, env: Mapping[str, str] | None = None,
             name: str = "the tool", cwd: Path | None = None) -> Iterator[Attached]:
    """Run a tracer until the block ends (then Ctrl+C); the block starts once it is ready."""
    proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env, cwd=cwd)
    assert proc.stdout is not None
    result = Attached()
    try:
        ready, said = read_until(proc.stdout.fileno(), marker, ATTACH_TIMEOUT_S)
        result.output = said
        if not ready:
            raise ToolFailed(f"{name} did not attach: {tail(said)}")
        yield result
    finally:
        result.output += _stop(proc)


def _end_gated(gated: subprocess.Popen[bytes]) -> None:
    """Reap the gated runner; killed unreleased, its workload sees the gate close and exits."""
    if gated.poll() is None:
        gated.kill()
    gated.wait()
    for stream in (gated.stdin, gated.stdout):
        if stream and not stream.closed:
            stream.close()


def attaching(tool_argv: Callable[[int], list[str]], marker: bytes, name: str,
              env: Callable[[], Mapping[str, str] | None] = lambda: None,
              check: Callable[[Workload, Sequence[str], bytes], None] | None = None) -> Runner:
    """A tool that cannot launch a command: start the workload gated, attach to its PID,
    release it once the tool is ready; `check` may reject the tool's final output."""

    def run(workload: Workload, argv: Sequence[str], ctx: BenchContext) -> Measurement:
        out = out_path(ctx.scratch)
        with open(ctx.scratch / "runner.stderr", "w+b") as errors:
            gated = subprocess.Popen([*runner_argv(out, gate=True), *argv],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=errors)
            assert gated.stdin is not None and gated.stdout is not None
            try:
                pid = int(gated.stdout.readline() or 0)
                if not pid:
                    errors.seek(0)
                    raise ToolFailed(f"the timing wrapper did not start: {tail(errors.read())}")
                with attached(tool_argv(pid), marker, env(), name) as tool:
                    gated.stdin.write(b"go\n")
                    gated.stdin.close()
                    gated.wait(timeout=RUN_TIMEOUT_S)
            finally:
                _end_gated(gated)
            errors.seek(0)
            measured = read_measurement(out, workload, gated.returncode, errors.read())
        if check is not None:
            check(workload, argv, tool.output)
        return measured

    return run


# -- the anchors -------------------------------------------------------------------------------


def syscount_bcc_executable() -> str:
    path = os.environ.get("PATH", "") + ":/usr/sbin:/usr/share/bcc/tools"
    return shutil.which("syscount-bpfcc", path=path) or ""


def syscount_libbpf_executable() -> str:
    """libbpf-tools' compiled syscount (Debian: /usr/sbin/syscount), never bcc's script."""
    path = os.environ.get("PATH", "") + ":/usr/sbin"
    found = shutil.which("syscount", path=path) or ""
    if found:
        with open(found, "rb") as f:
            if f.read(4) != b"\x7fELF":
                return ""  # a bcc tools directory's Python syscount
    return found


def syscount_libbpf_argv(options: Sequence[str]) -> list[str]:
    # Its "Tracing..." line is printf'd into a pipe: line buffering lets us see it at once.
    stdbuf = ["stdbuf", "-oL"] if shutil.which("stdbuf") else []
    return [*stdbuf, syscount_libbpf_executable(), *options]


def bpftrace_program(pid: int) -> str:
    """The classic syscall-latency one-liner, limited to one process; BEGIN says ready."""
    return (f'BEGIN {{ printf("{BPFTRACE_READY.decode()}\\n"); }} '
            f"tracepoint:raw_syscalls:sys_enter /pid == {pid}/ {{ @start[tid] = nsecs; }} "
            "tracepoint:raw_syscalls:sys_exit /@start[tid]/ "
            "{ @usecs = hist((nsecs - @start[tid]) / 1000); delete(@start[tid]); } "
            "END { clear(@start); }")


HIST_BUCKET = re.compile(rb"^\[[^\]\)]*[\]\)]\s+(\d+)\s*\|", re.MULTILINE)


def histogram_total(output: bytes) -> int:
    return sum(int(m.group(1)) for m in HIST_BUCKET.finditer(output))


def check_bpftrace(workload: Workload, argv: Sequence[str], output: bytes) -> None:
    """bpftrace's histogram must hold the workload's calls, or it traced too little."""
    full = tuple(argv) == workload.argv
    expected = workload.min_syscalls if full else workload.small_min_syscalls
    if (total := histogram_total(output)) < expected:
        raise ToolFailed(f"bpftrace timed only {total} calls, expected {expected}: "
                         f"{tail(output)}")


SYSCOUNT_ROW = re.compile(rb"^\S+\s+(\d+)\s+[\d.]+\s*$", re.MULTILINE)


def check_syscount(workload: Workload, argv: Sequence[str], output: bytes) -> None:
    """syscount's top ten (dd: read and write) must hold the workload's calls."""
    full = tuple(argv) == workload.argv
    expected = workload.min_syscalls if full else workload.small_min_syscalls
    if (total := sum(int(m.group(1)) for m in SYSCOUNT_ROW.finditer(output))) < expected:
        raise ToolFailed(f"syscount counted only {total} calls, expected {expected}: "
                         f"{tail(output)}")


def probe_command(argv: Sequence[str]) -> str | None:
    if shutil.which(argv[0]) is None:
        return f"{argv[0]} is not installed"
    proc = subprocess.run(argv, capture_output=True, timeout=120)
    if proc.returncode != 0:
        return f"'{' '.join(argv)}' failed ({proc.returncode}): {tail(proc.stderr)}"
    return None


def probe_executable(found: str, package: str) -> str | None:
    return None if found else f"not installed ({package}; make bench installs it)"
