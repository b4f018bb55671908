"""`sikte-tui [--pid PID]... [-- COMMAND...]`: the interactive explorer."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from tracing.display_text import sanitize
from tracing.errors import UserError


def require_terminal() -> None:
    """The explorer draws on a terminal and reads its keys: without one it would run blind."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UserError("the interactive explorer needs a terminal; use sikte-tui record to "
                        "trace without one", exit_code=2)


def run(args: argparse.Namespace) -> int:
    from cli.record_cmd import (
        command_of,
        event_selection,
        journal_options,
        session_meta,
        trace_options,
        validate_targets,
    )
    from tracing.privileges import require_tracing_privileges
    from tracing.sources import LiveSource
    from tracing.tracer import TraceConfig
    from tui.app import SikteApp

    if args.ebpf:
        from cli.record_cmd import print_program

        return print_program(args)
    require_terminal()
    defaults = TraceConfig(events=event_selection(args), user=args.user,
                           follow=not args.no_follow,
                           **trace_options(args))  # type: ignore[arg-type]
    command = command_of(args)
    source = None
    if args.pid or command:
        config = dataclasses.replace(defaults, pids=tuple(args.pid), command=command)
        validate_targets(config)
        require_tracing_privileges()
        source = LiveSource(config, journal_options(args), session_meta(config))
    elif defaults.uprobes:  # for traces started from the picker: bad probes fail now
        from tracing.bpf_engine import check_probes

        check_probes(defaults.uprobes)
    # A key crosses threads (input reader, event loop) while the tracer thread works: hand
    # the interpreter over more often than every 5 ms so each crossing waits less.
    sys.setswitchinterval(0.001)
    app = SikteApp(source=source, trace_defaults=defaults, journal_options=journal_options(args))
    result = app.run()
    journal = getattr(app.source, "journal", None)
    if journal is not None and journal.on_disk:
        shown = sanitize(str(journal.path))
        print(f"sikte-tui: session saved in {shown} (sikte-tui open to browse it)",
              file=sys.stderr)
    if isinstance(result, int):
        return result
    raise UserError("the interface ended unexpectedly", exit_code=1)
