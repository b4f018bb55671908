"""Which syscall table a process uses, from the ELF header of its executable.

On an x86_64 host a process may be native (x86_64), a 32-bit compat process (i386) or x32,
and the same syscall number means different calls in each, so names must come from the
process's own table. The ABI is that of the executable's ELF header; a process that switches
ABI by hand (int 0x80 from 64-bit code) is rare enough to ignore.
"""

from __future__ import annotations

import struct

from syscall_tables import host_arch

# An ABI is one of syscall_tables.ARCHES: "x86_64", "i386", "x32" on x86 hosts, else the
# host's own arch.
Abi = str

ELFCLASS32 = 1
ELFCLASS64 = 2
ELFDATA2LSB = 1
ELFDATA2MSB = 2

EM_386 = 3
EM_S390 = 22
EM_PPC64 = 21
EM_ARM = 40
EM_X86_64 = 62
EM_AARCH64 = 183
EM_RISCV = 243
EM_LOONGARCH = 258

# (e_machine, EI_CLASS) -> ABI. Both classes of EM_X86_64 are real: ELFCLASS32 is x32.
_ABIS: dict[tuple[int, int], Abi] = {
    (EM_X86_64, ELFCLASS64): "x86_64",
    (EM_X86_64, ELFCLASS32): "x32",
    (EM_386, ELFCLASS32): "i386",
    (EM_AARCH64, ELFCLASS64): "arm64",
    (EM_ARM, ELFCLASS32): "arm",
    (EM_RISCV, ELFCLASS64): "riscv64",
    (EM_S390, ELFCLASS64): "s390x",
    (EM_PPC64, ELFCLASS64): "ppc64le",  # big- and little-endian share the table
    (EM_LOONGARCH, ELFCLASS64): "loongarch64",
}

_HEADER_LEN = 20  # e_ident (16) + e_type (2) + e_machine (2)


def abi_from_header(header: bytes) -> Abi:
    """The ABI of an ELF file from its first 20 bytes; ValueError if not ELF or unsupported."""
    if len(header) < _HEADER_LEN or header[:4] != b"\x7fELF":
        raise ValueError("not an ELF file")
    elf_class, data = header[4], header[5]
    if data not in (ELFDATA2LSB, ELFDATA2MSB):
        raise ValueError(f"bad ELF data encoding {data}")
    (machine,) = struct.unpack_from("<H" if data == ELFDATA2LSB else ">H", header, 18)
    try:
        return _ABIS[(machine, elf_class)]
    except KeyError:
        raise ValueError(f"no syscall table for ELF machine {machine}, class {elf_class}") from None


def abi_of_elf(path: str) -> Abi:
    """The ABI of the ELF executable at `path`; OSError if unreadable, ValueError if not ELF."""
    with open(path, "rb") as f:
        return abi_from_header(f.read(_HEADER_LEN))


def abi_of_pid(pid: int) -> Abi:
    """The ABI of a running process; the host's arch when it cannot be read.

    Kernel threads have no executable, a process may exit at any moment, and without root
    another user's /proc/PID/exe is unreadable: none of these raise.
    """
    try:
        return abi_of_elf(f"/proc/{pid}/exe")
    except (OSError, ValueError):
        return host_arch()
