"""`sikte-tui [--pid PID]... [-- COMMAND...]`: the interactive explorer."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import TYPE_CHECKING

from tracing.boundary.display_text import sanitize
from tracing.errors import UserError

if TYPE_CHECKING:  # imported when used: `sikte-tui --help` does not load Textual
    from tui.app import SikteApp


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
    from tracing.engine.tracer import TraceConfig
    from tracing.sources import LiveSource
    from tracing.system.privileges import require_tracing_privileges
    from tui.app import SikteApp

    if args.ebpf:
        from cli.record_cmd import print_program

        return print_program(args)
    require_terminal()
    defaults = TraceConfig(events=event_selection(args), user=args.user,
                           follow=not args.no_follow,
                           **trace_options(args))
    command = command_of(args)
    source = None
    if args.pid or command:
        config = dataclasses.replace(defaults, pids=tuple(args.pid), command=command)
        validate_targets(config)
        require_tracing_privileges()
        source = LiveSource(config, journal_options(args), session_meta(config))
    elif defaults.uprobes:  # for traces started from the picker: bad probes fail now
        from tracing.engine.uprobes import check_probes

        check_probes(defaults.uprobes)
    # A key crosses threads (input reader, event loop) while the tracer thread works: hand
    # the interpreter over more often than every 5 ms so each crossing waits less.
    sys.setswitchinterval(0.001)
    app = SikteApp(source=source, trace_defaults=defaults, journal_options=journal_options(args))
    result = app.run()
    app.stop_source()  # after a crash: the trace still stops and its journal is kept
    for line in exit_lines(app):
        print(f"sikte-tui: {sanitize(line)}", file=sys.stderr)  # paths, command lines
    if app.crash is not None:
        return 70  # EX_SOFTWARE, as cli.main for a bug
    if isinstance(result, int):
        return result if result or not app.stop_errors else 1
    raise UserError("the interface ended unexpectedly", exit_code=1)


def exit_lines(app: SikteApp) -> list[str]:
    """What the person reads once the terminal is back: a crash or a failure while stopping
    (one line each), where each trace's session is, and what was left running."""
    lines = [app.crash] if app.crash is not None else []
    lines += app.stop_errors
    lines += [saved for trace in app.traces if (saved := trace.saved_line()) is not None]
    if app.left_running:
        pids = " ".join(str(pid) for pid in app.left_running)
        label = "PID" if len(app.left_running) == 1 else "PIDs"
        lines.append(f"left running: {label} {pids} (the launched command and its children; "
                     f"kill {pids} ends them)")
    return lines
