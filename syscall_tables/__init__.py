"""Syscall number <-> name maps per architecture, and errno names.

The tables are JSON files in `data/`, written by `python -m syscall_tables.generate` from the
`system-calls` package, never typed by hand. Nothing is read at import time: each arch's file
is loaded on first use and cached. This module is pure (no bcc, no Textual), so the CLI, the
store and the tests can use it anywhere.
"""

from __future__ import annotations

import errno
import functools
import json
import os
from importlib import resources

# Canonical names, as used in our API, the data file names and Snapshot.arch.
ARCHES: tuple[str, ...] = (
    "x86_64",
    "i386",
    "x32",
    "arm64",
    "arm",
    "riscv64",
    "s390x",
    "ppc64le",
    "loongarch64",
)

# Other spellings (uname -m, Debian, the kernel's own) of the same syscall tables.
ALIASES: dict[str, str] = {
    "amd64": "x86_64",
    "x86-64": "x86_64",
    "x86": "i386",
    "i486": "i386",
    "i586": "i386",
    "i686": "i386",
    "aarch64": "arm64",
    "armv6l": "arm",
    "armv7l": "arm",
    "armv8l": "arm",  # 32-bit userland on a 64-bit core
    "armhf": "arm",
    "armel": "arm",
    "riscv": "riscv64",
    "s390": "s390x",  # the 64-bit kernel; 31-bit s390 userland is not supported
    # Big- and little-endian 64-bit PowerPC share one syscall table.
    "powerpc64": "ppc64le",
    "powerpc64le": "ppc64le",
    "ppc64": "ppc64le",
    "ppc64el": "ppc64le",
    "loong64": "loongarch64",
}


def canonical_arch(name: str) -> str:
    """The canonical name for an architecture or alias; ValueError names the valid choices."""
    key = name.strip().lower()
    if key in ARCHES:
        return key
    if key in ALIASES:
        return ALIASES[key]
    raise ValueError(
        f"unknown architecture {name!r}; valid choices: {', '.join(ARCHES)} "
        f"(aliases: {', '.join(sorted(ALIASES))})"
    )


def host_arch() -> str:
    """This machine's native syscall table (ValueError if we have none for it)."""
    return canonical_arch(os.uname().machine)


@functools.cache
def _load(arch: str) -> tuple[dict[int, str], dict[str, int]]:
    text = resources.files(__name__).joinpath("data", f"{arch}.json").read_text("utf-8")
    by_nr = {int(nr): name for nr, name in json.loads(text)["syscalls"].items()}
    return by_nr, {name: nr for nr, name in by_nr.items()}


def table(arch: str) -> dict[int, str]:
    """A copy of the number -> name table for `arch` (any alias), sorted by number."""
    return dict(_load(canonical_arch(arch))[0])


def syscall_name(nr: int, arch: str) -> str:
    """The name of syscall `nr` on `arch`; `syscall_<nr>` when the table has no such number."""
    return _load(canonical_arch(arch))[0].get(nr, f"syscall_{nr}")


def syscall_number(name: str, arch: str) -> int | None:
    """The number of syscall `name` on `arch`, or None where that arch has no such syscall."""
    return _load(canonical_arch(arch))[1].get(name)


def errno_name(n: int) -> str:
    """The symbolic name of an errno value (ENOENT for 2); `E<n>` when unknown.

    The kernel reports failures as -errno, so either sign is accepted.
    """
    return errno.errorcode.get(abs(n), f"E{abs(n)}")


def errno_number(name: str) -> int | None:
    """The value of an errno name such as "ENOENT", or None if it is not one."""
    key = name.strip().upper()
    value = getattr(errno, key, None)
    return value if key.startswith("E") and isinstance(value, int) else None
