"""Syscall number <-> name maps per architecture, and errno names.

The tables are JSON files in `data/`, written by `python -m syscall_tables.generate` from the
`system-calls` package and the kernel's UAPI headers (which also name the obsolete, reserved
numbers), never typed by hand. Nothing is read at import time: each arch's file
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


# The syscall table of each ABI code the kernel gives a call (in records and aggregate keys),
# per host arch: 0 native, 1 compat (i386 on x86_64, arm on arm64), 2 x32.
ABI_TABLES: dict[str, tuple[str, ...]] = {"x86_64": ("x86_64", "i386", "x32"),
                                          "arm64": ("arm64", "arm")}
ABI_NATIVE, ABI_COMPAT, ABI_X32 = 0, 1, 2
# x32 numbers are the x86_64 kernel's with this bit set (the headers' __X32_SYSCALL_BIT).
X32_SYSCALL_BIT = 0x40000000


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
    """The name of syscall `nr` on `arch`; `syscall_<nr>` when the table has no such number.

    x32 numbers are accepted with or without the x32 bit: the kernel's aggregate keys carry
    them without it (x32 39 is getpid), the headers and records with it."""
    canonical = canonical_arch(arch)
    by_nr = _load(canonical)[0]
    name = by_nr.get(nr)
    if name is None and canonical == "x32" and 0 <= nr < X32_SYSCALL_BIT:
        name = by_nr.get(nr | X32_SYSCALL_BIT)
    return name if name is not None else f"syscall_{nr}"


def abi_table(host: str, abi: int) -> str:
    """The syscall table name for an ABI code on this host arch (the host's own for an
    unknown code)."""
    tables = ABI_TABLES.get(host, (host,))
    return tables[abi] if 0 <= abi < len(tables) else host


def abi_code(host: str, table_name: str) -> int:
    """The ABI code of a table name on this host arch ("i386" on x86_64: 1); 0 (native)
    for a name that is not one of its ABIs."""
    tables = ABI_TABLES.get(host, (host,))
    return tables.index(table_name) if table_name in tables else ABI_NATIVE


def abi_syscall_name(host: str, abi: int, nr: int) -> str:
    """The name of syscall `nr` made under ABI code `abi` on a `host` machine."""
    return syscall_name(nr, abi_table(host, abi))


def syscall_number(name: str, arch: str) -> int | None:
    """The number of syscall `name` on `arch`, or None where that arch has no such syscall."""
    return _load(canonical_arch(arch))[1].get(name)


@functools.cache
def _kernel_errnos() -> dict[int, str]:
    """The kernel's own codes past the user-space errnos (include/linux/errno.h, in the
    generated constants.json): ERESTARTSYS 512 ... EPROBE_DEFER 517 and the rest."""
    text = resources.files(__name__).joinpath("data", "constants.json").read_text("utf-8")
    pairs = json.loads(text)["groups"].get("kernel_errno", [])
    names: dict[int, str] = {}
    for name, value in pairs:
        names.setdefault(int(value), str(name))
    return names


def errno_name(n: int) -> str:
    """The symbolic name of an errno value (ENOENT for 2, ERESTARTSYS for 512); `E<n>` when
    unknown.

    The kernel reports failures as -errno, so either sign is accepted. Restart codes
    (512..517) reach user space only when a call is cut short, but a tracer sees them.
    """
    value = abs(n)
    name = errno.errorcode.get(value)
    if name is None:
        name = _kernel_errnos().get(value)
    return name if name is not None else f"E{value}"


def errno_number(name: str) -> int | None:
    """The value of an errno name such as "ENOENT" or "ERESTARTSYS", or None if it is not
    one."""
    key = name.strip().upper()
    value = getattr(errno, key, None)
    if key.startswith("E") and isinstance(value, int):
        return value
    return next((v for v, n in _kernel_errnos().items() if n == key), None)
