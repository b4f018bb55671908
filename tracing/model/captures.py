"""What the kernel captured behind a syscall event: strings, paths, socket addresses, argument
vectors, the first bytes of data buffers, descriptor pairs, handed-over I/O totals and counts
(execve's environment: how many variables, as strace shows it).

bpf/syscalls.bpf.c appends the fields to the event record (`data_len` bytes after the
EVENT_DTYPE header), each an 8-byte field header (`u8 arg, u8 kind, u8 status, u8 pad,
u32 len`) and `len` bytes. The layout is defined here and in the C only; parsing is bounded
by the bytes given, whatever a field header claims, so a damaged record from a session file
yields fewer fields, never an error.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import NamedTuple

# Record flags (EVENT_DTYPE "flags").
EVF_SELECTED = 1  # kept by the user's selection (failed, slow, 1 in N, all): shown, stored
EVF_AT_ENTRY = 2  # execve's fields were captured at entry (a successful exec replaces memory)
# Not timed (--timing off, or a call sampled mode left untimed): duration_ns is 0, not a time.
EVF_UNTIMED = 4

# Field kinds. The kernel learns each argument's kind from tracing.decode.argspec.
KIND_NONE = 0  # a plain number: nothing captured
KIND_STR = 1  # a string that is not a path (bounded by STR_MAX)
KIND_PATH = 2  # a path (bounded by PATH_MAX - 1)
KIND_SOCKADDR = 3  # raw socket address bytes (at most SOCKADDR_MAX)
KIND_ARGV = 4  # NUL-terminated strings (at most ARGV_MAX of at most STR_MAX)
KIND_BUF = 5  # the first bytes of a data buffer (at most BUF_MAX)
KIND_FDPAIR = 6  # two s32 descriptors (pipe, pipe2, socketpair)
KIND_IO = 7  # a descriptor's I/O totals, handed over when the number stops meaning its file
KIND_COUNT = 8  # u32: the pointers before a vector's NULL (execve's envp), at most COUNT_MAX;
# STATUS_FAULT: a pointer after that many could not be read (0: not even the first)

KIND_NAMES = {KIND_STR: "str", KIND_PATH: "path", KIND_SOCKADDR: "sockaddr",
              KIND_ARGV: "argv", KIND_BUF: "buf", KIND_FDPAIR: "fdpair", KIND_IO: "io",
              KIND_COUNT: "count"}

# Field status.
STATUS_OK = 0
STATUS_TRUNCATED = 1  # there was more than was captured
STATUS_FAULT = 2  # the pointer could not be read (len 0)

# Pseudo argument indexes of handover fields: the call's record carries up to two.
FIELD_IO_ARG = 6
FIELD_IO_ARG2 = 7

# Capture bounds, compiled into the C (-D flags from tracing.engine.program).
PATH_MAX = 4096  # paths are read up to PATH_MAX - 1 bytes (the kernel's own limit)
STR_MAX = 256
SOCKADDR_MAX = 128  # sizeof(struct sockaddr_storage)
ARGV_MAX = 16
BUF_MAX = 64
COUNT_MAX = 4096  # pointers counted; a vector with more is STATUS_TRUNCATED at this count
DATA_MAX = 16384  # the most field bytes one record carries

FIELD_HEADER = struct.Struct("<BBBxI")
_IO = struct.Struct("<ixxxxQQQQQQ")
_FDPAIR = struct.Struct("<ii")
_COUNT = struct.Struct("<I")


@dataclass(frozen=True, slots=True)
class Field:
    arg: int
    kind: int
    status: int
    data: bytes

    @property
    def truncated(self) -> bool:
        return self.status == STATUS_TRUNCATED

    @property
    def faulted(self) -> bool:
        return self.status == STATUS_FAULT


class IoTotals(NamedTuple):
    """A descriptor's I/O, as the kernel counted it (bpf/syscalls.bpf.c, map fd_io)."""

    calls: int = 0
    reads: int = 0
    bytes_read: int = 0
    writes: int = 0
    bytes_written: int = 0
    io_ns: int = 0

    def plus(self, other: IoTotals) -> IoTotals:
        return IoTotals(*(a + b for a, b in zip(self, other, strict=True)))


def parse_fields(data: bytes) -> list[Field]:
    """The fields of one record's data, in the order the kernel wrote them."""
    fields: list[Field] = []
    pos, end = 0, len(data)
    while pos + FIELD_HEADER.size <= end:
        arg, kind, status, length = FIELD_HEADER.unpack_from(data, pos)
        pos += FIELD_HEADER.size
        body = data[pos:pos + length]
        pos += length
        fields.append(Field(arg, kind, status, body))
    return fields


def pack_field(arg: int, kind: int, data: bytes, status: int = STATUS_OK) -> bytes:
    """One field as the kernel writes it (replay fixtures and tests build records with it)."""
    return FIELD_HEADER.pack(arg, kind, status, len(data)) + data


def io_totals(field: Field) -> tuple[int, IoTotals] | None:
    """(descriptor, totals) of a KIND_IO field; None when it is damaged."""
    if field.kind != KIND_IO or len(field.data) < _IO.size:
        return None
    fd, *values = _IO.unpack_from(field.data)
    return fd, IoTotals(*values)


def pack_io(fd: int, totals: IoTotals) -> bytes:
    return _IO.pack(fd, *totals)


def fd_pair(field: Field) -> tuple[int, int] | None:
    if field.kind != KIND_FDPAIR or len(field.data) < _FDPAIR.size:
        return None
    first, second = _FDPAIR.unpack_from(field.data)
    return first, second


def count_value(field: Field) -> int | None:
    """The number of a KIND_COUNT field (a lower bound when field.truncated); None when it
    is damaged or faulted."""
    if field.kind != KIND_COUNT or len(field.data) < _COUNT.size:
        return None
    value: int = _COUNT.unpack_from(field.data)[0]
    return value


def pack_count(count: int) -> bytes:
    return _COUNT.pack(count)


def argv_strings(field: Field) -> list[bytes]:
    """The strings of a KIND_ARGV field (the last one may be cut short: field.truncated)."""
    parts = field.data.split(b"\0")
    return parts[:-1] if parts and parts[-1] == b"" else parts


def field_for(fields: list[Field], arg: int) -> Field | None:
    for f in fields:
        if f.arg == arg:
            return f
    return None
