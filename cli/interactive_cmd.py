"""`sikte-tui [--pid PID]... [-- COMMAND...]`: the interactive explorer."""

from __future__ import annotations

import argparse
import sys

from tracing.errors import UserError


def run(args: argparse.Namespace) -> int:
    from cli.record_cmd import (
        command_of,
        event_selection,
        journal_options,
        session_meta,
        validate_targets,
    )
    from tracing.privileges import require_tracing_privileges
    from tracing.sources import LiveSource
    from tracing.tracer import TraceConfig
    from tui.app import SikteApp

    if args.ebpf:
        from cli.record_cmd import print_program

        return print_program(args)
    defaults = TraceConfig(events=event_selection(args), user=args.user,
                           follow=not args.no_follow)
    command = command_of(args)
    source = None
    if args.pid or command:
        config = TraceConfig(pids=tuple(args.pid), command=command, user=args.user,
                             follow=not args.no_follow, events=defaults.events)
        validate_targets(config)
        require_tracing_privileges()
        source = LiveSource(config, journal_options(args), session_meta(config))
    # A key crosses threads (input reader, event loop) while the tracer thread works: hand
    # the interpreter over more often than every 5 ms so each crossing waits less.
    sys.setswitchinterval(0.001)
    app = SikteApp(source=source, trace_defaults=defaults, journal_options=journal_options(args))
    result = app.run()
    journal = getattr(app.source, "journal", None)
    if journal is not None and journal.on_disk:
        print(f"sikte-tui: session saved in {journal.path} (sikte-tui open to browse it)",
              file=sys.stderr)
    if isinstance(result, int):
        return result
    raise UserError("the interface ended unexpectedly", exit_code=1)
