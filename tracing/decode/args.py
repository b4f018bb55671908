"""One syscall argument as strace prints it, from its register value, its declared C type and
name (tracing.decode.argspec) and what the kernel captured for it (tracing.model.captures).

Numbers follow their type: pointers in hex (`NULL` for 0), signed and unsigned integers in
decimal at the type's width (32-bit `int` even in a 64-bit register; `long` is 32 bits for an
i386 process), modes in octal, descriptors with their name (`3</etc/passwd>`) and a directory
descriptor of AT_FDCWD by that name. Captured strings, paths, argument vectors, buffers and
socket addresses are quoted; a capture that faulted shows the raw pointer, as strace does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from tracing.decode.argspec import ABI_COMPAT, BUF_AT_EXIT, Arg, SyscallSpec
from tracing.decode.constants import constants, signal_name
from tracing.decode.fdnames import annotate_fd
from tracing.decode.quote import STRING_BOUND, quote, quote_path
from tracing.decode.sockaddr import format_sockaddr
from tracing.model.captures import (
    COUNT_MAX,
    KIND_ARGV,
    KIND_BUF,
    KIND_FDPAIR,
    KIND_PATH,
    KIND_SOCKADDR,
    KIND_STR,
    STATUS_FAULT,
    STATUS_TRUNCATED,
    Field,
    argv_strings,
    count_value,
    fd_pair,
)

MASK32 = 0xFFFFFFFF
_FD_NAME = re.compile(r"\w*fd|fd_\w+|fildes")
# Addresses the kernel declares as unsigned long (mmap's addr, mprotect's start, brk):
# strace prints them as pointers.
_ADDRESS_NAME = re.compile(r"\w*addr|start|brk|newsp|tls")
_UNSIGNED = re.compile(r"\bunsigned\b|\bsize_t\b|\b__?u(8|16|32|64)\b|\buid_t\b|\bgid_t\b|"
                       r"\bumode_t\b|\bqid_t\b|\baio_context_t\b|\bcap_user")
_WORD = re.compile(r"\blong\b|\bsize_t\b|\bssize_t\b|\boff_t\b|\bloff_t\b|\b__?[us]64\b|"
                   r"\baio_context_t\b")


@dataclass
class CallContext:
    """What a call's decoder reads: registers, captures, the spec, descriptor names."""

    name: str
    args: tuple[int, ...]
    abi: int = 0
    fields: Mapping[int, Field] = field(default_factory=dict)
    spec: SyscallSpec | None = None
    ret: int = 0
    fd_names: Mapping[int, str | bytes] | None = None

    @property
    def word_bits(self) -> int:
        return 32 if self.abi == ABI_COMPAT else 64

    @property
    def failed(self) -> bool:
        return -4096 < self.ret < 0

    def raw(self, i: int) -> int:
        return self.args[i] if i < len(self.args) else 0

    def int32(self, i: int) -> int:
        v = self.raw(i) & MASK32
        return v - (1 << 32) if v & 0x80000000 else v

    def arg_named(self, *names: str) -> int | None:
        if self.spec is None:
            return None
        return next((i for i, a in enumerate(self.spec.args) if a.name in names), None)


def pointer(value: int) -> str:
    return "NULL" if value == 0 else f"{value:#x}"


def octal_mode(value: int) -> str:
    """strace's %#03o: 0644, 000, 007."""
    text = f"0{value:o}" if value else "0"
    return text.rjust(3, "0")


def integer(ctx: CallContext, i: int, ctype: str) -> str:
    bits = ctx.word_bits if _WORD.search(ctype) else 32
    value = ctx.raw(i) & ((1 << bits) - 1)
    if not _UNSIGNED.search(ctype) and value >> (bits - 1):
        value -= 1 << bits
    return str(value)


def fd_text(ctx: CallContext, i: int) -> str:
    return annotate_fd(ctx.int32(i), ctx.fd_names)


def dirfd_text(ctx: CallContext, i: int) -> str:
    fd = ctx.int32(i)
    fdcwd = constants().value("at_fdcwd", "AT_FDCWD")
    return "AT_FDCWD" if fdcwd is not None and fd == fdcwd else annotate_fd(fd, ctx.fd_names)


def path_text(ctx: CallContext, i: int) -> str:
    f = ctx.fields.get(i)
    if f is None or f.faulted or f.kind != KIND_PATH:
        return pointer(ctx.raw(i))
    return quote_path(f.data, truncated=f.truncated)


def string_text(ctx: CallContext, i: int) -> str:
    f = ctx.fields.get(i)
    if f is None or f.faulted:
        return pointer(ctx.raw(i))
    return quote(f.data, STRING_BOUND, more=f.truncated)


def argv_text(ctx: CallContext, i: int) -> str:
    """["x", "a"]: each string cut at 32 like strace's, `...` when more were passed."""
    f = ctx.fields.get(i)
    if f is None or f.faulted or f.kind != KIND_ARGV:
        return pointer(ctx.raw(i))
    items = [quote(s, STRING_BOUND) for s in argv_strings(f)]
    if f.truncated:
        items.append("...")
    return "[" + ", ".join(items) + "]"


def env_count_text(ctx: CallContext, i: int) -> str:
    """execve's environment as strace shows it by default: the pointer and how many variables
    (`0x7ffd1234 /* 30 vars */`, `/* 1 var */`, `/* 2 vars, unterminated */` when a pointer
    after them could not be read). NULL, or a vector not even its first pointer of which
    could be read, is the pointer alone. Past the kernel's bound: `/* >4096 vars */`."""
    shown = pointer(ctx.raw(i) & ((1 << ctx.word_bits) - 1))
    f = ctx.fields.get(i)
    n = count_value(f) if f is not None and ctx.raw(i) else None
    if f is None or n is None or (f.status == STATUS_FAULT and n == 0):
        return shown
    if f.status == STATUS_TRUNCATED:
        return f"{shown} /* >{COUNT_MAX} vars */"
    unterminated = ", unterminated" if f.status == STATUS_FAULT else ""
    return f"{shown} /* {n} var{'' if n == 1 else 's'}{unterminated} */"


def buffer_text(ctx: CallContext, i: int, length: int) -> str:
    """A data buffer of `length` bytes (write's count, read's result): its first bytes
    quoted, `...` after when there were more than strace's 32."""
    f = ctx.fields.get(i)
    if f is None or f.faulted or f.kind != KIND_BUF or length < 0:
        return pointer(ctx.raw(i))
    shown = f.data[:min(length, STRING_BOUND)]
    return quote(shown, None, more=length > len(shown))


def sockaddr_text(ctx: CallContext, i: int, addrlen: int | None) -> str:
    f = ctx.fields.get(i)
    if ctx.raw(i) == 0:
        return "NULL"
    if f is None or f.faulted or f.kind != KIND_SOCKADDR or len(f.data) < 2 \
            or (addrlen is not None and addrlen < 2):
        return pointer(ctx.raw(i))
    return format_sockaddr(f.data, addrlen)


def fd_pair_text(ctx: CallContext, i: int) -> str:
    f = ctx.fields.get(i)
    pair = fd_pair(f) if f is not None and f.kind == KIND_FDPAIR and not ctx.failed else None
    if pair is None:
        return pointer(ctx.raw(i))
    return "[" + ", ".join(annotate_fd(fd, ctx.fd_names) for fd in pair) + "]"


def generic(ctx: CallContext, i: int, arg: Arg) -> str:
    """An argument no call-specific rule covers, by what was captured and its type."""
    kind = arg.kind
    if kind == KIND_PATH:
        return path_text(ctx, i)
    if kind == KIND_STR:
        return string_text(ctx, i)
    if kind == KIND_ARGV:
        return argv_text(ctx, i)
    if kind == KIND_SOCKADDR:
        return sockaddr_text(ctx, i, _length_after(ctx, i))
    if kind == KIND_BUF:
        return buffer_text(ctx, i, _buffer_length(ctx, i))
    return number(ctx, i, arg)


def number(ctx: CallContext, i: int, arg: Arg) -> str:
    """An argument that is a plain register value."""
    if "*" in arg.type or _ADDRESS_NAME.fullmatch(arg.name):
        return pointer(ctx.raw(i) & ((1 << ctx.word_bits) - 1))
    if "dfd" in arg.name:
        return dirfd_text(ctx, i)
    if _FD_NAME.fullmatch(arg.name):
        return fd_text(ctx, i)
    if arg.name == "sig":
        return signal_name(ctx.int32(i))
    if "umode_t" in arg.type:
        return octal_mode(ctx.raw(i) & MASK32)
    return integer(ctx, i, arg.type)


def _length_after(ctx: CallContext, i: int) -> int | None:
    """A sockaddr's length: the next argument when it is a number (connect's addrlen)."""
    spec = ctx.spec
    if spec is None or i + 1 >= len(spec.args) or "*" in spec.args[i + 1].type:
        return None
    return ctx.int32(i + 1)


def _buffer_length(ctx: CallContext, i: int) -> int:
    """write's count; read's result (what the call filled)."""
    if ctx.spec is not None and ctx.spec.effects & BUF_AT_EXIT:
        return -1 if ctx.failed else ctx.ret
    return ctx.raw(i + 1) & ((1 << ctx.word_bits) - 1)
