"""The syscall numbers bpf/syscalls.bpf.c treats apart, per ABI: clone and clone3 (whose flags
tell a thread where the kernel's BTF gives no tgid), fork and vfork (0 in the new task), exit
and exit_group (never return), sigreturn and rt_sigreturn (return with no number); the
kernel's CLONE_THREAD from the generated constants, SA_SIGINFO, and struct proc_event's flag
bits (tracing.engine.maps), all as -D flags so each has one definition."""

from __future__ import annotations

from syscall_tables import syscall_number
from tracing.decode.argspec import ABI_COMPAT, ABI_TABLES, ABI_X32
from tracing.decode.constants import constants
from tracing.engine.maps import PROC_FLAG_GONE, PROC_FLAG_THREAD

# A handler given siginfo (an rt frame on i386): 4 in asm-generic and on x86 and arm, the
# architectures whose compat ABI has both sigreturn and rt_sigreturn.
SA_SIGINFO = 4


def clone_thread_flag() -> int:
    value = constants().value("clone_flags", "CLONE_THREAD")
    if value is None:
        raise ValueError("syscall_tables/data/constants.json has no CLONE_THREAD")
    return value


def clone_defines(arch: str) -> dict[str, int]:
    """NR_CLONE, NR_CLONE3, NR_FORK, NR_VFORK (calls that return 0 in the new task), NR_EXIT,
    NR_EXIT_GROUP (calls that never return), NR_SIGRETURN, NR_RT_SIGRETURN (whose exit holds no
    number) and their _COMPAT and _X32 numbers (-1: no such
    call or ABI),
    CLONE_THREAD_FLAG and the PROC_FLAG_* bits."""
    tables = ABI_TABLES.get(arch, (arch,))
    defines = {"CLONE_THREAD_FLAG": clone_thread_flag(), "SA_SIGINFO_FLAG": SA_SIGINFO,
               "PROC_FLAG_GONE": PROC_FLAG_GONE, "PROC_FLAG_THREAD": PROC_FLAG_THREAD}
    for suffix, abi in (("", 0), ("_COMPAT", ABI_COMPAT), ("_X32", ABI_X32)):
        table = tables[abi] if abi < len(tables) else None
        for macro, name in (("NR_CLONE", "clone"), ("NR_CLONE3", "clone3"), ("NR_FORK", "fork"),
                            ("NR_VFORK", "vfork"), ("NR_EXIT", "exit"),
                            ("NR_EXIT_GROUP", "exit_group"), ("NR_SIGRETURN", "sigreturn"),
                            ("NR_RT_SIGRETURN", "rt_sigreturn")):
            nr = syscall_number(name, table) if table else None
            defines[f"{macro}{suffix}"] = -1 if nr is None else nr
    return defines
