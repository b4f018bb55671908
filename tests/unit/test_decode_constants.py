"""The generated constants: the committed syscall_tables/data/constants.json is what the
generator makes from this machine's headers (skipped where they are missing), its values agree
with the standard library's, and flag sets print as strace prints them."""

from __future__ import annotations

import errno
import mmap
import os
import signal
import socket
from pathlib import Path

import pytest

from syscall_tables import generate_constants
from tracing.decode.constants import (
    constants,
    errno_message,
    errno_name,
    flag_names,
    open_flags,
    signal_name,
    value_name,
)

HEADERS = Path("/usr/include/asm-generic/fcntl.h")


@pytest.mark.skipif(not HEADERS.is_file(), reason="no UAPI headers")
def test_committed_file_is_what_the_generator_makes() -> None:
    if generate_constants.kernel_tree() is None:
        pytest.skip("no kernel headers tree (include/linux/errno.h)")
    assert generate_constants.DATA_FILE.read_text() == generate_constants.render()


def test_check_mode_exits_1_when_the_file_differs(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "constants.json"
    stale.write_text("{}\n")
    monkeypatch.setattr(generate_constants, "DATA_FILE", stale)
    monkeypatch.setattr(generate_constants, "render", lambda: "new\n")
    assert generate_constants.main(["--check"]) == 1
    assert generate_constants.main([]) == 0
    assert stale.read_text() == "new\n"
    assert generate_constants.main(["--check"]) == 0


def test_header_expressions_are_evaluated() -> None:
    header = generate_constants.Header()
    header.raw = {"A": "0100", "B": "(A | 0x2)", "C": "(1 << 3)", "D": "B", "E": "-100",
                  "F": "(~A & 0777)", "G": "4U"}
    header.order = list(header.raw)
    values = dict(header.group(lambda n: True, aliases=True))
    assert values == {"A": 64, "B": 66, "C": 8, "D": 66, "E": -100, "F": 0o677, "G": 4}
    assert "D" not in dict(header.group(lambda n: True))  # a bare alias is left out


@pytest.mark.parametrize(("group", "name", "expected"), [
    ("open_flags", "O_CLOEXEC", os.O_CLOEXEC), ("open_flags", "O_CREAT", os.O_CREAT),
    ("open_flags", "O_DIRECTORY", os.O_DIRECTORY), ("open_flags", "O_NONBLOCK", os.O_NONBLOCK),
    ("open_access", "O_RDWR", os.O_RDWR),
    ("access_modes", "F_OK", os.F_OK), ("access_modes", "R_OK", os.R_OK),
    ("access_modes", "W_OK", os.W_OK), ("access_modes", "X_OK", os.X_OK),
    ("faccessat_flags", "AT_EACCESS", 0x200),
    ("map_types", "MAP_PRIVATE", mmap.MAP_PRIVATE), ("map_flags", "MAP_ANONYMOUS", mmap.MAP_ANON),
    ("prot_flags", "PROT_READ", mmap.PROT_READ), ("prot_flags", "PROT_EXEC", mmap.PROT_EXEC),
    ("address_families", "AF_INET6", socket.AF_INET6),
    ("address_families", "AF_UNIX", socket.AF_UNIX),
    ("sock_types", "SOCK_DGRAM", socket.SOCK_DGRAM),
    ("sock_type_flags", "SOCK_CLOEXEC", socket.SOCK_CLOEXEC),
    ("msg_flags", "MSG_NOSIGNAL", socket.MSG_NOSIGNAL),
    ("ip_protocols", "IPPROTO_TCP", socket.IPPROTO_TCP),
    ("signals", "SIGTERM", signal.SIGTERM), ("signals", "SIGCHLD", signal.SIGCHLD),
    ("errno", "ENOENT", errno.ENOENT), ("errno", "ECONNREFUSED", errno.ECONNREFUSED),
    ("at_fdcwd", "AT_FDCWD", -100),
    ("kernel_errno", "ERESTARTSYS", 512), ("kernel_errno", "ERESTART_RESTARTBLOCK", 516),
])
def test_values_agree_with_the_standard_library(group: str, name: str, expected: int) -> None:
    assert constants().value(group, name) == expected


def test_fcntl_commands_agree_with_the_standard_library() -> None:
    import fcntl

    for name in ("F_DUPFD", "F_GETFD", "F_SETFL", "F_DUPFD_CLOEXEC", "F_SETPIPE_SZ"):
        assert constants().value("fcntl_cmds", name) == getattr(fcntl, name), name


def test_every_errno_name_and_message_matches_the_standard_library() -> None:
    for code, name in errno.errorcode.items():
        if name in ("EWOULDBLOCK", "EDEADLOCK", "ENOTSUP"):
            continue  # aliases: strace prints EAGAIN, EDEADLK, EOPNOTSUPP
        assert errno_name(code) == name
        assert errno_message(code) == os.strerror(code)


@pytest.mark.parametrize(("value", "expected"), [
    (0, "O_RDONLY"),
    (os.O_RDONLY | os.O_CLOEXEC, "O_RDONLY|O_CLOEXEC"),
    (os.O_WRONLY | os.O_CREAT | os.O_TRUNC, "O_WRONLY|O_CREAT|O_TRUNC"),
    (os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_DIRECTORY,
     "O_RDONLY|O_NONBLOCK|O_CLOEXEC|O_DIRECTORY"),
    (os.O_RDWR | os.O_TMPFILE, "O_RDWR|O_TMPFILE"),
    (os.O_WRONLY | os.O_SYNC, "O_WRONLY|O_SYNC"),
    (os.O_WRONLY | os.O_DSYNC, "O_WRONLY|O_DSYNC"),
    (os.O_RDWR | 0o100000, "O_RDWR|O_LARGEFILE"),  # the kernel's bit (glibc's is 0 on x86_64)
    (3, "O_ACCMODE"),
    (0x40000000, "O_RDONLY|0x40000000"),
])
def test_open_flags_print_as_strace(value: int, expected: str) -> None:
    assert open_flags(value) == expected


def test_flag_sets_and_values() -> None:
    assert flag_names("prot_flags", 0) == "PROT_NONE"
    assert flag_names("prot_flags", 3) == "PROT_READ|PROT_WRITE"
    assert flag_names("at_flags", 0) == "0"
    assert flag_names("at_flags", 0x1100) == "AT_SYMLINK_NOFOLLOW|AT_EMPTY_PATH"
    assert flag_names("msg_flags", 0x4040) == "MSG_DONTWAIT|MSG_NOSIGNAL"
    assert flag_names("msg_flags", 0x4000 | 1 << 40) == "MSG_NOSIGNAL|0x10000000000"
    assert value_name("address_families", 2, "AF_???") == "AF_INET"
    assert value_name("address_families", 200, "AF_???") == "0xc8 /* AF_??? */"


def test_signal_names() -> None:
    assert [signal_name(s) for s in (9, 17, 32, 33, 64, 0, 65)] == [
        "SIGKILL", "SIGCHLD", "SIGRTMIN", "SIGRT_1", "SIGRT_32", "0", "65"]


def test_unknown_errno() -> None:
    assert errno_name(4000) is None
    assert errno_message(4000) == "Unknown error 4000"
    assert errno_name(515) == "ENOIOCTLCMD"
