"""`sikte-tui syscalls`: look up syscall names and numbers, like ausyscall.

    sikte-tui syscalls                    # the host's whole table: NUMBER NAME per line
    sikte-tui syscalls getppid 39         # each lookup: NUMBER NAME
    sikte-tui syscalls --arch arm64 --json openat

Every input mistake becomes one UserError line (exit 2), never argparse usage or a traceback.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import sys

from syscall_tables import ARCHES, canonical_arch, host_arch, syscall_number, table
from tracing.errors import UserError

Row = tuple[int, str]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # No argparse `choices=`: its error prints usage; _arch() gives one line instead.
    parser.add_argument(
        "--arch",
        metavar="ARCH",
        help=f"syscall table to use (default: this host's): {', '.join(ARCHES)}",
    )
    parser.add_argument("--json", action="store_true", help='print [{"arch", "nr", "name"}]')
    parser.add_argument(
        "lookups",
        nargs="*",
        metavar="NAME|NUMBER",
        help="syscalls to look up (numbers may be hex, 0x...); none prints the whole table",
    )


def run(args: argparse.Namespace) -> int:
    arch = _arch(args.arch)
    if args.lookups:
        rows = [_lookup(token, arch) for token in args.lookups]
    else:
        rows = sorted(table(arch).items())
    return _emit(_as_json(arch, rows) if args.json else _as_text(rows))


def _arch(name: str | None) -> str:
    try:
        return host_arch() if name is None else canonical_arch(name)
    except ValueError as err:
        # With no --arch the bad name is the host's own, which the user did not type.
        prefix = "" if name is not None else "this host has no syscall table, use --arch: "
        raise UserError(f"{prefix}{err}", exit_code=2) from None


def _parse_number(token: str) -> int | None:
    if re.fullmatch(r"[0-9]+", token):
        return int(token, 10)
    if re.fullmatch(r"0[xX][0-9a-fA-F]+", token):
        return int(token, 16)
    return None


def _lookup(token: str, arch: str) -> Row:
    nr = _parse_number(token)
    names = table(arch)
    if nr is not None:
        if nr not in names:
            raise UserError(
                f"no syscall number {nr} on {arch} (its {len(names)} syscalls are numbered "
                f"{min(names)} to {max(names)})",
                exit_code=2,
            )
        return nr, names[nr]
    found = syscall_number(token, arch)
    if found is None:
        raise UserError(_unknown_name_message(token, arch, list(names.values())), exit_code=2)
    return found, token


def _unknown_name_message(name: str, arch: str, names: list[str]) -> str:
    message = f"unknown syscall {name!r} on {arch}"
    elsewhere = [other for other in ARCHES if syscall_number(name, other) is not None]
    if elsewhere:
        message += f" (it exists on {', '.join(elsewhere)})"
    close = difflib.get_close_matches(name, names, n=4)
    if close:
        return f"{message}; did you mean: {', '.join(close)}?"
    return f"{message}; list them all with: sikte-tui syscalls --arch {arch}"


def _as_text(rows: list[Row]) -> str:
    width = max(len(str(nr)) for nr, _ in rows)
    return "".join(f"{nr:>{width}} {name}\n" for nr, name in rows)


def _as_json(arch: str, rows: list[Row]) -> str:
    records = [{"arch": arch, "nr": nr, "name": name} for nr, name in rows]
    return json.dumps(records, indent=2) + "\n"


def _emit(text: str) -> int:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader stopped early (`| head`): not an error. Point stdout at /dev/null so the
        # interpreter's final flush does not print a traceback either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
