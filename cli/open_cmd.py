"""`sikte-tui open [SESSION]`: browse a saved session read-only, without root; with no
SESSION, the list of saved sessions, newest first."""

from __future__ import annotations

import argparse
from pathlib import Path

from tracing.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("session", type=Path, nargs="?", metavar="SESSION",
                        help="a journal file (.sikte.db) or a Parquet session directory "
                        "(default: choose from the saved sessions)")


def run(args: argparse.Namespace) -> int:
    from tracing.session.stored import open_session
    from tracing.sources import StoredSource
    from tui.app import SikteApp

    source = StoredSource(open_session(args.session)) if args.session else None
    app = SikteApp(source=source, browse_sessions=source is None)
    result = app.run()
    if isinstance(result, int):
        return result
    raise UserError("the interface ended unexpectedly", exit_code=1)
