"""Usage errors quote what was typed: an argument with terminal escapes is shown escaped,
in one line, exit status 2 (argparse prints them raw)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = "b\x1b]0;PWNED\x07\x9b2J"


@pytest.mark.parametrize(("argv", "prog"), [
    (["open", "a", HOSTILE], "sikte-tui open"),
    (["--no-such-option" + HOSTILE], "sikte-tui"),
])
def test_a_usage_error_shows_the_argument_escaped(argv: list[str], prog: str) -> None:
    run = subprocess.run([sys.executable, "-m", "cli.main", *argv], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and run.stdout == ""
    assert not any(c in run.stderr for c in "\x1b\x07\x9b")
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{prog}: error: unrecognized arguments: ")
    assert last.endswith("b\\x1b]0;PWNED\\x07\\x9b2J")
