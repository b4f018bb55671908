"""Rendering results: the tables for the terminal, and the figures section of
docs/performance.md (between two markers; the rest of the document is written by hand)."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common import BenchResult, Check, Section

DOC = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
START = "<!-- figures:start (written by `make bench`; edits between these markers are lost) -->"
END = "<!-- figures:end -->"
CLOCKSOURCE = Path("/sys/devices/system/clocksource/clocksource0/current_clocksource")


# -- tables ----------------------------------------------------------------------------------


def _numeric(cells: Sequence[str]) -> bool:
    filled = [c for c in cells if c]
    return bool(filled) and all(c[0].isdigit() or c[0] in "-≤≥" for c in filled)


def table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table padded to line up in a terminal too."""
    widths = [max(len(c), 3, *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    right = [i > 0 and _numeric([r[i] for r in rows]) for i in range(len(columns))]

    def line(cells: Sequence[str]) -> str:
        padded = (c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right,
                                                                        strict=True))
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if r else ("-" * (w + 2))
                          for w, r in zip(widths, right, strict=True)) + "|"
    return "\n".join([line(columns), rule, *(line(r) for r in rows)])


def render_section(section: Section) -> str:
    parts = [f"### {section.title}", "", table(section.columns, section.rows)]
    if section.notes:
        parts += ["", *(f"- {n}" for n in section.notes)]
    return "\n".join(parts)


def targets_section(checks: Sequence[Check]) -> Section:
    verdict = {True: "yes", False: "NO", None: "not measured"}
    return Section(
        title="Targets from the issue",
        columns=("target", "measured", "met"),
        rows=tuple((c.target, c.measured, verdict[c.ok]) for c in checks),
    )


def render_results(results: Sequence[BenchResult]) -> str:
    sections = [s for r in results for s in r.sections]
    checks = [c for r in results for c in r.checks]
    if checks:
        sections.insert(0, targets_section(checks))
    return "\n\n".join(render_section(s) for s in sections)


# -- the machine -----------------------------------------------------------------------------


def _first_line(argv: Sequence[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0] if lines else "unknown"


def _cpu_model() -> tuple[str, bool]:
    """The CPU's model name, and whether it runs under a hypervisor."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown", False
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines()
                  if line.startswith("model name")), "unknown")
    return model, " hypervisor" in info


def machine_lines() -> list[str]:
    model, virtual = _cpu_model()
    try:
        clocksource = CLOCKSOURCE.read_text().strip()
    except OSError:
        clocksource = "unknown"
    bcc = _first_line(["dpkg-query", "-W", "-f", "${Version}", "python3-bpfcc"])
    libbpf_tools = _first_line(["dpkg-query", "-W", "-f", "${Version}", "libbpf-tools"])
    return [
        f"- Date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        f"- Kernel: {platform.release()} ({platform.machine()})"
        + (", in a virtual machine" if virtual else ""),
        f"- CPUs: {os.cpu_count()} x {model}",
        f"- Clocksource: {clocksource}",
        f"- Tools: bcc {bcc}; {_first_line(['strace', '-V'])}; "
        f"{_first_line(['perf', '--version'])}; libbpf-tools {libbpf_tools}; "
        f"{_first_line(['bpftrace', '--version'])}; Python {platform.python_version()}",
    ]


# -- the document ----------------------------------------------------------------------------


def figures_markdown(results: Sequence[BenchResult], command: str, took: str = "") -> str:
    return "\n".join([
        START,
        "",
        "## Figures",
        "",
        *machine_lines(),
        f"- Reproduce (as root): `{command}`" + (f" (this run took {took})" if took else ""),
        "",
        render_results(results),
        "",
        END,
    ])


def write_doc(figures: str, doc: Path = DOC) -> None:
    """Replace the figures section of the document, keeping everything around it."""
    text = doc.read_text() if doc.exists() else "# Performance\n\n"
    if START in text and END in text:
        before = text[: text.index(START)]
        after = text[text.index(END) + len(END) :]
    else:
        before, after = text.rstrip("\n") + "\n\n", "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(before + figures + after)
