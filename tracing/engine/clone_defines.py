"""What bpf/syscalls.bpf.c is told to tell a new thread from a new process at fork: the
clone and clone3 numbers of each ABI (whose flags it remembers at their entry), the
kernel's CLONE_THREAD from the generated constants, and struct proc_event's flag bits
(tracing.engine.maps), all as -D flags so each has one definition."""

from __future__ import annotations

from syscall_tables import syscall_number
from tracing.decode.argspec import ABI_COMPAT, ABI_TABLES, ABI_X32
from tracing.decode.constants import constants
from tracing.engine.maps import PROC_FLAG_GONE, PROC_FLAG_THREAD


def clone_thread_flag() -> int:
    value = constants().value("clone_flags", "CLONE_THREAD")
    if value is None:
        raise ValueError("syscall_tables/data/constants.json has no CLONE_THREAD")
    return value


def clone_defines(arch: str) -> dict[str, int]:
    """NR_CLONE, NR_CLONE3 and their _COMPAT and _X32 numbers (-1: no such call or ABI),
    CLONE_THREAD_FLAG and the PROC_FLAG_* bits."""
    tables = ABI_TABLES.get(arch, (arch,))
    defines = {"CLONE_THREAD_FLAG": clone_thread_flag(),
               "PROC_FLAG_GONE": PROC_FLAG_GONE, "PROC_FLAG_THREAD": PROC_FLAG_THREAD}
    for suffix, abi in (("", 0), ("_COMPAT", ABI_COMPAT), ("_X32", ABI_X32)):
        table = tables[abi] if abi < len(tables) else None
        for macro, name in (("NR_CLONE", "clone"), ("NR_CLONE3", "clone3")):
            nr = syscall_number(name, table) if table else None
            defines[f"{macro}{suffix}"] = -1 if nr is None else nr
    return defines
