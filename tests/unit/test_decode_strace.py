"""render.py against the real strace: a small C program makes known calls (failed opens of odd
paths, stat, connects, writes to a pipe, an exec of a missing program) under
`strace -e trace=...` (default -s 32, no -y), prints the values only it knows (descriptors,
pointers), and each of strace's lines is compared with ours for the same call, built from the
same arguments and captured fields: whole lines where we decode everything, field by field
where strace decodes a struct we show as a pointer (stat's buffer).
Skipped when gcc or strace is missing or ptrace is not allowed.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
from pathlib import Path

import pytest

from tracing.decode.argspec import SpecTable, checked_in_specs, load_specs
from tracing.decode.render import format_line, render_parts
from tracing.model.captures import (
    KIND_ARGV,
    KIND_BUF,
    KIND_COUNT,
    KIND_PATH,
    KIND_SOCKADDR,
    STATUS_FAULT,
    STATUS_TRUNCATED,
    pack_count,
    pack_field,
    parse_fields,
)

pytestmark = pytest.mark.skipif(not (shutil.which("gcc") and shutil.which("strace")),
                                reason="needs gcc and strace")

WEIRD = b'/nonexist/q"u o\nte\x01\x027\xff\xfe \\x'
LONG = b"/" + b"a" * 4999
PIPE_DATA = b"hello\0world\t\n 0123456789012345678901234567890"[:44]
ARGV = [b"prog", b"a b", b'q"x\n']
AT_FDCWD = (1 << 64) - 100

PROGRAM = r"""
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv) {
    static char weird[] = "/nonexist/q\"u o\nte\001\0027\377\376 \\x";
    static char longpath[5001];
    char created[4096];
    struct stat st;
    memset(longpath, 'a', 5000);
    longpath[0] = '/';
    snprintf(created, sizeof created, "%s/created", argv[1]);
    setvbuf(stdout, NULL, _IONBF, 0);
    openat(AT_FDCWD, weird, O_RDONLY | O_CLOEXEC);
    openat(AT_FDCWD, longpath, O_RDONLY);
    openat(AT_FDCWD, (char *)1, O_RDONLY);
    printf("created %d\n", openat(AT_FDCWD, created, O_WRONLY | O_CREAT | O_TRUNC, 0640));
    printf("statbuf %p\n", (void *)&st);
    syscall(SYS_stat, "/etc/passwd", &st);
    syscall(SYS_newfstatat, AT_FDCWD, "/nonexist/stat", &st, AT_SYMLINK_NOFOLLOW);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(1)};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    printf("sock4 %d\n", s);
    connect(s, (struct sockaddr *)&sin, sizeof sin);
    connect(s, (struct sockaddr *)&sin, 3);
    int s6 = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(1)};
    inet_pton(AF_INET6, "::1", &sin6.sin6_addr);
    printf("sock6 %d\n", s6);
    connect(s6, (struct sockaddr *)&sin6, sizeof sin6);
    int su = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    strcpy(sun.sun_path, "/nonexist/x.sock");
    printf("sockun %d\n", su);
    connect(su, (struct sockaddr *)&sun, sizeof sun);
    int p[2];
    pipe(p);
    printf("pipe %d\n", p[1]);
    write(p[1], "hello\0world\t\n 0123456789012345678901234567890", 44);
    write(p[1], "ab\001", 3);
    access("/nonexist/acc", F_OK);
    access("/nonexist/acc", R_OK | W_OK);
    access("/nonexist/acc", R_OK | W_OK | X_OK | 16);
    access("/nonexist/acc", 8);
    syscall(SYS_faccessat, AT_FDCWD, "/nonexist/facc", X_OK);
    syscall(SYS_faccessat2, AT_FDCWD, "/nonexist/facc2", W_OK, AT_EACCESS | AT_SYMLINK_NOFOLLOW);
    syscall(SYS_faccessat2, AT_FDCWD, "/nonexist/facc3", R_OK, 4);
    char *args[] = {"prog", "a b", "q\"x\n", NULL};
    int nenv = 0;
    while (environ[nenv])
        nenv++;
    printf("envp %p\n", (void *)environ);
    printf("nenv %d\n", nenv);
    execve("/nonexist/prog", args, environ);
    return 0;
}
"""


Traced = tuple[list[str], dict[str, str], Path]


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Traced:
    """(strace's lines, what the program printed, its directory)."""
    work = tmp_path_factory.mktemp("strace")
    (work / "prog.c").write_text(PROGRAM)
    subprocess.run(["gcc", "-O0", "-o", str(work / "prog"), str(work / "prog.c")], check=True,
                   capture_output=True, timeout=120)
    out = work / "trace.txt"
    run = subprocess.run(
        ["strace", "-o", str(out), "-e", "trace=openat,stat,newfstatat,connect,execve,write,access,"
         "faccessat,faccessat2",
         str(work / "prog"), str(work)], capture_output=True, timeout=120)
    if not out.is_file() or "execve" not in out.read_text(errors="replace"):
        pytest.skip(f"strace could not trace: {run.stderr.decode(errors='replace')[:200]}")
    printed = dict(line.split(" ", 1) for line in run.stdout.decode().splitlines())
    return out.read_text(errors="surrogateescape").splitlines(), printed, work


def specs() -> SpecTable:
    loaded = load_specs()
    return loaded if loaded.by_name("openat") else checked_in_specs()


def ours(name: str, args: tuple[int, ...], ret: int, fields: bytes = b"") -> str:
    spec = specs().by_name(name)
    return format_line(*render_parts(name, args, 0, parse_fields(fields), spec, ret))


def strace_line(lines: list[str], start: str) -> str:
    found = [line for line in lines if line.startswith(start)]
    assert len(found) == 1, f"{start!r}: {found}"
    return found[0]


def split_args(line: str) -> tuple[str, list[str], str]:
    """(name, top-level arguments, result) of a strace line, quotes and brackets respected."""
    name, rest = line.split("(", 1)
    args, depth, current, quoted, escaped = [], 0, "", False, False
    for i, ch in enumerate(rest):
        if quoted:
            current += ch
            quoted = not (ch == '"' and not escaped)
            escaped = ch == "\\" and not escaped
            continue
        if ch == '"':
            quoted = True
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            if depth == 0:
                args.append(current.strip())
                return name, args, rest[i + 1:].strip().removeprefix("=").strip()
            depth -= 1
        elif ch == "," and depth == 0:
            args.append(current.strip())
            current = ""
            continue
        current += ch
    raise AssertionError(f"unbalanced: {line}")


def test_failed_open_of_an_odd_path_is_escaped_as_strace_does(traced: Traced) -> None:
    lines, _, _ = traced
    expected = ours("openat", (AT_FDCWD, 0x1000, os.O_RDONLY | os.O_CLOEXEC, 0), -2,
                    pack_field(1, KIND_PATH, WEIRD))
    assert strace_line(lines, 'openat(AT_FDCWD, "/nonexist/q') == expected


def test_over_long_path_is_cut_at_4095_bytes_then_dots(traced: Traced) -> None:
    lines, _, _ = traced
    line = strace_line(lines, 'openat(AT_FDCWD, "/aaaa')
    expected = ours("openat", (AT_FDCWD, 0x1000, os.O_RDONLY, 0), -36,
                    pack_field(1, KIND_PATH, LONG[:4095], STATUS_TRUNCATED))
    assert line == expected
    assert '"/' + "a" * 4094 + '"...,' in line


def test_faulting_path_shows_the_raw_pointer(traced: Traced) -> None:
    lines, _, _ = traced
    expected = ours("openat", (AT_FDCWD, 1, os.O_RDONLY, 0), -14,
                    pack_field(1, KIND_PATH, b"", STATUS_FAULT))
    assert strace_line(lines, "openat(AT_FDCWD, 0x1,") == expected


def test_open_with_o_creat_shows_the_mode_in_octal(traced: Traced) -> None:
    lines, printed, work = traced
    path = str(work / "created").encode()
    expected = ours("openat", (AT_FDCWD, 0x1000, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640),
                    int(printed["created"]), pack_field(1, KIND_PATH, path))
    assert strace_line(lines, f'openat(AT_FDCWD, "{work}/created"') == expected


def test_stat_field_by_field(traced: Traced) -> None:
    """strace decodes struct stat; we show its pointer: the path and result must match."""
    lines, printed, _ = traced
    statbuf = int(printed["statbuf"], 16)
    theirs = split_args(strace_line(lines, 'stat("/etc/passwd"'))
    mine = split_args(ours("stat", (0x1000, statbuf), 0,
                           pack_field(0, KIND_PATH, b"/etc/passwd")))
    assert (mine[0], mine[1][0], mine[2]) == (theirs[0], theirs[1][0], theirs[2])
    assert len(mine[1]) == len(theirs[1]) == 2
    assert mine[1][1] == hex(statbuf)


def test_failed_newfstatat_whole_line(traced: Traced) -> None:
    """On failure strace shows the stat buffer as a pointer too: the whole line matches."""
    lines, printed, _ = traced
    expected = ours("newfstatat", (AT_FDCWD, 0x1000, int(printed["statbuf"], 16), 0x100), -2,
                    pack_field(1, KIND_PATH, b"/nonexist/stat"))
    assert strace_line(lines, 'newfstatat(AT_FDCWD, "/nonexist/stat"') == expected


def _sockaddr_in() -> bytes:
    return struct.pack("<H", socket.AF_INET) + struct.pack(">H", 1) \
        + socket.inet_aton("127.0.0.1") + bytes(8)


def test_connect_to_closed_loopback_ports(traced: Traced) -> None:
    lines, printed, _ = traced
    s4, s6, su = (int(printed[k]) for k in ("sock4", "sock6", "sockun"))
    sin6 = struct.pack("<H", socket.AF_INET6) + struct.pack(">HI", 1, 0) \
        + socket.inet_pton(socket.AF_INET6, "::1") + bytes(4)
    sun = struct.pack("<H", socket.AF_UNIX) + b"/nonexist/x.sock".ljust(108, b"\0")
    cases = [
        (f"connect({s4}, {{sa_family=AF_INET, sin_port", (s4, 0x1000, 16), -111,
         pack_field(1, KIND_SOCKADDR, _sockaddr_in())),
        (f"connect({s6}, ", (s6, 0x1000, 28), -111, pack_field(1, KIND_SOCKADDR, sin6)),
        (f"connect({su}, ", (su, 0x1000, 110), -2, pack_field(1, KIND_SOCKADDR, sun)),
    ]
    for start, args, ret, fields in cases:
        assert strace_line(lines, start) == ours("connect", args, ret, fields)


def test_sockaddr_with_a_bogus_length(traced: Traced) -> None:
    lines, printed, _ = traced
    s4 = int(printed["sock4"])
    expected = ours("connect", (s4, 0x1000, 3), -22,
                    pack_field(1, KIND_SOCKADDR, _sockaddr_in()[:3]))
    assert strace_line(lines, f"connect({s4}, {{sa_family=AF_INET, sa_data") == expected


def test_writes_to_a_pipe(traced: Traced) -> None:
    lines, printed, _ = traced
    fd = int(printed["pipe"])
    assert strace_line(lines, f'write({fd}, "hello') == ours(
        "write", (fd, 0x1000, 44), 44, pack_field(1, KIND_BUF, PIPE_DATA))
    assert strace_line(lines, f'write({fd}, "ab') == ours(
        "write", (fd, 0x1000, 3), 3, pack_field(1, KIND_BUF, b"ab\x01"))


def test_exec_of_a_missing_program_counts_the_environment(traced: Traced) -> None:
    """strace's default execve line: the environment as its pointer and its variable count
    (`/* 35 vars */`), which the kernel counted at entry."""
    lines, printed, _ = traced
    envp, nenv = int(printed["envp"], 16), int(printed["nenv"])
    assert nenv > 1  # the test's own environment: `vars`, plural
    expected = ours("execve", (0x1000, 0x2000, envp), -2,
                    pack_field(0, KIND_PATH, b"/nonexist/prog")
                    + pack_field(1, KIND_ARGV, b"\0".join(ARGV) + b"\0")
                    + pack_field(2, KIND_COUNT, pack_count(nenv)))
    assert strace_line(lines, 'execve("/nonexist/prog"') == expected
    assert f"{envp:#x} /* {nenv} vars */" in expected


@pytest.mark.parametrize(("start", "name", "args", "ret"), [
    ('access("/nonexist/acc", F_OK)', "access", (0, 0), -2),
    ('access("/nonexist/acc", R_OK|W_OK)', "access", (0, os.R_OK | os.W_OK), -2),
    ('access("/nonexist/acc", R_OK|W_OK|X_OK|0x10)', "access", (0, 0o27), -22),
    ('access("/nonexist/acc", 0x8 /* ?_OK */)', "access", (0, 8), -22),
    ('faccessat(AT_FDCWD, "/nonexist/facc",', "faccessat", (AT_FDCWD, 0, os.X_OK), -2),
    ('faccessat2(AT_FDCWD, "/nonexist/facc2",', "faccessat2",
     (AT_FDCWD, 0, os.W_OK, 0x300), -2),
    ('faccessat2(AT_FDCWD, "/nonexist/facc3",', "faccessat2", (AT_FDCWD, 0, os.R_OK, 4), -22),
])
def test_access_modes_by_name(traced: Traced, start: str, name: str, args: tuple[int, ...],
                              ret: int) -> None:
    """access's mode as strace's access.c prints it: R_OK|W_OK, F_OK for none, unknown bits
    in hex (`0x8 /* ?_OK */` alone); faccessat2's own flags (AT_EACCESS, not AT_REMOVEDIR)."""
    lines, _, _ = traced
    path_at = args.index(0)
    path = start.split('"')[1].encode()
    registers = tuple(0x1000 if i == path_at else a for i, a in enumerate(args))
    expected = ours(name, registers, ret, pack_field(path_at, KIND_PATH, path))
    assert strace_line(lines, start) == expected
