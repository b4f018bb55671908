"""`sikte-tui doctor`: print whether this system can trace, with a fix for each problem.

Exit status 0 when tracing can work (warnings allowed), 1 when some check failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import textwrap
from dataclasses import asdict

from tracing.boundary.display_text import sanitize
from tracing.engine.doctor import Check, can_trace, run_checks


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")


def run(args: argparse.Namespace) -> int:
    checks = run_checks()
    ok = can_trace(checks)
    if args.json:
        report = {"can_trace": ok, "checks": [asdict(check) for check in checks]}
        text = json.dumps(report, indent=2)
    else:
        text = f"{format_table(checks)}\n\n{_summary(checks, ok)}"
    _emit(text)
    return 0 if ok else 1


def _emit(text: str) -> None:
    try:
        print(text, flush=True)
    except BrokenPipeError:
        # `sikte-tui doctor | head`: the reader left. Point stdout at /dev/null so the
        # interpreter's final flush does not fail again with a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def format_table(checks: list[Check], width: int | None = None) -> str:
    """One row per check (STATUS  name  detail), wrapped to the terminal; fixes below.
    Details quote the system (file contents, paths, error messages): shown sanitized."""
    width = width or shutil.get_terminal_size((100, 24)).columns
    name_width = max(len(check.name) for check in checks)
    indent = " " * (4 + 2 + name_width + 2)
    lines = []
    for check in checks:
        head = f"{check.status.upper():<4}  {check.name:<{name_width}}  "
        lines.extend(_wrap(head + sanitize(check.detail), width, indent))
        if check.status != "pass" and check.fix:
            lines.extend(_wrap(f"{indent}fix: {sanitize(check.fix)}", width, indent + "     "))
    return "\n".join(lines)


def _wrap(text: str, width: int, indent: str) -> list[str]:
    # Never narrower than 40 columns: below that wrapping hurts more than it helps.
    return textwrap.wrap(
        text, max(width, 40), subsequent_indent=indent, break_on_hyphens=False
    ) or [text]


def _summary(checks: list[Check], ok: bool) -> str:
    warnings = sum(check.status == "warn" for check in checks)
    if not ok:
        return "sikte-tui cannot trace here: fix the FAIL lines above."
    if warnings:
        return f"sikte-tui can trace here ({warnings} warning{'s' * (warnings != 1)})."
    return "sikte-tui can trace here."
