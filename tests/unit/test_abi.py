"""Process ABI detection on real binaries built here: 64-bit, 32-bit (i386) and x32."""

from __future__ import annotations

import os
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from syscall_tables import host_arch
from syscall_tables.abi import abi_from_header, abi_of_elf, abi_of_pid

pytestmark = pytest.mark.skipif(
    os.uname().machine != "x86_64", reason="builds x86 binaries with gcc -m32/-mx32"
)

# Says it is running only once exec is done, then waits to be killed.
SLEEPER_C = r"""
#include <stdio.h>
#include <unistd.h>
int main(void) { puts("ready"); fflush(stdout); pause(); return 0; }
"""


def _compile(tmp: Path, flag: str) -> subprocess.CompletedProcess[str]:
    source = tmp / "sleeper.c"
    source.write_text(SLEEPER_C)
    return subprocess.run(
        ["gcc", flag, "-O1", "-o", str(tmp / f"sleeper{flag}"), str(source)],
        capture_output=True,
        text=True,
    )


def _build(tmp_path_factory: pytest.TempPathFactory, flag: str) -> Path:
    tmp = tmp_path_factory.mktemp("abi")
    result = _compile(tmp, flag)
    hint = "apt-get install gcc-multilib"
    assert result.returncode == 0, f"gcc {flag} failed ({hint}):\n{result.stderr}"
    return tmp / f"sleeper{flag}"


@pytest.fixture(scope="module")
def binary64(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory, "-m64")


@pytest.fixture(scope="module")
def binary32(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory, "-m32")


@pytest.fixture
def running32(binary32: Path) -> Iterator[int]:
    proc = subprocess.Popen([str(binary32)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_elf_64bit(binary64: Path) -> None:
    assert abi_of_elf(str(binary64)) == "x86_64"


def test_elf_32bit(binary32: Path) -> None:
    assert abi_of_elf(str(binary32)) == "i386"


def test_elf_x32(tmp_path: Path) -> None:
    result = _compile(tmp_path, "-mx32")
    if result.returncode != 0:
        pytest.skip(f"this toolchain cannot link x32 (libc6-dev-x32): {result.stderr[-200:]}")
    assert abi_of_elf(str(tmp_path / "sleeper-mx32")) == "x32"


def test_pid_of_running_32bit_process(running32: int) -> None:
    assert abi_of_pid(running32) == "i386"


def test_pid_of_this_process() -> None:
    assert abi_of_pid(os.getpid()) == "x86_64"


def test_vanished_pid_falls_back_to_host(binary64: Path) -> None:
    proc = subprocess.Popen([str(binary64)], stdout=subprocess.DEVNULL)
    proc.kill()
    proc.wait()
    assert not Path(f"/proc/{proc.pid}").exists(), "pid reused already; rerun"
    assert abi_of_pid(proc.pid) == host_arch()


def test_pid_beyond_pid_max_falls_back_to_host() -> None:
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    assert abi_of_pid(pid_max + 1) == host_arch()


def test_kernel_thread_falls_back_to_host() -> None:
    # kthreadd is pid 2 outside a pid namespace; it has no executable.
    try:
        comm = Path("/proc/2/comm").read_text().strip()
    except OSError:
        comm = ""
    if comm != "kthreadd":
        pytest.skip("no kernel thread visible in this pid namespace")
    assert abi_of_pid(2) == host_arch()


def test_not_elf_raises_value_error(tmp_path: Path) -> None:
    text = tmp_path / "script.sh"
    text.write_text("#!/bin/sh\necho hello, this is long enough\n")
    with pytest.raises(ValueError, match="not an ELF file"):
        abi_of_elf(str(text))
    with pytest.raises(FileNotFoundError):
        abi_of_elf(str(tmp_path / "missing"))


def _header(machine: int, elf_class: int, big_endian: bool) -> bytes:
    ident = b"\x7fELF" + bytes([elf_class, 2 if big_endian else 1, 1]) + bytes(9)
    return ident + struct.pack(">HH" if big_endian else "<HH", 2, machine)


@pytest.mark.parametrize(
    ("machine", "elf_class", "big_endian", "expected"),
    [
        (183, 2, False, "arm64"),
        (40, 1, False, "arm"),
        (243, 2, False, "riscv64"),
        (22, 2, True, "s390x"),
        (21, 2, False, "ppc64le"),
        (21, 2, True, "ppc64le"),  # big-endian ppc64 uses the same table
        (258, 2, False, "loongarch64"),
        (62, 2, False, "x86_64"),
        (62, 1, False, "x32"),
        (3, 1, False, "i386"),
    ],
)
def test_header_machines(machine: int, elf_class: int, big_endian: bool, expected: str) -> None:
    assert abi_from_header(_header(machine, elf_class, big_endian)) == expected


def test_header_unsupported_or_short() -> None:
    with pytest.raises(ValueError, match="ELF machine 8"):  # EM_MIPS
        abi_from_header(_header(8, 2, True))
    with pytest.raises(ValueError, match="not an ELF file"):
        abi_from_header(_header(62, 2, False)[:19])
