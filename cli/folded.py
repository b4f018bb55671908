"""`--folded FILE` of record and export: CPU stack samples as folded stacks."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from tracing.boundary.display_text import sanitize
from tracing.errors import UserError

if TYPE_CHECKING:
    from tracing.model.samples import StackSample


def add_folded_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--folded", type=Path, metavar="FILE",
                        help="also write the CPU stack samples as folded stacks (for "
                        "flamegraph.pl, speedscope)")


def check_folded(path: Path | None) -> None:
    """A --folded file that cannot be written fails before the work, not after."""
    if path is None:
        return
    from tracing.boundary.userfiles import check_new_file

    try:
        check_new_file(path)
    except UserError as err:
        raise UserError(f"--folded {err}", exit_code=err.exit_code) from None
    except OSError as err:
        raise UserError(f"--folded {path}: cannot write it ({err.strerror or err}); choose "
                        "another file", exit_code=1) from None


def write_folded(path: Path, samples: Iterable[StackSample], sample_hz: int) -> None:
    """The samples (StackSample) as folded stacks, made the invoking user's way
    (tracing.boundary.userfiles: theirs, 0600, no link followed); on stderr, where they went."""
    from tracing.boundary.userfiles import write_file
    from tracing.model.samples import folded_text, total_samples

    samples = tuple(samples)
    try:
        write_file(path, folded_text(samples).encode())
    except UserError as err:
        raise UserError(f"--folded {err}", exit_code=err.exit_code) from None
    except OSError as err:
        raise UserError(f"--folded {path}: cannot write it ({err.strerror or err}); choose "
                        "another file", exit_code=1) from None
    note = "" if sample_hz else " (none: sampling was off, --sample-hz 0)"
    shown = sanitize(str(path))
    print(f"sikte-tui: {total_samples(samples):,} CPU samples{note} written to {shown} as "
          "folded stacks", file=sys.stderr)
