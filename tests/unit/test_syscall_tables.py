"""The generated syscall tables against an independent reference: the kernel's uapi headers.

linux-libc-dev installs the headers a C program compiles against. We let gcc preprocess them
exactly as such a program would (`gcc -E -dM`), evaluate every __NR_* macro, and require the
tables to agree in both directions. The only differences allowed are listed below by name,
each with the reason.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Collection
from importlib import metadata
from pathlib import Path

import pytest

import syscall_tables
from syscall_tables import (
    ABI_COMPAT,
    ABI_NATIVE,
    ABI_X32,
    ARCHES,
    abi_code,
    abi_syscall_name,
    abi_table,
    canonical_arch,
    errno_name,
    errno_number,
    generate,
    host_arch,
    syscall_name,
    syscall_number,
    table,
)

X32_SYSCALL_BIT = 0x40000000

# gcc picks the header a program for that ABI gets: asm/unistd.h includes unistd_64.h under
# -m64, unistd_32.h under -m32 and unistd_x32.h (with __X32_SYSCALL_BIT) under -mx32.
X86_SOURCE = "#include <asm/unistd.h>\n"
X86_FLAGS = {"x86_64": ["-m64"], "i386": ["-m32"], "x32": ["-mx32"]}

# arm64 has no generated header of its own before Linux 6.11: its uapi asm/unistd.h sets
# these and includes asm-generic/unistd.h. In Linux 6.1 (Debian 12's headers) that is
# RENAMEAT, NEW_STAT, SET_GET_RLIMIT, TIME32_SYSCALLS, SYS_CLONE3 and MEMFD_SECRET (added
# for memfd_secret in 5.14). TIME32 changes nothing at 64 bits; it is set to match the kernel.
ARM64_FLAGS = [
    "-m64",
    "-D__BITS_PER_LONG=64",
    "-D__ARCH_WANT_RENAMEAT",
    "-D__ARCH_WANT_NEW_STAT",
    "-D__ARCH_WANT_SET_GET_RLIMIT",
    "-D__ARCH_WANT_TIME32_SYSCALLS",
    "-D__ARCH_WANT_SYS_CLONE3",
    "-D__ARCH_WANT_MEMFD_SECRET",
]
# Markers, not syscalls: the table size, and the base of the per-arch range.
GENERIC_NOT_SYSCALLS = {"syscalls", "arch_specific_syscall"}


def _words(text: str) -> set[str]:
    return set(text.split())


# In the headers but not in system-calls, on purpose: the kernel's syscall tables list these
# numbers with no entry point (or sys_ni_syscall), so calling them returns ENOSYS. Most were
# never implemented on that ABI (getpmsg, afs_syscall, tuxcall, break, ...) or went long ago
# (create_module, nfsservctl, _sysctl); i386's bdflush and uselib went after 6.1. The
# generator takes their names from the headers (a traced program can still call them), and
# lists their numbers as headers_only. arm64's tables come from system-calls alone.
RESERVED: dict[str, set[str]] = {
    "x86_64": _words(
        "uselib _sysctl create_module get_kernel_syms query_module nfsservctl getpmsg putpmsg"
        " afs_syscall tuxcall security vserver"
    ),
    "i386": _words(
        "break stty gtty ftime prof lock mpx ulimit uselib profil idle create_module"
        " get_kernel_syms bdflush afs_syscall _sysctl query_module nfsservctl getpmsg putpmsg"
        " vserver"
    ),
    "x32": {"getpmsg", "putpmsg", "afs_syscall", "tuxcall", "security"},
    "arm64": {"nfsservctl"},  # asm-generic maps it to sys_ni_syscall
}
NAMED_FROM_HEADERS = {"x86_64", "i386", "x32"}

# In system-calls but newer than the installed headers (Debian 12 ships Linux 6.1's): each
# was added to the kernel after 6.1. With newer headers, the ones they define are checked
# like any other.
ADDED_AFTER_6_1 = _words(
    "cachestat fchmodat2 map_shadow_stack futex_wake futex_wait futex_requeue statmount"
    " listmount lsm_get_self_attr lsm_set_self_attr lsm_list_modules mseal setxattrat"
    " getxattrat listxattrat removexattrat open_tree_attr file_getattr file_setattr listns"
    " rseq_slice_yield"
)
ADDED: dict[str, set[str]] = {
    "x86_64": ADDED_AFTER_6_1 | {"uprobe", "uretprobe"},  # x86-only, for fast uprobes
    "i386": ADDED_AFTER_6_1,
    "x32": ADDED_AFTER_6_1 | {"uprobe", "uretprobe"},
    "arm64": ADDED_AFTER_6_1,
}

needs_x86_gcc = pytest.mark.skipif(
    os.uname().machine != "x86_64" or shutil.which("gcc") is None,
    reason="the uapi reference needs gcc on an x86_64 host",
)


def _macros(source: str, flags: list[str]) -> dict[str, str]:
    result = subprocess.run(
        ["gcc", "-E", "-dM", *flags, "-x", "c", "-"],
        input=source,
        capture_output=True,
        text=True,
        check=True,
    )
    found = (re.fullmatch(r"#define (\w+) (.*)", line) for line in result.stdout.splitlines())
    return {m[1]: m[2] for m in found if m}


def _evaluate(expr: str, macros: dict[str, str]) -> int:
    """The value of a macro body such as `(__X32_SYSCALL_BIT + 0)` or `__NR3264_fcntl`."""

    def value(node: ast.AST) -> int:
        match node:
            case ast.Constant(value=int() as number):
                return number
            case ast.Name(id=name):
                return _evaluate(macros[name], macros)
            case ast.BinOp(left=left, op=ast.Add(), right=right):
                return value(left) + value(right)
            case _:
                raise ValueError(f"unexpected syscall macro body {expr!r}")

    return value(ast.parse(expr, mode="eval").body)


def _uapi_numbers(source: str, flags: list[str], skip: Collection[str] = ()) -> dict[str, int]:
    macros = _macros(source, flags)
    return {
        name.removeprefix("__NR_"): _evaluate(body, macros)
        for name, body in macros.items()
        if name.startswith("__NR_") and name.removeprefix("__NR_") not in skip
    }


@functools.cache
def uapi_reference(arch: str) -> dict[str, int]:
    if arch == "arm64":
        source = "#include <asm-generic/unistd.h>\n"
        return _uapi_numbers(source, ARM64_FLAGS, GENERIC_NOT_SYSCALLS)
    return _uapi_numbers(X86_SOURCE, X86_FLAGS[arch])


@needs_x86_gcc
@pytest.mark.parametrize("arch", ["x86_64", "i386", "x32", "arm64"])
def test_table_matches_uapi_headers(arch: str) -> None:
    header = uapi_reference(arch)
    header_by_nr = {nr: name for name, nr in header.items()}
    assert len(header_by_nr) == len(header), "the headers give one number two names"
    ours = table(arch)
    ours_by_name = {name: nr for nr, name in ours.items()}

    # Where the headers name every number (x86), reserved ones included; elsewhere the
    # reserved ones stay unnamed.
    unnamed = set() if arch in NAMED_FROM_HEADERS else RESERVED[arch]
    # name -> number: every header syscall has its number.
    implemented = {name: nr for name, nr in header.items() if name not in unnamed}
    assert {name: ours_by_name.get(name) for name in implemented} == implemented
    # number -> name: every number the headers define names the same syscall, or nothing at
    # all when it is reserved and unnamed.
    assert {nr: ours.get(nr) for nr in header_by_nr} == {
        nr: None if name in unnamed else name for nr, name in header_by_nr.items()
    }
    # And nothing else in our table, except syscalls newer than these headers.
    assert set(ours_by_name) - set(header) == ADDED[arch] - set(header)
    assert RESERVED[arch] <= set(header), "a reserved name is not even in the headers"
    if arch in NAMED_FROM_HEADERS:
        # The data file says which names only the headers gave: exactly the reserved ones.
        doc = json.loads(generate.data_path(arch).read_text("utf-8"))
        assert {ours[nr] for nr in doc["headers_only"]} == RESERVED[arch]


def test_obsolete_numbers_are_named() -> None:
    # The examples: numbers a program can still call (ENOSYS), named as the kernel's
    # headers name them.
    x86_64 = {174: "create_module", 177: "get_kernel_syms", 178: "query_module",
              180: "nfsservctl", 181: "getpmsg", 182: "putpmsg", 183: "afs_syscall",
              184: "tuxcall", 185: "security", 205: "set_thread_area",
              211: "get_thread_area", 214: "epoll_ctl_old", 215: "epoll_wait_old",
              236: "vserver"}
    assert {nr: syscall_name(nr, "x86_64") for nr in x86_64} == x86_64
    i386 = {17: "break", 31: "stty", 32: "gtty", 35: "ftime", 44: "prof", 53: "lock",
            56: "mpx", 58: "ulimit", 98: "profil", 112: "idle", 137: "afs_syscall",
            188: "getpmsg", 189: "putpmsg", 273: "vserver"}
    assert {nr: syscall_name(nr, "i386") for nr in i386} == i386
    assert syscall_name(X32_SYSCALL_BIT + 183, "x32") == "afs_syscall"


@needs_x86_gcc
def test_uapi_reference_reads_the_expected_headers() -> None:
    # Guards the reference itself: if gcc picked another header, the test above would
    # compare against the wrong thing.
    assert uapi_reference("x86_64")["getppid"] == 110
    assert uapi_reference("i386")["getppid"] == 64
    assert uapi_reference("x32")["getppid"] == X32_SYSCALL_BIT + 110
    assert uapi_reference("x32")["rt_sigaction"] == X32_SYSCALL_BIT + 512
    assert uapi_reference("arm64")["fcntl"] == 25  # __NR_fcntl -> __NR3264_fcntl -> 25
    assert uapi_reference("arm64")["memfd_secret"] == 447


def _headers_installed() -> bool:
    try:
        return all(generate.header_path(a).is_file() for a in generate.HEADER_FILES)
    except generate.HeadersMissing:
        return False


needs_headers = pytest.mark.skipif(not _headers_installed(),
                                   reason="the x86 tables are generated from linux-libc-dev")


@needs_headers
@pytest.mark.parametrize("arch", ARCHES)
def test_data_file_is_what_the_generator_writes_now(arch: str) -> None:
    assert generate.data_path(arch).read_text("utf-8") == generate.render(arch)


@needs_headers
@pytest.mark.parametrize("arch", ARCHES)
def test_data_file_header_names_its_source(arch: str) -> None:
    import system_calls

    doc = json.loads(generate.data_path(arch).read_text("utf-8"))
    assert doc["arch"] == arch
    headers = {"headers": {"package": "linux-libc-dev",
                           "file": f"asm/{generate.HEADER_FILES[arch]}",
                           "linux_version": generate.headers_version()}} \
        if arch in generate.HEADER_FILES else {}
    assert doc["source"] == {
        "package": "system-calls",
        "package_version": metadata.version("system-calls"),
        "table": "powerpc64" if arch == "ppc64le" else arch,
        "linux_version": system_calls.linux_version,
        **headers,
    }
    numbers = [int(nr) for nr in doc["syscalls"]]
    assert numbers == sorted(numbers)


def test_generator_without_headers_says_what_to_install(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(generate, "HEADER_DIRS", (tmp_path,))
    assert generate.main(["--check"]) == 2
    assert "install linux-libc-dev" in capsys.readouterr().err


@needs_headers
def test_generator_check_mode_passes_on_fresh_files() -> None:
    assert generate.main(["--check"]) == 0


@pytest.mark.parametrize(
    ("arch", "nr"),
    [
        ("x86_64", 110),
        ("i386", 64),
        ("x32", X32_SYSCALL_BIT + 110),
        ("arm64", 173),
        ("arm", 64),
        ("riscv64", 173),
        ("s390x", 64),
        ("ppc64le", 64),
        ("loongarch64", 173),
    ],
)
def test_every_arch_loads(arch: str, nr: int) -> None:
    assert syscall_number("getppid", arch) == nr
    assert syscall_name(nr, arch) == "getppid"
    assert len(table(arch)) > 300


def test_aliases_select_the_same_table() -> None:
    assert canonical_arch("aarch64") == "arm64"
    assert canonical_arch("powerpc64") == "ppc64le"
    assert canonical_arch("ppc64le") == "ppc64le"
    assert canonical_arch("AMD64") == "x86_64"
    assert canonical_arch("i686") == "i386"
    assert syscall_name(56, "aarch64") == "openat"


def test_unknown_arch_names_valid_choices() -> None:
    with pytest.raises(ValueError, match="unknown architecture 'nosuch'") as info:
        canonical_arch("nosuch")
    assert all(arch in str(info.value) for arch in ARCHES)
    with pytest.raises(ValueError):
        syscall_name(0, "nosuch")


def test_unknown_numbers_and_names() -> None:
    assert syscall_name(9999, "x86_64") == "syscall_9999"
    assert syscall_name(X32_SYSCALL_BIT, "x86_64") == f"syscall_{X32_SYSCALL_BIT}"
    # x32 numbers are named with or without the x32 bit (aggregate keys carry them
    # without it); numbers that x32 does not have stay unnamed either way.
    assert syscall_name(110, "x32") == "getppid"
    assert syscall_name(39, "x32") == "getpid"
    assert syscall_name(512, "x32") == "rt_sigaction"
    assert syscall_name(13, "x32") == "syscall_13"  # 64-bit rt_sigaction: not x32's
    assert syscall_name(0xFFFFFFFF, "x32") == "syscall_4294967295"
    assert syscall_name(0xFFFFFFFF, "x86_64") == "syscall_4294967295"  # syscall(-1)
    assert syscall_number("fork", "arm64") is None
    assert syscall_number("nosuch", "x86_64") is None


def test_table_is_a_sorted_copy() -> None:
    first = table("x86_64")
    assert list(first) == sorted(first)
    assert first[0] == "read"
    first[0] = "changed"
    assert table("x86_64")[0] == "read"


def test_host_arch(monkeypatch: pytest.MonkeyPatch) -> None:
    assert host_arch() == canonical_arch(os.uname().machine)
    fake = os.uname_result(("Linux", "h", "6.1", "#1", "aarch64"))
    monkeypatch.setattr(syscall_tables.os, "uname", lambda: fake)
    assert host_arch() == "arm64"


def test_errno_names() -> None:
    assert errno_name(2) == "ENOENT"
    assert errno_name(-2) == "ENOENT"  # as the kernel returns it
    assert errno_name(13) == "EACCES"
    assert errno_name(9999) == "E9999"
    assert errno_number("ENOENT") == 2
    assert errno_number("enoent") == 2
    assert errno_number("ENOSUCH") is None
    assert errno_number("errorcode") is None


def test_restart_codes_are_named() -> None:
    # The kernel's own codes (include/linux/errno.h): a tracer sees them when a call is cut
    # short by a signal; never "E512".
    names = {512: "ERESTARTSYS", 513: "ERESTARTNOINTR", 514: "ERESTARTNOHAND",
             515: "ENOIOCTLCMD", 516: "ERESTART_RESTARTBLOCK", 517: "EPROBE_DEFER"}
    assert {n: errno_name(-n) for n in names} == names
    assert {errno_number(name) for name in names.values()} == set(names)


def test_abi_tables() -> None:
    assert [abi_table("x86_64", a) for a in (ABI_NATIVE, ABI_COMPAT, ABI_X32)] == [
        "x86_64", "i386", "x32"]
    assert abi_table("arm64", ABI_COMPAT) == "arm"
    assert abi_table("riscv64", ABI_COMPAT) == "riscv64"  # no compat ABI: the host's own
    assert abi_code("x86_64", "i386") == ABI_COMPAT
    assert abi_code("x86_64", "x32") == ABI_X32
    assert abi_code("x86_64", "") == ABI_NATIVE
    assert abi_code("arm64", "arm") == ABI_COMPAT
    # The issue's example: i386 64 is getppid, not x86_64's semget.
    assert abi_syscall_name("x86_64", ABI_COMPAT, 64) == "getppid"
    assert abi_syscall_name("x86_64", ABI_NATIVE, 64) == "semget"
    assert abi_syscall_name("x86_64", ABI_COMPAT, 140) == "_llseek"
    assert abi_syscall_name("x86_64", ABI_COMPAT, 192) == "mmap2"
    assert abi_syscall_name("x86_64", ABI_X32, 39) == "getpid"
    assert abi_syscall_name("x86_64", ABI_X32, 545) == "execveat"  # x32-only, 512 on


def test_import_does_no_work() -> None:
    # A fresh interpreter: importing the package must not read any table or the source package.
    code = (
        "import sys, syscall_tables; "
        "assert syscall_tables._load.cache_info().currsize == 0; "
        "assert 'system_calls' not in sys.modules; "
        "print(syscall_tables.syscall_name(0, 'x86_64'))"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(syscall_tables.__file__).parent.parent)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert result.stdout == "read\n"
