"""Each syscall's arguments (C type, name, what the kernel should capture) and its effect on
the descriptor table, from the running kernel's tracepoint formats.

`events/syscalls/sys_enter_NAME/format` in tracefs lists every syscall's arguments as the
kernel declares them (`field:const char * filename;`). Argument kinds come from those types
and names only; the effect classes (which calls return, close or duplicate descriptors) come
from the issue's list of such calls, since no type says "returns a descriptor". When tracefs
cannot be read (no syscall tracepoints, not root, a saved session), the checked-in
`syscall_tables/data/args.json` is used, written from a kernel's formats by
`python -m syscall_tables.generate_args`.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

# The ABI codes and tables live in the pure syscall_tables package; re-exported here, where
# the decoders and the engine have always taken them from.
from syscall_tables import ABI_COMPAT as ABI_COMPAT
from syscall_tables import ABI_NATIVE as ABI_NATIVE
from syscall_tables import ABI_TABLES as ABI_TABLES
from syscall_tables import ABI_X32 as ABI_X32
from syscall_tables import abi_table as abi_table
from syscall_tables import table as syscall_table
from tracing.model.captures import (
    KIND_ARGV,
    KIND_BUF,
    KIND_NONE,
    KIND_PATH,
    KIND_SOCKADDR,
    KIND_STR,
)

# Effect bits (the C has the same values: bpf/syscalls.bpf.c EFFECT_*).
FD_ARG0 = 1 << 0  # args[0] is a descriptor
IO_READ = 1 << 1  # reads data through args[0]
IO_WRITE = 1 << 2  # writes data through args[0]
OPENS = 1 << 3  # opens a path: success returns a descriptor for it
FD_RET = 1 << 4  # a success returns a new descriptor
FD_CLOSE = 1 << 5  # closes args[0]
FD_CLOSE_RANGE = 1 << 6  # closes args[0]..args[1]
FD_DUP_TO = 1 << 7  # args[1] becomes a copy of args[0]
FD_PAIR = 1 << 8  # writes two new descriptors to an int[2] (FdSpec.pair_arg)
FD_FCNTL = 1 << 9  # F_DUPFD and F_DUPFD_CLOEXEC return a new descriptor
NAMES_SOCKET = 1 << 10  # connect, bind, accept: gives a socket its endpoint
EXEC = 1 << 11  # execve, execveat: argv captured at entry
BUF_ARG1 = 1 << 12  # args[1] is a data buffer (read's, write's): its first bytes captured
BUF_AT_EXIT = 1 << 13  # that buffer is filled by the call (capture ret bytes at exit)

# The calls the issue names for the descriptor table, by what they do.
_EFFECTS_BY_NAME: dict[str, int] = {
    "open": OPENS | FD_RET, "openat": OPENS | FD_RET, "openat2": OPENS | FD_RET,
    "creat": OPENS | FD_RET, "open_by_handle_at": FD_RET,
    "socket": FD_RET, "accept": FD_RET | NAMES_SOCKET, "accept4": FD_RET | NAMES_SOCKET,
    "dup": FD_RET, "dup2": FD_DUP_TO, "dup3": FD_DUP_TO,
    "pipe": FD_PAIR, "pipe2": FD_PAIR, "socketpair": FD_PAIR,
    "fcntl": FD_FCNTL, "fcntl64": FD_FCNTL,
    "close": FD_CLOSE, "close_range": FD_CLOSE_RANGE,
    "connect": NAMES_SOCKET, "bind": NAMES_SOCKET,
    "execve": EXEC, "execveat": EXEC,
    # Descriptors with no path: named after the call in the table (strace -y shows
    # anon_inode:[eventfd] for these).
    "eventfd": FD_RET, "eventfd2": FD_RET, "epoll_create": FD_RET, "epoll_create1": FD_RET,
    "signalfd": FD_RET, "signalfd4": FD_RET, "timerfd_create": FD_RET, "memfd_create": FD_RET,
    "inotify_init": FD_RET, "inotify_init1": FD_RET, "pidfd_open": FD_RET,
    "fanotify_init": FD_RET, "userfaultfd": FD_RET, "perf_event_open": FD_RET,
    "io_uring_setup": FD_RET, "memfd_secret": FD_RET, "pidfd_getfd": FD_RET,
    "fsopen": FD_RET, "fsmount": FD_RET, "open_tree": FD_RET, "fspick": FD_RET,
}
_READ_PREFIXES = ("read", "pread", "recv")
_WRITE_PREFIXES = ("write", "pwrite", "send")
_FD_NAMES = frozenset({"fd", "ufd", "dfd", "fildes", "oldfd", "fd_in", "fd_out", "out_fd",
                       "epfd", "sockfd"})
_PATH_WORDS = ("name", "path", "file", "dir", "root", "special", "library", "target")
# The argument that carries O_CLOEXEC / SOCK_CLOEXEC for calls returning descriptors.
_CLOEXEC_ARG_NAMES = ("flags", "type", "oflag")

FORMAT_FIELD = re.compile(r"^\s*field:(?P<decl>[^;]+);\s*offset:\d+;\s*size:\d+;")
SYSCALL_FORMATS = ("events/syscalls",)
TRACEFS_ROOTS = (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))


@dataclass(frozen=True, slots=True)
class Arg:
    type: str  # the C type as the kernel declares it: "const char *"
    name: str  # "filename"
    kind: int  # captures.KIND_*: what the kernel copies for it (KIND_NONE: a number)


@dataclass(frozen=True, slots=True)
class SyscallSpec:
    name: str
    args: tuple[Arg, ...]
    effects: int = 0
    cloexec_arg: int = -1  # the argument holding O_CLOEXEC / SOCK_CLOEXEC, -1: none
    pair_arg: int = -1  # FD_PAIR: the argument pointing at the int[2]

    @property
    def kinds(self) -> int:
        """The argument kinds packed for the kernel: 4 bits per argument, arg i at bit 4i."""
        packed = 0
        for i, arg in enumerate(self.args[:6]):
            packed |= (arg.kind & 0xF) << (4 * i)
        return packed


def parse_format(text: str) -> list[tuple[str, str]]:
    """The (type, name) of each syscall argument in a sys_enter tracepoint's format text
    (the common_* fields and __syscall_nr left out)."""
    args = []
    for line in text.splitlines():
        m = FORMAT_FIELD.match(line)
        if not m:
            continue
        decl = m.group("decl").strip()
        name_match = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\s*(\[[^\]]*\])?$", decl)
        if not name_match:
            continue
        name = name_match.group(1)
        if name.startswith("common_") or name == "__syscall_nr":
            continue
        args.append((decl[: name_match.start()].strip(), name))
    return args


def arg_kind(ctype: str, name: str) -> int:
    """What the kernel should capture for an argument, from its declared type and name."""
    t = " ".join(ctype.replace("__user", "").split())
    if "sockaddr *" in t or t.endswith("sockaddr*"):
        return KIND_SOCKADDR
    if re.search(r"char \*\s*const \*$|char \*\*$", t):
        return KIND_ARGV if name in ("argv", "argp") else KIND_NONE
    if re.fullmatch(r"(const )?char \*", t):
        if name in ("buf", "ubuf"):
            return KIND_BUF
        if name != "name" and any(w in name for w in _PATH_WORDS):
            return KIND_PATH
        return KIND_STR
    return KIND_NONE


def _effects(name: str, args: list[tuple[str, str]]) -> int:
    effects = _EFFECTS_BY_NAME.get(name, 0)
    if args and args[0][1] in _FD_NAMES and "*" not in args[0][0]:
        effects |= FD_ARG0
        if name.startswith(_READ_PREFIXES):
            effects |= IO_READ
        elif name.startswith(_WRITE_PREFIXES):
            effects |= IO_WRITE
    if len(args) > 2 and args[1][1] in ("buf", "ubuf") and args[2][1] in ("count", "len", "size"):
        effects |= BUF_ARG1
        if effects & IO_READ:
            effects |= BUF_AT_EXIT
    return effects


def make_spec(name: str, args: list[tuple[str, str]]) -> SyscallSpec:
    effects = _effects(name, args)
    kinds = []
    for ctype, arg_name in args:
        kind = arg_kind(ctype, arg_name)
        if kind == KIND_BUF and not effects & BUF_ARG1:
            kind = KIND_NONE  # a buffer without a length next to it: nothing to bound it
        kinds.append(Arg(ctype, arg_name, kind))
    names = [a for _, a in args]
    cloexec = next((i for i, a in enumerate(names) if a in _CLOEXEC_ARG_NAMES), -1)
    pair = -1
    if effects & FD_PAIR:
        pair = next((i for i, (t, _) in enumerate(args) if "int *" in t), -1)
    return SyscallSpec(name, tuple(kinds), effects,
                       cloexec if effects & (FD_RET | FD_PAIR | FD_DUP_TO) else -1, pair)


def read_tracefs_formats(roots: Iterable[Path] = TRACEFS_ROOTS) -> dict[str, list[tuple[str, str]]]:
    """name -> [(type, name)] for every syscall tracepoint of the running kernel ({} when
    none can be read)."""
    for root in roots:
        folder = root / "events" / "syscalls"
        try:
            entries = sorted(folder.iterdir())
        except OSError:
            continue
        found: dict[str, list[tuple[str, str]]] = {}
        for entry in entries:
            if not entry.name.startswith("sys_enter_"):
                continue
            try:
                text = (entry / "format").read_text()
            except OSError:
                continue
            found[entry.name.removeprefix("sys_enter_")] = parse_format(text)
        if found:
            return found
    return {}


@functools.cache
def checked_in_formats() -> dict[str, list[tuple[str, str]]]:
    text = resources.files("syscall_tables").joinpath("data", "args.json").read_text("utf-8")
    data = json.loads(text)["syscalls"]
    return {name: [(t, n) for t, n in args] for name, args in data.items()}


class SpecTable:
    """The argument specs of every syscall, looked up by a process's ABI and number."""

    def __init__(self, formats: Mapping[str, list[tuple[str, str]]], source: str) -> None:
        self.source = source  # "tracefs" or "args.json": where the formats came from
        self._by_name = {name: make_spec(name, args) for name, args in formats.items()}
        self._cache: dict[tuple[str, int], SyscallSpec | None] = {}

    def by_name(self, name: str) -> SyscallSpec | None:
        spec = self._by_name.get(name)
        if spec is not None:
            return spec
        # Names only a compat table has: stat64 -> stat, _llseek -> llseek, oldstat -> stat,
        # and stat -> newstat (the x86_64 kernel's name for the same call).
        base = name.lstrip("_").removeprefix("old").removesuffix("64")
        for alias in (name.removesuffix("64"), name.lstrip("_"), name.removeprefix("old"),
                      base, "new" + base):
            if alias != name and alias in self._by_name:
                found = self._by_name[alias]
                return SyscallSpec(name, found.args, found.effects, found.cloexec_arg,
                                   found.pair_arg)
        return None

    def for_call(self, abi: str, nr: int) -> SyscallSpec | None:
        key = (abi, nr)
        if key not in self._cache:
            name = syscall_table(abi).get(nr)
            self._cache[key] = self.by_name(name) if name else None
        return self._cache[key]

    def names(self) -> list[str]:
        return sorted(self._by_name)


@functools.cache
def load_specs() -> SpecTable:
    """The running kernel's specs when tracefs can be read, else the checked-in ones."""
    formats = read_tracefs_formats()
    if formats:
        return SpecTable(formats, "tracefs")
    return SpecTable(checked_in_formats(), "args.json")


def checked_in_specs() -> SpecTable:
    return SpecTable(checked_in_formats(), "args.json")


