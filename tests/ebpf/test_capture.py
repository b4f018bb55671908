"""What the kernel captures behind each event, on the real kernel, exactly: paths (whole,
truncated at the bound, a faulting pointer), socket addresses, execve's path, arguments and
environment's variable count from its entry, an i386 process's own registers, and
per-descriptor I/O handed over when a descriptor number is reused. Through SyscallProgram
directly: the records as they come."""

from __future__ import annotations

import errno
import platform
import socket
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from syscall_tables import canonical_arch, syscall_number
from tracing.engine.program import EngineOptions, SyscallProgram
from tracing.model.captures import (
    COUNT_MAX,
    EVF_AT_ENTRY,
    EVF_SELECTED,
    FIELD_IO_ARG,
    KIND_ARGV,
    KIND_COUNT,
    KIND_FDPAIR,
    KIND_IO,
    KIND_PATH,
    KIND_SOCKADDR,
    PATH_MAX,
    STATUS_FAULT,
    STATUS_OK,
    STATUS_TRUNCATED,
    Field,
    IoTotals,
    count_value,
    io_totals,
    parse_fields,
)
from tracing.model.selection import EventSelection

pytestmark = pytest.mark.ebpf

HERE = Path(__file__).resolve().parent
ARCH = canonical_arch(platform.machine())


def compile_c(source: Path, out: Path, *flags: str) -> str:
    subprocess.run(["gcc", "-O2", *flags, "-o", str(out), str(source)], check=True,
                   capture_output=True)
    return str(out)


@pytest.fixture(scope="module")
def program() -> Iterator[SyscallProgram]:
    p = SyscallProgram(EngineOptions(events=EventSelection()), ARCH)
    try:
        yield p
    finally:
        p.close()


@pytest.fixture(scope="module")
def capture_workload(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("capture") / "capture_workload"
    return compile_c(HERE / "capture_workload.c", out)


@dataclass
class Record:
    nr: int
    ret: int
    abi: int
    flags: int
    args: tuple[int, ...]
    fields: list[Field]

    def field(self, kind: int) -> Field:
        (found,) = [f for f in self.fields if f.kind == kind]
        return found


class Traced:
    """A workload that waits on stdin, made a target before it goes on."""

    def __init__(self, program: SyscallProgram, argv: list[str]) -> None:
        self.program = program
        program.drain()
        program.take_events()  # earlier tests' records
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.proc.stdout is not None and self.proc.stdin is not None
        assert self.proc.stdout.readline() == b"ready\n"
        program.set_target(self.proc.pid)
        self.records: list[Record] = []

    def release(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"x")
        self.proc.stdin.flush()

    def line(self) -> bytes:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline()

    def finish(self) -> list[Record]:
        """Waits for the end; the records of this process, in order."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        assert self.proc.wait(timeout=30) == 0
        self.program.drain()  # its exit came after its last record: all are in the buffer
        headers, data = self.program.take_events()
        assert headers.flags.writeable
        assert len(data) == len(headers)
        assert (headers["data_len"] == np.array([len(d) for d in data])).all()
        mine = np.flatnonzero(headers["pid"] == self.proc.pid).tolist()
        self.records = [Record(int(headers["nr"][i]), int(headers["ret"][i]),
                               int(headers["abi"][i]), int(headers["flags"][i]),
                               tuple(headers["args"][i].tolist()), parse_fields(data[i]))
                        for i in mine]
        return self.records

    def calls(self, name: str, abi_table: str = ARCH) -> list[Record]:
        nr = syscall_number(name, abi_table)
        return [r for r in self.records if r.nr == nr]


def run(program: SyscallProgram, argv: list[str]) -> Traced:
    traced = Traced(program, argv)
    traced.release()
    traced.finish()
    return traced


def test_each_failed_open_carries_its_path(program, capture_workload):
    n = 50
    traced = run(program, [capture_workload, "enoent", str(n)])
    opens = traced.calls("openat")
    assert len(opens) == n  # one record each: selected and needed by the descriptor table
    assert [r.ret for r in opens] == [-errno.ENOENT] * n
    assert {r.flags for r in opens} == {EVF_SELECTED}
    assert {r.abi for r in opens} == {0}
    paths = [r.field(KIND_PATH) for r in opens]
    assert [(f.arg, f.status) for f in paths] == [(1, STATUS_OK)] * n
    assert [f.data for f in paths] == [b"/nonexistent/sikte-capture-%d" % i for i in range(n)]
    assert all(len(r.fields) == 1 for r in opens)


def test_a_path_longer_than_the_bound_is_cut_there(program, capture_workload):
    traced = run(program, [capture_workload, "long-path", "5000"])
    (call,) = traced.calls("openat")
    assert call.ret == -errno.ENAMETOOLONG
    path = call.field(KIND_PATH)
    assert path.status == STATUS_TRUNCATED
    assert path.data == b"/" + b"p" * (PATH_MAX - 2)
    assert len(path.data) == PATH_MAX - 1


def test_a_faulting_pointer_is_a_fault_with_no_bytes(program, capture_workload):
    traced = run(program, [capture_workload, "fault"])
    (call,) = traced.calls("openat")
    assert call.ret == -errno.EFAULT
    assert call.args[1] == 8
    assert call.field(KIND_PATH) == Field(1, KIND_PATH, STATUS_FAULT, b"")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_a_refused_connect_carries_the_address(program, capture_workload):
    port = _closed_port()
    traced = run(program, [capture_workload, "connect", str(port)])
    (call,) = traced.calls("connect")
    assert call.ret == -errno.ECONNREFUSED
    address = call.field(KIND_SOCKADDR)
    assert (address.arg, address.status) == (1, STATUS_OK)
    assert address.data == (struct.pack("<H", socket.AF_INET) + struct.pack(">H", port)
                            + socket.inet_aton("127.0.0.1") + bytes(8))


def test_exec_of_a_missing_program_carries_path_and_arguments_from_entry(
        program, capture_workload):
    traced = run(program, [capture_workload, "exec-missing"])
    (call,) = traced.calls("execve")
    assert call.ret == -errno.ENOENT
    assert call.flags == EVF_SELECTED | EVF_AT_ENTRY
    assert call.field(KIND_PATH) == Field(0, KIND_PATH, STATUS_OK,
                                          b"/nonexistent/sikte-missing")
    assert call.field(KIND_ARGV) == Field(1, KIND_ARGV, STATUS_OK,
                                          b"sikte-missing\0one\0two words\0")


def test_a_successful_exec_keeps_what_its_entry_captured(program, capture_workload):
    traced = run(program, [capture_workload, "exec-true"])
    (call,) = traced.calls("execve")
    assert call.ret == 0
    assert call.flags == EVF_AT_ENTRY  # bookkeeping (the descriptor table's exec), not kept
    assert call.args[0] != 0  # the caller's pointer, not the new program's registers
    assert call.field(KIND_PATH).data == b"/bin/true"
    assert call.field(KIND_ARGV).data == b"true\0--sikte\0"


def _env_count(program: SyscallProgram, argv: list[str]) -> Field:
    traced = run(program, argv)
    (call,) = traced.calls("execve")
    assert call.ret == -errno.ENOENT
    (count,) = [f for f in call.fields if f.kind == KIND_COUNT]
    return count


@pytest.mark.parametrize("n", [0, 1, 37, COUNT_MAX])
def test_exec_counts_the_environment_at_entry(program, capture_workload, n):
    count = _env_count(program, [capture_workload, "exec-env", str(n)])
    assert count == Field(2, KIND_COUNT, STATUS_OK, struct.pack("<I", n))
    assert count_value(count) == n


def test_an_environment_longer_than_the_bound_is_truncated_there(program, capture_workload):
    count = _env_count(program, [capture_workload, "exec-env", str(COUNT_MAX + 1)])
    assert (count.status, count_value(count)) == (STATUS_TRUNCATED, COUNT_MAX)


def test_an_environment_without_its_null_faults_after_what_was_read(program,
                                                                    capture_workload):
    count = _env_count(program, [capture_workload, "exec-env-open", "5"])
    assert (count.arg, count.status, count_value(count)) == (2, STATUS_FAULT, 5)


def test_a_null_environment_is_not_counted(program, capture_workload):
    traced = run(program, [capture_workload, "exec-env-null"])
    (call,) = traced.calls("execve")
    assert call.args[2] == 0
    assert [f.kind for f in call.fields] == [KIND_PATH, KIND_ARGV]


def test_io_is_handed_over_when_a_descriptor_number_is_reused(program, capture_workload,
                                                               tmp_path):
    k, l_bytes = 10_000, 777
    traced = Traced(program, [capture_workload, "reuse", str(tmp_path / "a"),
                              str(tmp_path / "b"), str(k), str(l_bytes)])
    traced.release()
    fd = int(traced.line())
    assert traced.line() == b"written\n"
    live = program.read_fd_io()
    assert live[(traced.proc.pid, fd)] == IoTotals(calls=1, writes=1, bytes_written=l_bytes,
                                                   io_ns=live[(traced.proc.pid, fd)].io_ns)
    traced.release()
    traced.finish()
    (close,) = [r for r in traced.calls("close") if r.args[0] == fd]
    assert close.ret == 0
    assert close.flags == 0  # bookkeeping only: the selection keeps failed calls
    handed = io_totals(close.field(KIND_IO))
    assert handed is not None and close.field(KIND_IO).arg == FIELD_IO_ARG
    assert handed[0] == fd
    assert handed[1]._replace(io_ns=0) == IoTotals(calls=3, writes=3, bytes_written=k)
    assert handed[1].io_ns > 0
    opens = traced.calls("openat")
    assert [(r.ret, r.flags) for r in opens] == [(fd, 0), (fd, 0)]
    assert [r.field(KIND_PATH).data for r in opens] == [str(tmp_path / n).encode()
                                                        for n in "ab"]
    assert all(len(r.fields) == 1 for r in opens)  # no stale totals: A's went with close
    left = program.take_fd_io({traced.proc.pid})
    assert left[traced.proc.pid][fd]._replace(io_ns=0) == IoTotals(
        calls=1, writes=1, bytes_written=l_bytes)
    assert program.take_fd_io({traced.proc.pid}) == {}  # taken: deleted in the kernel


def test_dup2_onto_an_open_descriptor_hands_its_io_over_and_pipes_carry_their_pair(
        program, capture_workload):
    traced = Traced(program, [capture_workload, "dup-pipe"])
    traced.release()
    n, read_end, write_end = (int(x) for x in traced.line().split())
    traced.finish()
    (dup,) = traced.calls("dup2")
    assert (dup.ret, dup.flags) == (n, 0)
    handed = io_totals(dup.field(KIND_IO))
    assert handed is not None
    assert (handed[0], handed[1]._replace(io_ns=0)) == (n, IoTotals(calls=1, writes=1,
                                                                    bytes_written=5))
    (pipe,) = traced.calls("pipe2")
    assert pipe.ret == 0
    assert pipe.field(KIND_FDPAIR) == Field(0, KIND_FDPAIR, STATUS_OK,
                                            struct.pack("<ii", read_end, write_end))
    left = program.take_fd_io({traced.proc.pid})[traced.proc.pid]
    assert left[write_end]._replace(io_ns=0) == IoTotals(calls=1, writes=1, bytes_written=3)
    assert n not in left  # dup2 handed it over; the new file on n had no I/O


def test_selection_none_sends_nothing_and_counts_no_files(program, capture_workload):
    program.set_selection(EventSelection.none)
    try:
        traced = run(program, [capture_workload, "enoent", "20"])
    finally:
        program.set_selection(EventSelection())
    assert traced.records == []
    assert program.take_fd_io({traced.proc.pid}) == {}


def test_an_i386_process_has_its_own_arguments_and_abi(program, tmp_path):
    try:
        binary = compile_c(HERE / "i386_open.c", tmp_path / "i386_open", "-m32", "-nostdlib",
                           "-static", "-ffreestanding", "-fno-pie", "-no-pie")
    except subprocess.CalledProcessError as err:
        pytest.skip(f"no i386 toolchain: {err.stderr.decode(errors='replace')[:200]}")
    traced = run(program, [binary])
    opens = [r for r in traced.records if r.abi == 1]
    nr = syscall_number("open", "i386")
    assert [(r.nr, r.ret) for r in opens] == [(nr, -errno.ENOENT)]
    (call,) = opens
    assert call.field(KIND_PATH) == Field(0, KIND_PATH, STATUS_OK,
                                          b"/nonexistent/sikte-i386-open")
    assert call.args[0] < 2**32  # its ebx, zero-extended


def test_an_i386_exec_counts_its_4_byte_environment_pointers(program, tmp_path):
    try:
        binary = compile_c(HERE / "i386_exec.c", tmp_path / "i386_exec", "-m32", "-nostdlib",
                           "-static", "-ffreestanding", "-fno-pie", "-no-pie")
    except subprocess.CalledProcessError as err:
        pytest.skip(f"no i386 toolchain: {err.stderr.decode(errors='replace')[:200]}")
    traced = run(program, [binary])
    (call,) = [r for r in traced.records if r.abi == 1]
    assert (call.nr, call.ret) == (syscall_number("execve", "i386"), -errno.ENOENT)
    assert call.field(KIND_ARGV).data == b"sikte-i386-exec\0one\0"
    assert call.field(KIND_COUNT) == Field(2, KIND_COUNT, STATUS_OK, struct.pack("<I", 3))
