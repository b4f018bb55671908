"""`sikte-tui export SESSION --output DIR`: a saved session as a Parquet directory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cli.folded import add_folded_argument, check_folded, write_folded
from tracing.boundary.display_text import sanitize
from tracing.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("session", type=Path, metavar="SESSION",
                        help="a journal file (.sikte.db) or a Parquet session directory")
    parser.add_argument("--output", type=Path, metavar="DIR",
                        help="the Parquet directory to create")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing output directory")
    add_folded_argument(parser)


def _progress(fraction: float, what: str) -> None:
    if sys.stderr.isatty():
        print(f"\rsikte-tui: exporting {what:<20} {100 * fraction:3.0f}%", end="",
              file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from tracing.session.export import check_output, export_parquet
    from tracing.session.stored import open_session

    if args.output is None and args.folded is None:
        raise UserError("say what to write: sikte-tui export SESSION --output DIR and/or "
                        "--folded FILE")
    if args.output is not None:
        check_output(args.output, args.force)
    check_folded(args.folded)
    session = open_session(args.session)
    if args.output is not None:
        out = export_parquet(session, args.output, force=args.force, progress=_progress)
        if sys.stderr.isatty():
            print(file=sys.stderr)
        print(f"sikte-tui: {len(session.events):,} events, {len(session.aggregates):,} "
              f"syscall rows written to {sanitize(str(out))}", file=sys.stderr)
    if args.folded is not None:
        from tracing.session.window import whole, window_samples

        write_folded(args.folded, window_samples(session, whole(session)),
                     int(session.meta.get("sample_hz") or 0))
    return 0
