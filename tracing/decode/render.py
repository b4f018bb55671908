"""Whole syscall events as strace prints them: `openat(AT_FDCWD, "/etc/x", O_RDONLY|O_CLOEXEC)
= -1 ENOENT (No such file or directory)`, with strace -f's `[pid N] ` and strace -T's
`<0.000012>` for the log and `record --trace`, and `DecodedEvent`, the decoded fields of an
event (path, socket address, descriptor and its path, errno) for the log, filters and Parquet.

Decoding is pure and bounded per event (captures are bounded by the kernel), and is done for
the events that are shown or exported, never for every event on the engine thread.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from syscall_tables import table as syscall_table
from tracing.decode.args import CallContext
from tracing.decode.argspec import (
    FD_ARG0,
    FD_RET,
    OPENS,
    SpecTable,
    SyscallSpec,
    abi_table,
)
from tracing.decode.calls import HEX_RESULT, call_args, fcntl_result
from tracing.decode.constants import MASK64, errno_message, errno_name, hex_value
from tracing.decode.fdnames import annotate_fd
from tracing.decode.sockaddr import short_address
from tracing.model.captures import EVF_UNTIMED, KIND_PATH, KIND_SOCKADDR, Field, parse_fields

MAX_ERRNO = 4095
# -T's place for a call that was not timed (--timing off, or sampled mode left it out): its
# record's duration is 0, which is no time, so the line says so rather than <0.000000>.
UNTIMED_TEXT = "<->"
RESULT_COLUMN = 40  # strace's default -a: results start at this column when the call fits
# strace's own words for the restart codes (src/syscall.c): a signal interrupted the call and
# the kernel restarts it or not; they never reach the process, so no strerror text exists.
RESTART_TEXT = {"ERESTARTSYS": "To be restarted if SA_RESTART is set",
                "ERESTARTNOINTR": "To be restarted",
                "ERESTARTNOHAND": "To be restarted if no handler",
                "ERESTART_RESTARTBLOCK": "Interrupted by signal"}


class PathNames(Protocol):
    def name(self, path_id: int) -> bytes: ...


def _by_arg(fields: Iterable[Field]) -> dict[int, Field]:
    out: dict[int, Field] = {}
    for f in fields:
        out.setdefault(f.arg, f)
    return out


def render_parts(name: str, args: Sequence[int], abi: int, fields: Iterable[Field],
                 spec: SyscallSpec | None, ret: int,
                 fd_names: Mapping[int, str | bytes] | None = None) -> tuple[str, str]:
    """(`openat(AT_FDCWD, "/x", O_RDONLY)`, `-1 ENOENT (No such file or directory)`)."""
    ctx = CallContext(name, tuple(args), abi, _by_arg(fields), spec, ret, fd_names)
    return f"{name}({', '.join(call_args(ctx))})", result_text(ctx)


def render_call(name: str, args: Sequence[int], abi: int, fields: Iterable[Field],
                spec: SyscallSpec | None, ret: int,
                fd_names: Mapping[int, str | bytes] | None = None) -> str:
    """strace's text for one call and its result, compact (no column alignment)."""
    call, result = render_parts(name, args, abi, fields, spec, ret, fd_names)
    return f"{call} = {result}"


def format_line(call: str, result: str, *, prefix: str = "",
                duration_ns: int | None = None, untimed: bool = False) -> str:
    """A line as strace writes it: the result at column 40 when the call is shorter
    (strace's -a 40), then -T's `<seconds.micros>`, truncated as strace truncates it, or
    `<->` for an untimed call."""
    head = f"{prefix}{call} ".ljust(RESULT_COLUMN)
    line = f"{head}= {result}"
    if untimed:
        line += f" {UNTIMED_TEXT}"
    elif duration_ns is not None:
        line += f" {duration_text(duration_ns)}"
    return line


def duration_text(duration_ns: int | None) -> str:
    """strace -T's `<0.000012>` (seconds, truncated to microseconds); `<->` for None, an
    untimed call."""
    if duration_ns is None:
        return UNTIMED_TEXT
    seconds, ns = divmod(max(duration_ns, 0), 1_000_000_000)
    return f"<{seconds}.{ns // 1000:06d}>"


def event_duration(duration_ns: int, flags: int) -> int | None:
    """A record's duration, None when its call was not timed (EVF_UNTIMED: the 0 it carries
    is no time). Records saved before the flag existed were all timed."""
    return None if flags & EVF_UNTIMED else duration_ns


def result_text(ctx: CallContext) -> str:
    """`3`, `-1 ENOENT (No such file or directory)`, `? ERESTARTSYS (...)`, `0x7f...`."""
    ret = ctx.ret
    if -MAX_ERRNO <= ret < 0:
        code = -ret
        err = errno_name(code)
        if err in RESTART_TEXT:
            return f"? {err} ({RESTART_TEXT[err]})"
        if err is None:
            return f"-1 (errno {code})"
        return f"-1 {err} ({errno_message(code)})"
    if ctx.name in HEX_RESULT:
        return hex_value(ret & ((1 << ctx.word_bits) - 1))
    if ctx.name in ("fcntl", "fcntl64"):
        special = fcntl_result(ctx)
        if special is not None:
            return special
    if ctx.spec is not None and ctx.spec.effects & FD_RET and 0 <= ret <= 0x7FFFFFFF:
        return annotate_fd(ret, ctx.fd_names)
    return str(ret)


@dataclass(frozen=True, slots=True)
class DecodedEvent:
    ts_ns: int
    pid: int
    tid: int
    nr: int
    name: str
    abi: int
    args_text: str
    result_text: str
    ret: int
    errno_name: str | None
    path: bytes | None  # the first path argument, as captured
    addr: str | None  # the socket address, short form (10.0.0.1:443)
    fd: int | None  # the descriptor the call works on, or the one it returned
    fd_path: bytes | None  # that descriptor's name, when known
    duration_ns: int | None  # None: the call was not timed (EVF_UNTIMED)

    @property
    def call_text(self) -> str:
        """`openat(...) = -1 ENOENT (...)`: compact, for the log and filters."""
        return f"{self.name}({self.args_text}) = {self.result_text}"


def render_line(event: DecodedEvent, multi_process: bool = False) -> str:
    """strace -f -T's line: `[pid  1234] call(args) = result <0.000012>`; the prefix names
    the thread, as strace's does, when several processes are traced."""
    prefix = f"[pid {event.tid:5d}] " if multi_process else ""
    return format_line(f"{event.name}({event.args_text})", event.result_text, prefix=prefix,
                       duration_ns=event.duration_ns, untimed=event.duration_ns is None)


@functools.cache
def _names(host_arch: str, abi: int) -> dict[int, str]:
    return syscall_table(abi_table(host_arch, abi))


def syscall_name(host_arch: str, abi: int, nr: int) -> str:
    """The call's name in its process's ABI; strace's `syscall_0x1c8` for an unknown one."""
    name = _names(host_arch, abi).get(nr)
    return name if name else f"syscall_{nr:#x}"


def decode_event(record: Any, data: bytes, host_arch: str, specs: SpecTable,
                 paths: PathNames | None = None) -> DecodedEvent:
    """One EVENT_DTYPE record (a numpy row or anything indexable by field name)."""
    row = tuple(int(record[k]) for k in _SCALARS)
    return _decode(row, tuple(int(a) for a in record["args"]), data, host_arch, specs, paths)


_SCALARS = ("ts", "pid", "tid", "nr", "ret", "duration_ns", "abi", "fd_path", "flags")


def _decode(row: tuple[int, ...], raw_args: tuple[int, ...], data: bytes, host_arch: str,
            specs: SpecTable, paths: PathNames | None) -> DecodedEvent:
    ts, pid, tid, nr, ret, duration, abi, path_id, flags = row
    args = tuple(a & MASK64 for a in raw_args)
    spec = specs.for_call(abi_table(host_arch, abi), nr)
    name = syscall_name(host_arch, abi, nr)
    fields = _by_arg(parse_fields(data)) if data else {}
    fd, fd_path = _descriptor(spec, args, ret, path_id, paths)
    fd_names = {fd: fd_path} if fd is not None and fd_path else None
    ctx = CallContext(name, args, abi, fields, spec, ret, fd_names)
    err = errno_name(-ret) if -MAX_ERRNO <= ret < 0 else None
    return DecodedEvent(
        ts_ns=ts, pid=pid, tid=tid, nr=nr, name=name, abi=abi,
        args_text=", ".join(call_args(ctx)), result_text=result_text(ctx), ret=ret,
        errno_name=err, path=_first_path(fields), addr=_address(ctx), fd=fd, fd_path=fd_path,
        duration_ns=event_duration(duration, flags))


def decode_events(records: Any, data: Sequence[bytes], host_arch: str, specs: SpecTable,
                  paths: PathNames | None = None) -> list[DecodedEvent]:
    """The records (a numpy EVENT_DTYPE array, or rows indexable by field name), `data`
    aligned with them (b"" or missing where nothing was captured)."""
    if isinstance(records, np.ndarray):
        rows = list(zip(*(records[k].tolist() for k in _SCALARS), strict=True))
        arg_rows = [tuple(a) for a in records["args"].tolist()]
    else:
        rows = [tuple(int(r[k]) for k in _SCALARS) for r in records]
        arg_rows = [tuple(int(a) for a in r["args"]) for r in records]
    return [_decode(row, arg_rows[i], data[i] if i < len(data) else b"", host_arch, specs,
                    paths) for i, row in enumerate(rows)]


def _descriptor(spec: SyscallSpec | None, args: tuple[int, ...], ret: int, path_id: int,
                paths: PathNames | None) -> tuple[int | None, bytes | None]:
    if spec is None:
        return None, None
    fd = args[0] & 0xFFFFFFFF if args else 0
    fd = fd - (1 << 32) if fd & 0x80000000 else fd
    if spec.effects & FD_ARG0 and fd >= 0:  # AT_FDCWD (-100) is no descriptor
        name = paths.name(path_id) if paths is not None and path_id else None
        return fd, name or None
    if spec.effects & (FD_RET | OPENS) and 0 <= ret <= 0x7FFFFFFF:
        return ret, None
    return None, None


def _first_path(fields: Mapping[int, Field]) -> bytes | None:
    for arg in sorted(fields):
        f = fields[arg]
        if f.kind == KIND_PATH and not f.faulted:
            return f.data
    return None


def _address(ctx: CallContext) -> str | None:
    for arg in sorted(ctx.fields):
        f = ctx.fields[arg]
        if f.kind == KIND_SOCKADDR and not f.faulted:
            spec = ctx.spec
            has_len = spec is not None and arg + 1 < len(spec.args) \
                and "*" not in spec.args[arg + 1].type
            return short_address(f.data, ctx.int32(arg + 1) if has_len else None)
    return None
