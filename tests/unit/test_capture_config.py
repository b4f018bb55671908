"""What the engine tells the kernel about capturing (arg_kinds entries, -D flags), and how it
splits the ring buffer's records into headers and fields. No kernel needed."""

from __future__ import annotations

from syscall_tables import syscall_number
from tracing.decode import argspec
from tracing.decode.argspec import checked_in_specs
from tracing.engine.capture_config import (
    ABI_SLOT,
    LENPTR_SHIFT,
    arg_spec_entries,
    capture_defines,
    kernel_kinds,
)
from tracing.model.captures import (
    DATA_MAX,
    KIND_ARGV,
    KIND_COUNT,
    KIND_FDPAIR,
    KIND_PATH,
    KIND_SOCKADDR,
)

SPECS = checked_in_specs()
ENTRIES = arg_spec_entries(SPECS, "x86_64")


def kind(kinds: int, i: int) -> int:
    return (kinds >> (4 * i)) & 0xF


def entry(table: str, name: str) -> tuple[int, int]:
    abi = argspec.ABI_TABLES["x86_64"].index(table)
    nr = syscall_number(name, table)
    assert nr is not None
    return ENTRIES[abi * ABI_SLOT + nr % ABI_SLOT]


def test_paths_and_effects_per_abi():
    kinds, effects = entry("x86_64", "openat")
    assert [kind(kinds, i) for i in range(6)] == [0, KIND_PATH, 0, 0, 0, 0]
    assert effects & argspec.OPENS and effects & argspec.FD_RET
    i386_kinds, i386_effects = entry("i386", "open")  # its own number (5), its own slot
    assert kind(i386_kinds, 0) == KIND_PATH
    assert i386_effects & argspec.OPENS
    x32_kinds, _ = entry("x32", "execve")
    assert (kind(x32_kinds, 0), kind(x32_kinds, 1)) == (KIND_PATH, KIND_ARGV)


def test_pairs_and_written_back_lengths_are_marked_for_the_kernel():
    assert kind(entry("x86_64", "pipe2")[0], 0) == KIND_FDPAIR
    assert kind(entry("x86_64", "socketpair")[0], 3) == KIND_FDPAIR
    accept4 = entry("x86_64", "accept4")[0]
    assert kind(accept4, 1) == KIND_SOCKADDR
    assert accept4 >> LENPTR_SHIFT == 1 << 1  # arg 1's length is written back
    connect = entry("x86_64", "connect")[0]
    assert (kind(connect, 1), connect >> LENPTR_SHIFT) == (KIND_SOCKADDR, 0)  # a value
    spec = SPECS.by_name("recvfrom")
    assert spec is not None
    recvfrom = kernel_kinds(spec)
    assert (kind(recvfrom, 4), recvfrom >> LENPTR_SHIFT) == (KIND_SOCKADDR, 1 << 4)


def test_exec_environments_are_counted_on_every_abi():
    """envp is a count (strace's `/* 30 vars */`), a kind of its own, distinct from the
    engine's written-back-length marks, which sit above the six kinds."""
    assert LENPTR_SHIFT >= 4 * 6 and KIND_COUNT <= 0xF
    for table, name, at in (("x86_64", "execve", 2), ("x86_64", "execveat", 3),
                            ("i386", "execve", 2), ("i386", "execveat", 3),
                            ("x32", "execve", 2)):
        kinds = entry(table, name)[0]
        assert [kind(kinds, i) for i in range(at + 1)][-2:] == [KIND_ARGV, KIND_COUNT]
        assert kinds >> LENPTR_SHIFT == 0


def test_calls_with_nothing_to_capture_have_no_entry():
    nr = syscall_number("getppid", "x86_64")
    assert nr is not None and nr not in ENTRIES


def test_defines_come_from_the_python_definitions():
    defines = capture_defines("x86_64")
    assert defines["CAP_DATA_MAX"] == DATA_MAX
    assert defines["NR_EXECVE"] == syscall_number("execve", "x86_64")
    assert defines["NR_EXECVE_COMPAT"] == syscall_number("execve", "i386")
    assert defines["X32_SYSCALL_BIT"] == 0x40000000
    assert defines["FCNTL_DUPFD_CLOEXEC"] == 1030
    assert defines["ARG_SPEC_ENTRIES"] == 3 * ABI_SLOT

