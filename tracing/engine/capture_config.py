"""What bpf/syscalls.bpf.c is told about capturing arguments and following descriptors.

At compile time: the captured-field format and its bounds (tracing.model.captures), the
selection bits (tracing.model.selection), the effect bits (tracing.decode.argspec), the exec
numbers of each ABI and the few C library values the program compares with, all as -D flags,
so each has one definition. At load: the `arg_kinds` map's entries, one per ABI and syscall
number, from the running kernel's tracepoint formats. At run time: the `config` map's value
for an event selection.
"""

from __future__ import annotations

import errno
import fcntl

from syscall_tables import syscall_number
from syscall_tables import table as syscall_table
from tracing.decode import argspec
from tracing.decode.argspec import ABI_COMPAT, ABI_TABLES, ABI_X32, SpecTable, SyscallSpec
from tracing.model import captures, selection
from tracing.model.selection import EventSelection

ABI_SLOT = 1024  # arg_kinds index: abi * ABI_SLOT + nr % ABI_SLOT
# The engine's own mark on a KIND_SOCKADDR argument i, bit LENPTR_SHIFT + i of the kinds
# (above the six 4-bit kinds, which use every value up to KIND_COUNT): its length is the next
# argument's int *, which the call fills (accept, recvfrom, getsockname).
LENPTR_SHIFT = 24

_EFFECTS = ("FD_ARG0", "IO_READ", "IO_WRITE", "OPENS", "FD_RET", "FD_CLOSE", "FD_CLOSE_RANGE",
            "FD_DUP_TO", "FD_PAIR", "FD_FCNTL", "NAMES_SOCKET", "EXEC", "BUF_ARG1",
            "BUF_AT_EXIT")
_KINDS = ("KIND_STR", "KIND_PATH", "KIND_SOCKADDR", "KIND_ARGV", "KIND_BUF", "KIND_FDPAIR",
          "KIND_IO", "KIND_COUNT", "STATUS_OK", "STATUS_TRUNCATED", "STATUS_FAULT", "FIELD_IO_ARG",
          "FIELD_IO_ARG2", "EVF_SELECTED", "EVF_AT_ENTRY", "EVF_UNTIMED")
_BOUNDS = ("PATH_MAX", "STR_MAX", "SOCKADDR_MAX", "ARGV_MAX", "BUF_MAX", "COUNT_MAX",
           "DATA_MAX")
_SELECTION = ("SEL_ALL", "SEL_FAILED", "SEL_SLOW", "SEL_SAMPLE")


def _number(name: str, table: str | None) -> int:
    nr = syscall_number(name, table) if table else None
    return -1 if nr is None else nr


def _exec_numbers(arch: str) -> dict[str, int]:
    tables = ABI_TABLES.get(arch, (arch,))
    compat = tables[ABI_COMPAT] if len(tables) > ABI_COMPAT else None
    x32 = tables[ABI_X32] if len(tables) > ABI_X32 else None
    numbers = {}
    for suffix, table in (("", arch), ("_COMPAT", compat), ("_X32", x32)):
        numbers[f"NR_EXECVE{suffix}"] = _number("execve", table)
        numbers[f"NR_EXECVEAT{suffix}"] = _number("execveat", table)
    # x32 numbers are the x32 table's with a high bit set: its lowest number shows the bit.
    numbers["X32_SYSCALL_BIT"] = min(syscall_table(x32)) & ~(ABI_SLOT - 1) if x32 else 0
    return numbers


def capture_defines(arch: str) -> dict[str, int | str]:
    """The -D flags of the capture format, selection and effects for the C."""
    defines: dict[str, int | str] = {}
    defines.update({name: getattr(captures, name) for name in _KINDS})
    defines.update({f"CAP_{name}": getattr(captures, name) for name in _BOUNDS})
    defines.update({f"EFFECT_{name}": getattr(argspec, name) for name in _EFFECTS})
    defines.update({name: getattr(selection, name) for name in _SELECTION})
    defines.update({
        "LENPTR_SHIFT": LENPTR_SHIFT,
        "ABI_COMPAT": ABI_COMPAT,
        "ABI_X32": ABI_X32,
        "ARG_SPEC_ENTRIES": ABI_SLOT * len(ABI_TABLES.get(arch, (arch,))),
        "FCNTL_DUPFD": fcntl.F_DUPFD,
        "FCNTL_DUPFD_CLOEXEC": fcntl.F_DUPFD_CLOEXEC,
        "ERRNO_BADF": errno.EBADF,
        **_exec_numbers(arch),
    })
    return defines


def kernel_kinds(spec: SyscallSpec) -> int:
    """The argument kinds as the C reads them: argspec's kinds, with the int[2] of a
    descriptor pair marked, exec's environment counted (strace shows `/* 30 vars */`, not
    the strings) and socket addresses whose length the call writes back marked."""
    kinds = spec.kinds
    if spec.effects & argspec.FD_PAIR and 0 <= spec.pair_arg < 6:
        kinds = _with_kind(kinds, spec.pair_arg, captures.KIND_FDPAIR)
    for i, arg in enumerate(spec.args[:6]):
        if spec.effects & argspec.EXEC and arg.name == "envp":
            kinds = _with_kind(kinds, i, captures.KIND_COUNT)
        if arg.kind == captures.KIND_SOCKADDR and i < 5 and "*" in spec.args[i + 1].type:
            kinds |= 1 << (LENPTR_SHIFT + i)
    return kinds


def _with_kind(kinds: int, i: int, kind: int) -> int:
    return (kinds & ~(0xF << (4 * i))) | kind << (4 * i)


def arg_spec_entries(specs: SpecTable, arch: str) -> dict[int, tuple[int, int]]:
    """index -> (kinds, effects) for every syscall of every ABI of this host that has
    anything to capture or an effect on descriptors."""
    entries = {}
    for abi, table_name in enumerate(ABI_TABLES.get(arch, (arch,))):
        for nr in syscall_table(table_name):
            spec = specs.for_call(table_name, nr)
            if spec is None:
                continue
            kinds = kernel_kinds(spec)
            if kinds or spec.effects:
                entries[abi * ABI_SLOT + nr % ABI_SLOT] = (kinds, spec.effects)
    return entries


def config_value(sel: EventSelection) -> tuple[int, int, int, int]:
    """struct config for a selection: events bits, files, slow_ns, sample_n."""
    return (sel.bits, int(sel.files), max(int(sel.slow_ns), 0), max(int(sel.sample_n), 0))
