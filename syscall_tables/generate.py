"""Write syscall_tables/data/<arch>.json from two maintained sources: the installed
`system-calls` package (the callable syscalls of every arch) and, for the x86 ABIs, the
kernel's UAPI headers (asm/unistd_64.h, unistd_32.h, unistd_x32.h from linux-libc-dev), which
also name the obsolete numbers that have no entry point any more or never had one (x86_64
putpmsg, afs_syscall, tuxcall; i386 break, ulimit...). A traced program can still call those
numbers (and gets ENOSYS): they are named, not shown as syscall_182.

    python -m syscall_tables.generate          # (re)write the data files
    python -m syscall_tables.generate --check  # exit 1 if they differ from the sources

Run it after upgrading system-calls or linux-libc-dev (`apt-get install linux-libc-dev`) and
commit the result. The output is stable: numbers in ascending order, fixed indentation, a
trailing newline, so a diff shows only real changes.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
from importlib import metadata
from pathlib import Path

from syscall_tables import ARCHES

PACKAGE = "system-calls"
DATA_DIR = Path(__file__).resolve().parent / "data"

# Where system-calls names a table differently from our canonical arch name.
PACKAGE_TABLE: dict[str, str] = {"ppc64le": "powerpc64"}

# The UAPI header of each x86 ABI, and where Debian and others install them.
HEADER_FILES: dict[str, str] = {"x86_64": "unistd_64.h", "i386": "unistd_32.h",
                                "x32": "unistd_x32.h"}
INCLUDE_DIR = Path("/usr/include")
HEADER_DIRS = (INCLUDE_DIR / "x86_64-linux-gnu" / "asm", INCLUDE_DIR / "asm")
# `#define __NR_read 0` or, in unistd_x32.h, `#define __NR_read (__X32_SYSCALL_BIT + 0)`.
_DEFINE = re.compile(r"#define __NR_(\w+)\s+(?:\(__X32_SYSCALL_BIT \+ (\d+)\)|(\d+))\s*$")
X32_SYSCALL_BIT = 0x40000000


class HeadersMissing(Exception):
    """The UAPI headers the x86 tables are generated from are not installed."""


def package_table(arch: str) -> dict[str, int]:
    """The name -> number dict that system-calls ships for `arch`."""
    name = PACKAGE_TABLE.get(arch, arch)
    module = importlib.import_module(f"system_calls.tables.{name}")
    table: dict[str, int] = getattr(module, f"syscalls_{name}")  # the package is untyped
    return table


def header_path(arch: str) -> Path:
    """The installed UAPI header of an x86 ABI; HeadersMissing names the package to install."""
    for directory in HEADER_DIRS:
        path = directory / HEADER_FILES[arch]
        if path.is_file():
            return path
    raise HeadersMissing(f"{HEADER_FILES[arch]} is not installed (in "
                         f"{' or '.join(map(str, HEADER_DIRS))}); install linux-libc-dev")


def header_table(arch: str) -> dict[str, int]:
    """The name -> number of every __NR_ macro of an x86 ABI's UAPI header (x32 numbers
    with the x32 bit, as the header defines them)."""
    numbers: dict[str, int] = {}
    for line in header_path(arch).read_text("utf-8").splitlines():
        m = _DEFINE.match(line.strip())
        if m:
            numbers[m[1]] = X32_SYSCALL_BIT + int(m[2]) if m[2] is not None else int(m[3])
    if not numbers:
        raise ValueError(f"{header_path(arch)} defines no __NR_ macro")
    return numbers


def headers_version() -> str:
    """The Linux version of the installed UAPI headers (linux/version.h)."""
    text = (INCLUDE_DIR / "linux" / "version.h").read_text("utf-8")
    parts = [re.search(rf"#define LINUX_VERSION_{p} (\d+)", text)
             for p in ("MAJOR", "PATCHLEVEL", "SUBLEVEL")]
    if all(parts):
        return ".".join(m[1] for m in parts if m)
    code = re.search(r"#define LINUX_VERSION_CODE (\d+)", text)
    if code is None:
        raise ValueError("linux/version.h has no version")
    value = int(code[1])
    return f"{value >> 16}.{(value >> 8) & 0xFF}.{value & 0xFF}"


def render(arch: str) -> str:
    """The exact text of data/<arch>.json as the installed sources give it now."""
    import system_calls  # here, not at module level: importing this module stays cheap

    by_nr: dict[int, str] = {}
    for name, nr in package_table(arch).items():
        # Two names for one number would silently lose one in a number -> name table.
        if nr in by_nr:
            raise ValueError(f"{arch}: {name} and {by_nr[nr]} share number {nr}")
        by_nr[nr] = name
    source: dict[str, object] = {
        "package": PACKAGE,
        "package_version": metadata.version(PACKAGE),
        "table": PACKAGE_TABLE.get(arch, arch),
        "linux_version": system_calls.linux_version,
    }
    headers_only: list[int] = []
    if arch in HEADER_FILES:
        known = set(by_nr.values())
        # The package lists what the kernel can call; the header also keeps the reserved
        # numbers. A name the package has elsewhere keeps the package's number.
        for name, nr in sorted(header_table(arch).items(), key=lambda item: item[1]):
            if nr not in by_nr and name not in known:
                by_nr[nr] = name
                headers_only.append(nr)
        source["headers"] = {"package": "linux-libc-dev", "file": f"asm/{HEADER_FILES[arch]}",
                             "linux_version": headers_version()}
    doc = {
        "arch": arch,
        "source": source,
        "generated_by": "python -m syscall_tables.generate",
        # JSON keys are strings; insertion order keeps them in numeric, not string, order.
        "syscalls": {str(nr): by_nr[nr] for nr in sorted(by_nr)},
        # Named by the headers alone: obsolete or never implemented (calls get ENOSYS).
        **({"headers_only": sorted(headers_only)} if arch in HEADER_FILES else {}),
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
    try:
        return _run(args.check)
    except HeadersMissing as err:
        print(f"cannot generate the x86 tables: {err}", file=sys.stderr)
        return 2


def _run(check: bool) -> int:
    if check:
        stale = stale_arches()
        for arch in stale:
            print(f"stale: {data_path(arch)}", file=sys.stderr)
        return 1 if stale else 0
    written = write_all()
    print(f"wrote {len(written)} of {len(ARCHES)} tables: {' '.join(written) or 'all up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
