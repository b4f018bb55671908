"""`--folded FILE` of record and export: CPU stack samples as folded stacks."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

from tracing.errors import UserError


def add_folded_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--folded", type=Path, metavar="FILE",
                        help="also write the CPU stack samples as folded stacks (for "
                        "flamegraph.pl, speedscope)")


def check_folded(path: Path | None) -> None:
    """A --folded file that cannot be written fails before the work, not after."""
    if path is None:
        return
    if not path.parent.is_dir():
        raise UserError(f"--folded {path}: no directory {path.parent}; create it or "
                        "choose another file")
    if path.is_dir():
        raise UserError(f"--folded {path} is a directory; give a file name")


def write_folded(path: Path, samples: Iterable, sample_hz: int) -> None:
    """The samples (StackSample) as folded stacks, owned by the invoking user; on stderr,
    where they went."""
    from tracing.samples import folded_text, total_samples
    from tracing.userfiles import give_to

    samples = tuple(samples)
    try:
        path.write_text(folded_text(samples))
    except OSError as err:
        raise UserError(f"--folded {path}: cannot write it ({err.strerror}); choose another "
                        "file", exit_code=1) from None
    give_to(path)
    note = "" if sample_hz else " (none: sampling was off, --sample-hz 0)"
    print(f"sikte-tui: {total_samples(samples):,} CPU samples{note} written to {path} as "
          "folded stacks", file=sys.stderr)
