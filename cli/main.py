"""The `sikte-tui` command: dispatches to the subcommands and turns UserError into one line.

Each subcommand lives in its own module with `add_arguments(parser)` and `run(args) -> int`,
imported only when used, so `sikte-tui syscalls` never loads Textual or bcc.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from typing import NoReturn, Protocol, cast

from cli.output import drop_stdout
from tracing.boundary.display_text import sanitize
from tracing.errors import UserError

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "record": ("cli.record_cmd", "trace headless and print a syscall summary"),
    "open": ("cli.open_cmd", "browse a saved session (journal or Parquet); needs no root"),
    "export": ("cli.export_cmd", "write a saved session as a Parquet directory"),
    "diff": ("cli.diff_cmd", "compare two saved sessions, or two stretches of one"),
    "doctor": ("cli.doctor_cmd", "check that this system can trace, with a fix for each failure"),
    "syscalls": ("cli.syscalls_cmd", "look up syscall names and numbers"),
    "demo": ("cli.demo_cmd", "run a workload that fills every view (for trying sikte-tui)"),
}

PROG = "sikte-tui"


class Command(Protocol):
    """A command module: cli.interactive_cmd, whose arguments _interactive_parser adds."""

    def run(self, args: argparse.Namespace) -> int: ...


class Subcommand(Command, Protocol):
    """A subcommand module (SUBCOMMANDS): it adds its own arguments."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...


class ArgumentParser(argparse.ArgumentParser):
    """argparse quotes what was typed in its errors ("unrecognized arguments: ..."), raw: an
    argument can carry terminal escapes (pasted, or from a script's variables), so the
    message is sanitized like every other line sikte-tui prints."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {sanitize(message)}\n")


def _interactive_parser() -> argparse.ArgumentParser:
    from cli.record_cmd import add_target_arguments

    parser = ArgumentParser(
        prog=PROG,
        description="Interactive eBPF syscall explorer. With no target, opens the process picker.",
        epilog="subcommands: "
        + "; ".join(f"{name}: {help_}" for name, (_, help_) in SUBCOMMANDS.items()),
    )
    add_target_arguments(parser)
    return parser


def _run_subcommand(name: str, argv: list[str]) -> int:
    module_name, help_ = SUBCOMMANDS[name]
    module = cast(Subcommand, importlib.import_module(module_name))
    parser = ArgumentParser(prog=f"{PROG} {name}", description=help_)
    module.add_arguments(parser)
    args = parser.parse_args(argv)
    return module.run(args)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in SUBCOMMANDS:
            return _run_subcommand(argv[0], argv[1:])
        args = _interactive_parser().parse_args(argv)
        module = cast(Command, importlib.import_module("cli.interactive_cmd"))
        return module.run(args)
    except UserError as err:
        print(f"{PROG}: {sanitize(str(err))}", file=sys.stderr)  # it may quote names, paths
        return err.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Whoever read our stdout went away (`| head -1`): end quietly, as a shell tool
        # killed by SIGPIPE would. What was recorded is already in the journal.
        drop_stdout()
        return 128 + signal.SIGPIPE
    except Exception as err:  # a bug: one line for the user, the details in a file
        path = _save_traceback()
        print(f"{PROG}: internal error ({type(err).__name__}: {sanitize(str(err), 300)}); "
              f"details in {path}; "
              "please report it", file=sys.stderr)
        return 70  # EX_SOFTWARE


def _save_traceback() -> str:
    import tempfile
    import traceback

    with tempfile.NamedTemporaryFile("w", prefix="sikte-tui-error-", suffix=".txt",
                                     delete=False) as f:
        traceback.print_exc(file=f)
        return f.name


if __name__ == "__main__":
    sys.exit(main())
