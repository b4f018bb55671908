"""Write syscall_tables/data/<arch>.json from the installed `system-calls` package.

    python -m syscall_tables.generate          # (re)write the data files
    python -m syscall_tables.generate --check  # exit 1 if they differ from the package

Run it after upgrading system-calls and commit the result. The output is stable: numbers in
ascending order, fixed indentation, a trailing newline, so a diff shows only real changes.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from importlib import metadata
from pathlib import Path

from syscall_tables import ARCHES

PACKAGE = "system-calls"
DATA_DIR = Path(__file__).resolve().parent / "data"

# Where system-calls names a table differently from our canonical arch name.
PACKAGE_TABLE: dict[str, str] = {"ppc64le": "powerpc64"}


def package_table(arch: str) -> dict[str, int]:
    """The name -> number dict that system-calls ships for `arch`."""
    name = PACKAGE_TABLE.get(arch, arch)
    module = importlib.import_module(f"system_calls.tables.{name}")
    table: dict[str, int] = getattr(module, f"syscalls_{name}")  # the package is untyped
    return table


def render(arch: str) -> str:
    """The exact text of data/<arch>.json as the installed package gives it now."""
    import system_calls  # here, not at module level: importing this module stays cheap

    by_nr: dict[int, str] = {}
    for name, nr in package_table(arch).items():
        # Two names for one number would silently lose one in a number -> name table.
        if nr in by_nr:
            raise ValueError(f"{arch}: {name} and {by_nr[nr]} share number {nr}")
        by_nr[nr] = name
    doc = {
        "arch": arch,
        "source": {
            "package": PACKAGE,
            "package_version": metadata.version(PACKAGE),
            "table": PACKAGE_TABLE.get(arch, arch),
            "linux_version": system_calls.linux_version,
        },
        "generated_by": "python -m syscall_tables.generate",
        # JSON keys are strings; insertion order keeps them in numeric, not string, order.
        "syscalls": {str(nr): by_nr[nr] for nr in sorted(by_nr)},
    }
    return json.dumps(doc, indent=1) + "\n"


def data_path(arch: str) -> Path:
    return DATA_DIR / f"{arch}.json"


def stale_arches() -> list[str]:
    """Arches whose checked-in file differs from what the installed package gives."""
    return [
        arch
        for arch in ARCHES
        if not data_path(arch).exists() or data_path(arch).read_text("utf-8") != render(arch)
    ]


def write_all() -> list[str]:
    """Rewrite the stale data files; returns the arches written."""
    DATA_DIR.mkdir(exist_ok=True)
    stale = stale_arches()
    for arch in stale:
        data_path(arch).write_text(render(arch), "utf-8")
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m syscall_tables.generate", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report stale files; exit 1")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_arches()
        for arch in stale:
            print(f"stale: {data_path(arch)}", file=sys.stderr)
        return 1 if stale else 0
    written = write_all()
    print(f"wrote {len(written)} of {len(ARCHES)} tables: {' '.join(written) or 'all up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
