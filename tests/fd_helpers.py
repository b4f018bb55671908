"""Hand-built event records and process events for the descriptor table and file tracker
tests: each call as the kernel would record it (EVENT_DTYPE plus captured fields)."""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass, field

import numpy as np

from syscall_tables import syscall_number
from tracing.decode.argspec import checked_in_specs
from tracing.model.captures import (
    EVF_SELECTED,
    FIELD_IO_ARG,
    FIELD_IO_ARG2,
    KIND_FDPAIR,
    KIND_IO,
    KIND_PATH,
    KIND_SOCKADDR,
    IoTotals,
    pack_field,
    pack_io,
)
from tracing.model.file_tracker import FileTracker
from tracing.model.stats import EVENT_DTYPE, ProcEvent, ProcKind

AT_FDCWD = 0xFFFFFF9C  # as the register holds it (a zero-extended int)
PID = 4242


def tracker() -> FileTracker:
    """A tracker on the checked-in specs (not this kernel's) of an x86_64 host."""
    return FileTracker(checked_in_specs(), "x86_64")


def inet(host: str, port: int) -> bytes:
    return struct.pack("<H", socket.AF_INET) + struct.pack(">H", port) \
        + socket.inet_aton(host) + bytes(8)


def io(fd: int, totals: IoTotals, second: bool = False) -> bytes:
    return pack_field(FIELD_IO_ARG2 if second else FIELD_IO_ARG, KIND_IO, pack_io(fd, totals))


def path(arg: int, name: bytes) -> bytes:
    return pack_field(arg, KIND_PATH, name)


@dataclass
class Calls:
    """A batch of calls in the order they ended (ts 10, 20, 30...)."""

    pid: int = PID
    abi: int = 0
    rows: list[tuple[int, int, int, int, tuple[int, ...], int]] = field(default_factory=list)
    data: list[bytes] = field(default_factory=list)
    ts: int = 0

    def call(self, name: str, args: tuple[int, ...], ret: int, data: bytes = b"",
             pid: int | None = None, abi_table: str = "x86_64",
             selected: bool = True) -> Calls:
        nr = syscall_number(name, abi_table)
        assert nr is not None, name
        self.ts += 10
        flags = EVF_SELECTED if selected else 0
        self.rows.append((self.ts, self.pid if pid is None else pid, nr, ret,
                          (*args, *(0,) * (6 - len(args))), flags))
        self.data.append(data)
        return self

    def openat(self, name: bytes, ret: int, flags: int = os.O_RDONLY,
               dfd: int = AT_FDCWD, handover: bytes = b"") -> Calls:
        return self.call("openat", (dfd, 0x1000, flags), ret, path(1, name) + handover)

    def close(self, fd: int, totals: IoTotals | None = None, ret: int = 0) -> Calls:
        return self.call("close", (fd,), ret, io(fd, totals) if totals else b"")

    def write(self, fd: int, n: int) -> Calls:
        return self.call("write", (fd, 0x2000, n), n)

    def read(self, fd: int, n: int) -> Calls:
        return self.call("read", (fd, 0x2000, n), n)

    def pipe2(self, fds: tuple[int, int], flags: int = 0) -> Calls:
        return self.call("pipe2", (0x3000, flags), 0,
                         pack_field(0, KIND_FDPAIR, struct.pack("<ii", *fds)))

    def connect(self, fd: int, addr: bytes, ret: int = 0) -> Calls:
        return self.call("connect", (fd, 0x4000, len(addr)), ret,
                         pack_field(1, KIND_SOCKADDR, addr))

    def records(self) -> np.ndarray:
        out = np.zeros(len(self.rows), dtype=EVENT_DTYPE)
        for i, (ts, pid, nr, ret, args, flags) in enumerate(self.rows):
            out[i]["ts"], out[i]["pid"], out[i]["tid"] = ts, pid, pid
            out[i]["nr"], out[i]["ret"], out[i]["args"] = nr, ret, args
            out[i]["abi"], out[i]["flags"] = self.abi, flags
            out[i]["data_len"] = len(self.data[i])
        return out

    def apply(self, files: FileTracker, proc_events: tuple[ProcEvent, ...] = ()
              ) -> np.ndarray:
        records = self.records()
        files.apply_batch(records, self.data, proc_events)
        return records


def proc(kind: ProcKind, ts: int, pid: int = PID, tid: int | None = None,
         gone: bool = False) -> ProcEvent:
    return ProcEvent(ts_ns=ts, kind=kind, pid=pid, tid=pid if tid is None else tid,
                     ppid=pid, status=0, process_gone=gone, comm="t", filename="")


def names(files: FileTracker, pid: int = PID) -> dict[int, bytes]:
    """fd -> name of a process's descriptors now."""
    table = files.table.tables.get(pid, {})
    return {fd: files.paths.name(e.path_id) for fd, e in sorted(table.items())}


def by_path(files: FileTracker, pid: int = PID) -> dict[bytes, tuple[int, ...]]:
    """path -> (opens, open failures, calls, reads, bytes read, writes, bytes written, ns)."""
    return {files.paths.name(k.path_id): (s.opens, s.open_failures, *s.io)
            for k, s in files.files().items() if k.pid == pid}
