"""What the commands do with their standard output when it fails (shared by `cli.main` and
the subcommands, which `cli.main` imports: kept apart so neither imports the other)."""

from __future__ import annotations

import os
import sys


def drop_stdout() -> None:
    """Point stdout at /dev/null: what is still buffered for it goes nowhere, so the
    interpreter's last flush does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
