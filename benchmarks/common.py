"""What every benchmark shares: the run context, result tables and target checks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median

C_DIR = Path(__file__).resolve().parent / "c"


@dataclass(frozen=True)
class Section:
    """One results table, printed to the terminal and written to docs/performance.md."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Check:
    """A measured figure against a target from the issue; `ok` is None when not measured."""

    target: str
    measured: str
    ok: bool | None


@dataclass(frozen=True)
class BenchResult:
    sections: tuple[Section, ...] = ()
    checks: tuple[Check, ...] = ()
    # Broken invariants (not slow figures): the bench exits non-zero when there are any.
    failures: tuple[str, ...] = ()


@dataclass
class BenchContext:
    """Options and a scratch directory (for compiled programs and measurement files)."""

    runs: int
    quick: bool
    scratch: Path
    # sikte-tui from another source tree (this venv, PYTHONPATH=tree), e.g. a tree before a
    # change, for its figures in the same run as the tools'; None: this venv's sikte-tui.
    sikte_tree: Path | None = None
    _programs: dict[str, Path] = field(default_factory=dict)

    def program(self, name: str) -> Path:
        """benchmarks/c/NAME.c compiled into the scratch directory (once per session)."""
        if name not in self._programs:
            self._programs[name] = compile_c(C_DIR / f"{name}.c", self.scratch / name)
        return self._programs[name]

    def log(self, message: str) -> None:
        # The time of day shows where a full run's minutes go.
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Benchmark:
    name: str
    description: str
    run: Callable[[BenchContext], BenchResult]


def make_scratch() -> tempfile.TemporaryDirectory[str]:
    scratch = tempfile.TemporaryDirectory(prefix="sikte-bench-")
    # Launched commands may run as another user (the sudo caller): let them reach it.
    os.chmod(scratch.name, 0o755)
    return scratch


def compile_c(source: Path, output: Path) -> Path:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise RuntimeError("no C compiler (cc or gcc) on PATH; install gcc")
    subprocess.run([compiler, "-O2", "-Wall", "-o", str(output), str(source)], check=True)
    return output


def ratio(value: float, base: float) -> float:
    return value / base if base > 0 else float("nan")


def fmt_ratio(value: float) -> str:
    return f"{value:.2f}x" if value < 10 else f"{value:.1f}x"


def fmt_int(n: float) -> str:
    return f"{n:,.0f}"


def tail(text: str | bytes, lines: int = 3) -> str:
    """The last few non-empty lines of a tool's output, on one line."""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    return " / ".join(kept[-lines:]) or "no output"


def median_or_nan(values: Sequence[float]) -> float:
    return median(values) if values else float("nan")
