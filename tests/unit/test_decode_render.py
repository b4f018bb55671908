"""Whole calls decoded as strace prints them (the expected lines are strace 6.1's output for the
same calls on this machine), results, the log line, and decode_events over EVENT_DTYPE
records. The specs are the checked-in ones so the test reads no tracefs."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from tracing.decode.argspec import ABI_COMPAT, SpecTable, checked_in_specs
from tracing.decode.render import (
    DecodedEvent,
    decode_events,
    format_line,
    render_call,
    render_line,
)
from tracing.model.captures import (
    COUNT_MAX,
    KIND_ARGV,
    KIND_BUF,
    KIND_COUNT,
    KIND_FDPAIR,
    KIND_PATH,
    KIND_SOCKADDR,
    STATUS_FAULT,
    STATUS_OK,
    STATUS_TRUNCATED,
    Field,
    pack_count,
    pack_field,
    parse_fields,
)
from tracing.model.stats import EVENT_DTYPE

SPECS = checked_in_specs()
AT_FDCWD = (1 << 64) - 100
NEG1 = (1 << 64) - 1


def call(name: str, args: tuple[int, ...], ret: int, fields: bytes = b"",
         fd_names: dict[int, str | bytes] | None = None, abi: int = 0) -> str:
    return render_call(name, args, abi, parse_fields(fields), SPECS.by_name(name), ret, fd_names)


@pytest.mark.parametrize(("name", "args", "ret", "fields", "expected"), [
    ("openat", (AT_FDCWD, 1, 0o2000000, 0, 7, 9), -2, pack_field(1, KIND_PATH, b"/etc/app.conf"),
     'openat(AT_FDCWD, "/etc/app.conf", O_RDONLY|O_CLOEXEC) = -1 ENOENT (No such file or '
     "directory)"),
    ("open", (1, 0o101, 0o644), 3, pack_field(0, KIND_PATH, b"x"),
     'open("x", O_WRONLY|O_CREAT, 0644) = 3'),
    ("creat", (1, 0o600), 3, pack_field(0, KIND_PATH, b"x"), 'creat("x", 0600) = 3'),
    ("mmap", (0, 8192, 3, 0x22, NEG1, 0), 0x7F77D0372000, b"",
     "mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f77d0372000"),
    ("mmap", (0, 38011, 1, 2, 3, 0x2000), 0x7F77D036A000, b"",
     "mmap(NULL, 38011, PROT_READ, MAP_PRIVATE, 3, 0x2000) = 0x7f77d036a000"),
    ("mprotect", (0x1000, 4096, 0), -12, b"",
     "mprotect(0x1000, 4096, PROT_NONE) = -1 ENOMEM (Cannot allocate memory)"),
    ("brk", (0,), 0x55D000, b"", "brk(NULL) = 0x55d000"),
    ("socket", (10, 0x802, 17), 6, b"",
     "socket(AF_INET6, SOCK_DGRAM|SOCK_NONBLOCK, IPPROTO_UDP) = 6"),
    ("socket", (16, 3, 0), 7, b"", "socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE) = 7"),
    ("socket", (1, 0x80001, 0), 5, b"", "socket(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC, 0) = 5"),
    ("kill", (999999, 35), -3, b"", "kill(999999, SIGRT_3) = -1 ESRCH (No such process)"),
    ("kill", (999999, 0), -3, b"", "kill(999999, 0) = -1 ESRCH (No such process)"),
    ("tgkill", (10, 11, 15), 0, b"", "tgkill(10, 11, SIGTERM) = 0"),
    ("rt_sigaction", (2, 0x7FF0, 0, 8), 0, b"", "rt_sigaction(SIGINT, 0x7ff0, NULL, 8) = 0"),
    ("fcntl", (3, 1, 0), 0, b"", "fcntl(3, F_GETFD) = 0"),
    ("fcntl", (3, 1, 0), 1, b"", "fcntl(3, F_GETFD) = 0x1 (flags FD_CLOEXEC)"),
    ("fcntl", (3, 2, 1), 0, b"", "fcntl(3, F_SETFD, FD_CLOEXEC) = 0"),
    ("fcntl", (3, 3, 0), 2, b"", "fcntl(3, F_GETFL) = 0x2 (flags O_RDWR)"),
    ("fcntl", (3, 1030, 10), 11, b"", "fcntl(3, F_DUPFD_CLOEXEC, 10) = 11"),
    ("fcntl", (3, 4, 0o4002), 0, b"", "fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0"),
    ("pipe2", (0x7FF0, 0o2000000), 0, pack_field(0, KIND_FDPAIR, struct.pack("<ii", 4, 5)),
     "pipe2([4, 5], O_CLOEXEC) = 0"),
    ("pipe2", (0x7FF0, 0), -24, b"", "pipe2(0x7ff0, 0) = -1 EMFILE (Too many open files)"),
    ("dup3", (4, 20, 0o2000000), 20, b"", "dup3(4, 20, O_CLOEXEC) = 20"),
    ("dup2", (4, 21), 21, b"", "dup2(4, 21) = 21"),
    ("close", (3,), -9, b"", "close(3) = -1 EBADF (Bad file descriptor)"),
    ("clone", (0x1200011, 0, 0, 0x7F00AA, 0), 1234, b"",
     "clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, "
     "child_tidptr=0x7f00aa) = 1234"),
    ("read", (3, 0x7FF0, 4096), 5, pack_field(1, KIND_BUF, b"hello"), 'read(3, "hello", 4096) = 5'),
    ("read", (3, 0x7FF0, 4096), -11, b"",
     "read(3, 0x7ff0, 4096) = -1 EAGAIN (Resource temporarily unavailable)"),
    ("write", (1, 0x7FF0, 40), 40, pack_field(1, KIND_BUF, b"y" * 40),
     'write(1, "' + "y" * 32 + '"..., 40) = 40'),
    ("write", (1, 0x7FF0, 100), -14, pack_field(1, KIND_BUF, b"", STATUS_FAULT),
     "write(1, 0x7ff0, 100) = -1 EFAULT (Bad address)"),
    ("newfstatat", (AT_FDCWD, 1, 0x7FFC, 0x1000), 0, pack_field(1, KIND_PATH, b""),
     'newfstatat(AT_FDCWD, "", 0x7ffc, AT_EMPTY_PATH) = 0'),
    ("unlinkat", (AT_FDCWD, 1, 0x200), 0, pack_field(1, KIND_PATH, b"d"),
     'unlinkat(AT_FDCWD, "d", AT_REMOVEDIR) = 0'),
    ("chmod", (1, 0o755), 0, pack_field(0, KIND_PATH, b"f"), 'chmod("f", 0755) = 0'),
    ("statx", (AT_FDCWD, 1, 0x100, 0x7FF, 0x7FFC0), -2, pack_field(1, KIND_PATH, b"/n"),
     'statx(AT_FDCWD, "/n", AT_STATX_SYNC_AS_STAT|AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, '
     "0x7ffc0) = -1 ENOENT (No such file or directory)"),
    ("statx", (AT_FDCWD, 1, 0, 0x202, 0x7FFC0), 0, pack_field(1, KIND_PATH, b"/n"),
     'statx(AT_FDCWD, "/n", AT_STATX_SYNC_AS_STAT, STATX_MODE|STATX_SIZE, 0x7ffc0) = 0'),
    ("statx", (AT_FDCWD, 1, 0x5000, 0xFFF, 0x7FFC0), 0, pack_field(1, KIND_PATH, b"/n"),
     'statx(AT_FDCWD, "/n", AT_STATX_DONT_SYNC|AT_EMPTY_PATH, STATX_ALL, 0x7ffc0) = 0'),
    ("lseek", (3, NEG1, 1), 99, b"", "lseek(3, -1, 1) = 99"),
])
def test_calls(name: str, args: tuple[int, ...], ret: int, fields: bytes,
               expected: str) -> None:
    assert call(name, args, ret, fields) == expected


def test_argument_count_is_the_calls_own() -> None:
    assert call("close", (3, 0x55, 0x66, 7, 8, 9), 0) == "close(3) = 0"


def test_restart_codes_as_strace() -> None:
    assert call("read", (3, 1, 2), -512) == \
        "read(3, 0x1, 2) = ? ERESTARTSYS (To be restarted if SA_RESTART is set)"
    assert call("nanosleep", (1, 0), -516) == \
        "nanosleep(0x1, NULL) = ? ERESTART_RESTARTBLOCK (Interrupted by signal)"
    assert call("close", (3,), -515) == "close(3) = -1 ENOIOCTLCMD (Unknown error 515)"
    assert call("close", (3,), -4000) == "close(3) = -1 (errno 4000)"


def test_descriptors_are_annotated_like_strace_y() -> None:
    names: dict[int, str | bytes] = {3: "/etc/passwd", 4: b"/tmp/a>b"}
    assert call("close", (3,), 0, fd_names=names) == "close(3</etc/passwd>) = 0"
    assert call("read", (4, 1, 9), 0, pack_field(1, KIND_BUF, b""), names) == \
        'read(4</tmp/a\\76b>, "", 9) = 0'
    assert call("openat", (AT_FDCWD, 1, 0), 3, pack_field(1, KIND_PATH, b"/x"), names) == \
        'openat(AT_FDCWD, "/x", O_RDONLY) = 3</etc/passwd>'


def test_bad_input_in_paths() -> None:
    long = b"/" + b"z" * 4094
    assert call("open", (1, 0), -36, pack_field(0, KIND_PATH, long, STATUS_TRUNCATED)) == \
        f'open("{long.decode()}"..., O_RDONLY) = -1 ENAMETOOLONG (File name too long)'
    assert call("open", (0xDEAD, 0), -14, pack_field(0, KIND_PATH, b"", STATUS_FAULT)) == \
        "open(0xdead, O_RDONLY) = -1 EFAULT (Bad address)"
    assert call("open", (0, 0), -14) == "open(NULL, O_RDONLY) = -1 EFAULT (Bad address)"
    assert call("open", (1, 0), -2, pack_field(0, KIND_PATH, b'a "b"\n\x1b]0;x\x07\xff')) == \
        'open("a \\"b\\"\\n\\33]0;x\\7\\377", O_RDONLY) = -1 ENOENT (No such file or directory)'


def test_execve_argv_cut_and_more() -> None:
    argv = b"ls\0" + b"L" * 40 + b"\0"
    fields = pack_field(0, KIND_PATH, b"/bin/ls") + pack_field(1, KIND_ARGV, argv,
                                                             STATUS_TRUNCATED)
    assert call("execve", (1, 2, 0x7FFD0), 0, fields) == \
        'execve("/bin/ls", ["ls", "' + "L" * 32 + '"..., ...], 0x7ffd0) = 0'


@pytest.mark.parametrize(("envp", "count", "expected"), [
    (0x7FFD0, (1, STATUS_OK), "0x7ffd0 /* 1 var */"),
    (0x7FFD0, (0, STATUS_OK), "0x7ffd0 /* 0 vars */"),
    (0x7FFD0, (30, STATUS_OK), "0x7ffd0 /* 30 vars */"),
    (0x7FFD0, (2, STATUS_FAULT), "0x7ffd0 /* 2 vars, unterminated */"),
    (0x7FFD0, (0, STATUS_FAULT), "0x7ffd0"),  # not even its first pointer: strace's too
    (0x7FFD0, (COUNT_MAX, STATUS_TRUNCATED), f"0x7ffd0 /* >{COUNT_MAX} vars */"),
    (0x7FFD0, None, "0x7ffd0"),  # nothing captured (an older session)
    (0, None, "NULL"),
])
def test_execve_environment_is_its_pointer_and_count(envp: int, count: tuple[int, int] | None,
                                                      expected: str) -> None:
    """strace's default (abbreviated) envp: `0x7ffd... /* 30 vars */` (src/execve.c)."""
    fields = pack_field(0, KIND_PATH, b"/bin/ls") + pack_field(1, KIND_ARGV, b"ls\0")
    if count is not None:
        fields += pack_field(2, KIND_COUNT, pack_count(count[0]), count[1])
    assert call("execve", (1, 2, envp), -2, fields) == \
        f'execve("/bin/ls", ["ls"], {expected}) = -1 ENOENT (No such file or directory)'
    at = pack_field(1, KIND_PATH, b"x") + pack_field(2, KIND_ARGV, b"x\0") \
        + pack_field(3, KIND_COUNT, pack_count(count[0]), count[1]) if count else b""
    if count is not None:
        assert f"], {expected}, " in call("execveat", (AT_FDCWD, 1, 2, envp, 0), -2, at)


def test_an_i386_environment_pointer_is_32_bits() -> None:
    fields = pack_field(0, KIND_PATH, b"/x") + pack_field(1, KIND_ARGV, b"x\0") \
        + pack_field(2, KIND_COUNT, pack_count(3))
    assert call("execve", (1, 2, 0xFFFFFFFF_FFD0), -2, fields, abi=ABI_COMPAT).endswith(
        '["x"], 0xffffffd0 /* 3 vars */) = -1 ENOENT (No such file or directory)')


def test_connect_with_short_address_length_shows_the_pointer() -> None:
    raw = struct.pack("<H", 2) + bytes(14)
    assert call("connect", (3, 0x7FF0, 1), -22, pack_field(1, KIND_SOCKADDR, raw[:1])) == \
        "connect(3, 0x7ff0, 1) = -1 EINVAL (Invalid argument)"


def test_i386_open_shows_its_path() -> None:
    """An i386 process's registers are its own: open's path and 32-bit flags."""
    line = render_call("open", (0x5655A000, 0o100000, 0), ABI_COMPAT,
                       parse_fields(pack_field(0, KIND_PATH, b"/nonexist/i386")),
                       SPECS.by_name("open"), -2)
    assert line == ('open("/nonexist/i386", O_RDONLY|O_LARGEFILE) = '
                    "-1 ENOENT (No such file or directory)")


def test_unknown_call_prints_every_register_in_hex() -> None:
    assert render_call("syscall_0x1ff", (0, 1, 0x10), 0, [], None, 0) == \
        "syscall_0x1ff(0, 0x1, 0x10) = 0"


def test_format_line_aligns_results_at_column_40() -> None:
    assert format_line("close(3)", "0") == "close(3)" + " " * 32 + "= 0"
    long = "openat(AT_FDCWD, \"/a/long/enough/path\", O_RDONLY)"
    assert format_line(long, "3", duration_ns=1_234_567_891) == long + " = 3 <1.234567>"


def _records(rows: list[dict[str, object]]) -> np.ndarray:
    out = np.zeros(len(rows), dtype=EVENT_DTYPE)
    for i, row in enumerate(rows):
        for key, value in row.items():
            out[i][key] = value
    return out


class Paths:
    def name(self, path_id: int) -> bytes:
        return {5: b"/var/log/app.log"}.get(path_id, b"")


def test_decode_events_fills_the_decoded_fields() -> None:
    sa = struct.pack("<H", 2) + struct.pack(">H", 8080) + bytes([127, 0, 0, 1]) + bytes(8)
    records = _records([
        {"ts": 10, "pid": 7, "tid": 8, "nr": 257, "ret": -2, "duration_ns": 12_000,
         "args": [AT_FDCWD, 1, 0o2000000, 0, 0, 0]},
        {"ts": 11, "pid": 7, "tid": 7, "nr": 42, "ret": -111, "duration_ns": 5,
         "args": [3, 1, 16, 0, 0, 0]},
        {"ts": 12, "pid": 7, "tid": 7, "nr": 1, "ret": 3, "duration_ns": 5,
         "args": [4, 1, 3, 0, 0, 0], "fd_path": 5},
        {"ts": 13, "pid": 9, "tid": 9, "nr": 5, "abi": ABI_COMPAT, "ret": -2, "duration_ns": 1,
         "args": [1, 0, 0, 0, 0, 0]},
    ])
    data = [pack_field(1, KIND_PATH, b"/etc/missing"), pack_field(1, KIND_SOCKADDR, sa),
            pack_field(1, KIND_BUF, b"abc"), pack_field(0, KIND_PATH, b"/old/i386")]
    events = decode_events(records, data, "x86_64", SPECS, Paths())
    first, conn, write, old = events
    assert first == DecodedEvent(
        ts_ns=10, pid=7, tid=8, nr=257, name="openat", abi=0,
        args_text='AT_FDCWD, "/etc/missing", O_RDONLY|O_CLOEXEC',
        result_text="-1 ENOENT (No such file or directory)", ret=-2, errno_name="ENOENT",
        path=b"/etc/missing", addr=None, fd=None, fd_path=None, duration_ns=12_000)
    assert render_line(first) == format_line(
        'openat(AT_FDCWD, "/etc/missing", O_RDONLY|O_CLOEXEC)',
        "-1 ENOENT (No such file or directory)") + " <0.000012>"
    assert render_line(first, multi_process=True).startswith("[pid     8] openat(")
    assert (conn.name, conn.addr, conn.errno_name, conn.fd) == \
        ("connect", "127.0.0.1:8080", "ECONNREFUSED", 3)
    assert (write.call_text, write.fd, write.fd_path) == \
        ('write(4</var/log/app.log>, "abc", 3) = 3', 4, b"/var/log/app.log")
    assert (old.name, old.abi, old.path, old.call_text) == (
        "open", ABI_COMPAT, b"/old/i386",
        'open("/old/i386", O_RDONLY) = -1 ENOENT (No such file or directory)')


def test_decode_events_with_no_captures() -> None:
    records = _records([{"nr": 3, "args": [5, 0, 0, 0, 0, 0], "ret": 0}])
    (event,) = decode_events(records, [], "x86_64", SPECS)
    assert event.call_text == "close(5) = 0"
    assert (event.path, event.addr, event.fd, event.fd_path) == (None, None, 5, None)


def test_fields_as_a_list_of_field_objects() -> None:
    spec_table = SpecTable({"openat": [("int", "dfd"), ("const char *", "filename"),
                                       ("int", "flags"), ("umode_t", "mode")]}, "test")
    fields = [Field(1, KIND_PATH, 0, b"/f")]
    assert render_call("openat", (AT_FDCWD, 1, 0o1, 0), 0, fields,
                       spec_table.by_name("openat"), 3) == 'openat(AT_FDCWD, "/f", O_WRONLY) = 3'
