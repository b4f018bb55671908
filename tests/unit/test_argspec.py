"""Argument kinds and descriptor effects from tracepoint formats (tracing/decode/argspec.py)."""

from __future__ import annotations

import pytest

from syscall_tables import syscall_number
from tracing.decode import argspec
from tracing.decode.argspec import (
    BUF_ARG1,
    BUF_AT_EXIT,
    EXEC,
    FD_ARG0,
    FD_CLOSE,
    FD_PAIR,
    FD_RET,
    IO_READ,
    IO_WRITE,
    NAMES_SOCKET,
    OPENS,
    checked_in_specs,
    parse_format,
    read_tracefs_formats,
)
from tracing.model.captures import (
    KIND_ARGV,
    KIND_BUF,
    KIND_NONE,
    KIND_PATH,
    KIND_SOCKADDR,
    KIND_STR,
)

OPENAT_FORMAT = """name: sys_enter_openat
ID: 782
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;
\tfield:int dfd;\toffset:16;\tsize:8;\tsigned:0;
\tfield:const char * filename;\toffset:24;\tsize:8;\tsigned:0;
\tfield:int flags;\toffset:32;\tsize:8;\tsigned:0;
\tfield:umode_t mode;\toffset:40;\tsize:8;\tsigned:0;

print fmt: "dfd: 0x%08lx, filename: 0x%08lx", ((unsigned long)(REC->dfd))
"""


def test_a_format_gives_the_arguments_in_order() -> None:
    assert parse_format(OPENAT_FORMAT) == [
        ("int", "dfd"), ("const char *", "filename"), ("int", "flags"), ("umode_t", "mode")]


def test_damaged_format_lines_are_skipped() -> None:
    assert parse_format("field:;offset:1;size:2;\nfield:int x\nrandom text") == []


@pytest.mark.parametrize(("name", "kinds"), [
    ("openat", [KIND_NONE, KIND_PATH, KIND_NONE, KIND_NONE]),
    ("connect", [KIND_NONE, KIND_SOCKADDR, KIND_NONE]),
    ("execve", [KIND_PATH, KIND_ARGV, KIND_NONE]),
    ("write", [KIND_NONE, KIND_BUF, KIND_NONE]),
    ("setxattr", [KIND_PATH, KIND_STR, KIND_NONE, KIND_NONE, KIND_NONE]),
    ("mount", [KIND_PATH, KIND_PATH, KIND_STR, KIND_NONE, KIND_NONE]),
])
def test_argument_kinds_come_from_types_and_names(name: str, kinds: list[int]) -> None:
    spec = checked_in_specs().by_name(name)
    assert spec is not None
    assert [a.kind for a in spec.args] == kinds


@pytest.mark.parametrize(("name", "has", "lacks"), [
    ("openat", OPENS | FD_RET | FD_ARG0, FD_CLOSE),
    ("read", FD_ARG0 | IO_READ | BUF_ARG1 | BUF_AT_EXIT, IO_WRITE),
    ("write", FD_ARG0 | IO_WRITE | BUF_ARG1, IO_READ | BUF_AT_EXIT),
    ("close", FD_ARG0 | FD_CLOSE, IO_READ),
    ("pipe2", FD_PAIR, FD_ARG0),
    ("accept4", FD_ARG0 | FD_RET | NAMES_SOCKET, OPENS),
    ("execve", EXEC, FD_ARG0),
    ("recvfrom", FD_ARG0 | IO_READ, IO_WRITE),
])
def test_descriptor_effects(name: str, has: int, lacks: int) -> None:
    spec = checked_in_specs().by_name(name)
    assert spec is not None
    assert spec.effects & has == has
    assert not spec.effects & lacks


def test_kinds_are_packed_four_bits_per_argument() -> None:
    spec = checked_in_specs().by_name("openat")
    assert spec is not None and spec.kinds == KIND_PATH << 4


def test_cloexec_and_pair_arguments() -> None:
    specs = checked_in_specs()
    assert specs.by_name("openat").cloexec_arg == 2  # type: ignore[union-attr]
    assert specs.by_name("socket").cloexec_arg == 1  # type: ignore[union-attr]
    pipe2 = specs.by_name("pipe2")
    assert pipe2 is not None and pipe2.pair_arg == 0 and pipe2.cloexec_arg == 1


def test_compat_names_find_the_native_format() -> None:
    specs = checked_in_specs()
    for name, nr in (("open", 5), ("stat", 106), ("stat64", 195)):
        assert syscall_number(name, "i386") == nr
        spec = specs.for_call("i386", nr)
        assert spec is not None and spec.name == name
    assert specs.for_call("i386", 5).args[0].kind == KIND_PATH  # type: ignore[union-attr]


def test_abi_codes_name_tables() -> None:
    assert [argspec.abi_table("x86_64", i) for i in range(3)] == ["x86_64", "i386", "x32"]
    assert argspec.abi_table("arm64", 1) == "arm"
    assert argspec.abi_table("riscv64", 0) == "riscv64"


def test_the_checked_in_formats_agree_with_this_kernel() -> None:
    """args.json is the fallback for kernels without tracefs: where this kernel has a
    syscall the file has too, the argument kinds must agree (a new kernel adds calls)."""
    live = read_tracefs_formats()
    if not live:
        pytest.skip("no syscall tracepoint formats readable here (needs root)")
    fallback = checked_in_specs()
    live_specs = argspec.SpecTable(live, "tracefs")
    common = set(live_specs.names()) & set(fallback.names())
    assert len(common) > 300
    differ = [n for n in sorted(common)
              if [a.kind for a in live_specs.by_name(n).args]  # type: ignore[union-attr]
              != [a.kind for a in fallback.by_name(n).args]]  # type: ignore[union-attr]
    assert not differ, f"regenerate with python -m syscall_tables.generate_args: {differ}"
