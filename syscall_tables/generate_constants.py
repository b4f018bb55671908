"""Write syscall_tables/data/constants.json: the names strace prints for flag sets and values
(O_*, AT_*, MAP_*, PROT_*, CLONE_*, SOCK_*, AF_*, MSG_*, F_*, FD_*, IPPROTO_*, R_OK..., signals,
errno names and messages, the kernel's restart codes), read from the kernel's headers and the
Python standard library, never typed in.

    python -m syscall_tables.generate_constants          # (re)write the data file
    python -m syscall_tables.generate_constants --check  # exit 1 if it differs

Sources: the UAPI headers (/usr/include/linux, asm-generic and the arch's asm, where the
values the kernel uses live), the kernel headers tree (tracing.engine.kheaders finds it) for
include/linux/errno.h (ERESTARTSYS and the other codes user space never sees), socket.h
(AF_*, MSG_*), and the standard library for socket types (socket.SOCK_*), access modes
(os.R_OK...) and error messages (os.strerror, what strace prints). Each group keeps the order
strace prints it in: header order, which is value order, except the open flags, whose order
is strace's (src/xlat/open_mode_flags.in: composite flags before their parts). The output is stable
(sorted where order does not matter, fixed indentation), so a diff shows only real changes.
"""

from __future__ import annotations

import argparse
import ast
import errno
import json
import os
import re
import socket
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

DATA_FILE = Path(__file__).resolve().parent / "data" / "constants.json"
UAPI = Path("/usr/include")
ARCH_UAPI = UAPI / "x86_64-linux-gnu"

# strace's print order of the open flags (src/xlat/open_mode_flags.in). Only the order is
# taken from here: every value comes from the headers, and a name they lack is left out.
OPEN_FLAG_ORDER = ("O_CREAT", "O_EXCL", "O_NOCTTY", "O_TRUNC", "O_APPEND", "O_NONBLOCK",
                   "O_SYNC", "__O_SYNC", "O_DSYNC", "O_DIRECT", "O_LARGEFILE", "O_NOFOLLOW",
                   "O_NOATIME", "O_CLOEXEC", "O_PATH", "O_TMPFILE", "__O_TMPFILE",
                   "O_DIRECTORY", "FASYNC")

# The flags faccessat2 accepts (fs/open.c, do_faccessat); their values come from the headers.
FACCESSAT_FLAGS = ("AT_SYMLINK_NOFOLLOW", "AT_EACCESS", "AT_EMPTY_PATH")

_DEFINE = re.compile(r"^\s*#\s*define\s+([A-Za-z_]\w*)[ \t]+(.+?)\s*$")
_ENUM_ITEM = re.compile(r"^\s*([A-Z_][A-Z0-9_]*)\s*=\s*([^,/]+?)\s*,?\s*(?:/[*/].*)?$")
_COMMENT = re.compile(r"/\*.*?\*/|//.*$")
_OCTAL = re.compile(r"\b0([0-7]+)\b")
_SUFFIX = re.compile(r"\b(0x[0-9a-fA-F]+|\d+)[uUlL]+\b")


class Header:
    """The `#define NAME value` lines (and `NAME = value,` enum items) of a set of headers,
    in file order, first definition winning, values evaluated on demand."""

    def __init__(self) -> None:
        self.raw: dict[str, str] = {}
        self.order: list[str] = []

    def read(self, path: Path) -> Header:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            return self
        text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
        for line in text.splitlines():
            m = _DEFINE.match(line) or _ENUM_ITEM.match(line)
            if m and m.group(1) not in self.raw:
                self.raw[m.group(1)] = _COMMENT.sub("", m.group(2)).strip()
                self.order.append(m.group(1))
        return self

    def is_alias(self, name: str) -> bool:
        """A name defined as another name (EWOULDBLOCK EAGAIN): strace prints the other."""
        return re.fullmatch(r"[A-Za-z_]\w*", self.raw.get(name, "")) is not None

    def value(self, name: str, depth: int = 0) -> int | None:
        text = self.raw.get(name)
        if text is None or depth > 20:
            return None
        return _evaluate(text, lambda n: self.value(n, depth + 1))

    def group(self, keep: Callable[[str], bool], aliases: bool = False) -> list[tuple[str, int]]:
        out = []
        for name in self.order:
            if keep(name) and (aliases or not self.is_alias(name)):
                value = self.value(name)
                if value is not None:
                    out.append((name, value))
        return out


def _evaluate(text: str, lookup: Callable[[str], int | None]) -> int | None:
    """A C constant expression of numbers and other names: | & ^ << >> + - ~ ( )."""
    text = _SUFFIX.sub(r"\1", _OCTAL.sub(r"0o\1", text))
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return None
    return _node_value(tree.body, lookup)


_BINARY: dict[type, Callable[[int, int], int]] = {
    ast.BitOr: lambda a, b: a | b, ast.BitAnd: lambda a, b: a & b,
    ast.BitXor: lambda a, b: a ^ b, ast.LShift: lambda a, b: a << b,
    ast.RShift: lambda a, b: a >> b, ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b}


def _node_value(node: ast.expr, lookup: Callable[[str], int | None]) -> int | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    if isinstance(node, ast.Name):
        return lookup(node.id)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.Invert, ast.UAdd)):
        v = _node_value(node.operand, lookup)
        if v is None:
            return None
        return -v if isinstance(node.op, ast.USub) else ~v if isinstance(node.op, ast.Invert) else v
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        a, b = _node_value(node.left, lookup), _node_value(node.right, lookup)
        if a is None or b is None or (isinstance(node.op, ast.LShift) and not 0 <= b < 64):
            return None
        return _BINARY[type(node.op)](a, b)
    return None


def headers(*paths: Path) -> Header:
    h = Header()
    for p in paths:
        h.read(p)
    return h


def kernel_tree() -> Path | None:
    """The kernel headers tree (include/linux/errno.h lives there, not in UAPI)."""
    from tracing.engine.kheaders import find_kernel_headers

    choice = find_kernel_headers()
    for root in (choice.path, *choice.sources):
        if root is not None and (root / "include" / "linux" / "errno.h").is_file():
            return root
    return None


def _prefixed(prefix: str, *, exclude: Iterable[str] = ()) -> Callable[[str], bool]:
    words = tuple(exclude)
    return lambda n: n.startswith(prefix) and not any(w in n for w in words)


def _unique_values(pairs: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """The first name of each value (header order puts the canonical name first)."""
    seen: set[int] = set()
    out = []
    for name, value in pairs:
        if value not in seen:
            seen.add(value)
            out.append((name, value))
    return out


def _open_groups() -> dict[str, list[tuple[str, int]]]:
    fcntl = headers(ARCH_UAPI / "asm" / "fcntl.h", UAPI / "asm-generic" / "fcntl.h",
                    UAPI / "linux" / "fcntl.h")
    values = dict(fcntl.group(lambda n: True, aliases=True))
    return {
        "open_access": [(n, values[n]) for n in ("O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE")
                        if n in values],
        "open_flags": [(n, values[n]) for n in OPEN_FLAG_ORDER if n in values],
        # AT_EACCESS shares AT_REMOVEDIR's bit: it is faccessat's own, strace prints it there
        "at_flags": fcntl.group(_prefixed("AT_", exclude=("AT_FDCWD", "AT_STATX_", "AT_EACCESS",
                                                          "AT_HANDLE_", "AT_RENAME_"))),
        "at_fdcwd": [(n, v) for n, v in fcntl.group(lambda n: n == "AT_FDCWD")],
        "fcntl_cmds": sorted(_unique_values(fcntl.group(
            lambda n: n.startswith("F_") and n not in ("F_LINUX_SPECIFIC_BASE",)
            and not n.startswith(("F_OWNER_", "F_SEAL_", "F_RDLCK", "F_WRLCK", "F_UNLCK",
                                  "F_EXLCK", "F_SHLCK", "F_OK")))), key=lambda p: p[1]),
        "fd_flags": fcntl.group(lambda n: n == "FD_CLOEXEC"),
        "faccessat_flags": sorted(fcntl.group(lambda n: n in FACCESSAT_FLAGS),
                                  key=lambda p: p[1]),
        "statx_sync": fcntl.group(lambda n: n.startswith("AT_STATX_")),
        # Composite masks first (STATX_ALL, STATX_BASIC_STATS), as strace prints them.
        "statx_masks": sorted(headers(UAPI / "linux" / "stat.h").group(
            lambda n: n.startswith("STATX_") and not n.startswith(("STATX_ATTR_", "STATX__"))),
            key=lambda p: (-p[1].bit_count(), p[1])),
    }


def _access_group() -> list[tuple[str, int]]:
    """access(2)'s modes from the standard library (os.R_OK...), in strace's order: highest
    bit first (R_OK|W_OK|X_OK), then F_OK, the name of no bit at all."""
    pairs = [(n, v) for n, v in vars(os).items()
             if re.fullmatch(r"[A-Z]_OK", n) and isinstance(v, int)]
    return sorted(pairs, key=lambda p: -p[1])


def _memory_groups() -> dict[str, list[tuple[str, int]]]:
    mman = headers(ARCH_UAPI / "asm" / "mman.h", UAPI / "linux" / "mman.h",
                   UAPI / "asm-generic" / "mman.h", UAPI / "asm-generic" / "mman-common.h")
    flags = mman.group(_prefixed("MAP_", exclude=("TYPE", "HUGE", "FILE", "UNINITIALIZED")))
    map_type = mman.value("MAP_TYPE") or 0x0F
    return {
        "map_types": [(n, v) for n, v in flags if v and v & map_type == v],
        "map_flags": sorted(((n, v) for n, v in flags if v and not v & map_type),
                            key=lambda p: p[1]),
        "map_type_mask": [("MAP_TYPE", map_type)],
        "prot_flags": sorted(mman.group(_prefixed("PROT_")), key=lambda p: p[1]),
        # clone's low byte (CSIGNAL) is the exit signal: flags are the bits above it;
        # CLONE_CLEAR_SIGHAND and CLONE_INTO_CGROUP are clone3's (above 32 bits).
        "clone_flags": sorted(((n, v) for n, v in headers(UAPI / "linux" / "sched.h").group(
            lambda n: n.startswith("CLONE_") and not n.startswith("CLONE_ARGS_"))
            if v > 0xFF and v < 1 << 32), key=lambda p: p[1]),
    }


def _socket_groups(tree: Path | None) -> dict[str, list[tuple[str, int]]]:
    paths = [tree / "include" / "linux" / "socket.h"] if tree else []
    sock = headers(*paths, ARCH_UAPI / "bits" / "socket.h")
    families = _unique_values(sock.group(lambda n: n.startswith("AF_") and n != "AF_MAX"))
    if not tree:  # glibc names AF_ after PF_: aliases resolved, first of each value kept
        families = _unique_values(sock.group(lambda n: n.startswith("AF_") and n != "AF_MAX",
                                             aliases=True))
    msg = sorted(_unique_values(sock.group(lambda n: n.startswith("MSG_"))),
                 key=lambda p: p[1])
    # glibc's enum __socket_type has them all (SOCK_DCCP, SOCK_PACKET too); the standard
    # library's socket module is the fallback.
    types = headers(ARCH_UAPI / "bits" / "socket_type.h").group(lambda n: n.startswith("SOCK_"))
    if not types:
        types = sorted(((n, int(v)) for n, v in vars(socket).items()
                        if n.startswith("SOCK_") and isinstance(v, int)), key=lambda p: p[1])
    ip = headers(UAPI / "linux" / "in.h", UAPI / "linux" / "in6.h")
    return {
        "address_families": families,
        "msg_flags": [(n, v) for n, v in msg if v > 0],
        "sock_types": sorted(_unique_values([(n, v) for n, v in types
                                             if n not in ("SOCK_CLOEXEC", "SOCK_NONBLOCK")]),
                             key=lambda p: p[1]),
        "sock_type_flags": [(n, v) for n, v in types if n in ("SOCK_CLOEXEC", "SOCK_NONBLOCK")],
        "ip_protocols": _unique_values(ip.group(
            lambda n: n.startswith("IPPROTO_") and n != "IPPROTO_MAX")),
        # The protocols come first in linux/netlink.h; socket option names reuse small
        # numbers later in the file, so the first name of each value is the protocol's.
        "netlink_protocols": _unique_values(headers(UAPI / "linux" / "netlink.h").group(
            lambda n: n.startswith("NETLINK_"))),
    }


def _signal_group() -> list[tuple[str, int]]:
    sig = headers(ARCH_UAPI / "asm" / "signal.h")
    pairs = _unique_values(sig.group(lambda n: re.fullmatch(r"SIG[A-Z0-9]+", n) is not None
                                     and n not in ("SIGRTMAX", "SIGSTKSZ", "SIGUNUSED")))
    return sorted(pairs, key=lambda p: p[1])


def _errno_groups(tree: Path | None) -> dict[str, list[tuple[str, int]]]:
    uapi = headers(ARCH_UAPI / "asm" / "errno.h", UAPI / "asm-generic" / "errno-base.h",
                   UAPI / "asm-generic" / "errno.h")
    names = _unique_values(uapi.group(lambda n: re.fullmatch(r"E[A-Z0-9]+", n) is not None))
    if not names:  # no UAPI headers: the standard library's table
        names = sorted(((n, v) for v, n in errno.errorcode.items()), key=lambda p: p[1])
    kernel = headers(tree / "include" / "linux" / "errno.h") if tree else Header()
    restart = _unique_values(kernel.group(lambda n: re.fullmatch(r"E[A-Z0-9_]+", n) is not None))
    return {"errno": sorted(names, key=lambda p: p[1]),
            "kernel_errno": sorted(restart, key=lambda p: p[1])}


def collect() -> dict[str, list[tuple[str, int]]]:
    tree = kernel_tree()
    groups: dict[str, list[tuple[str, int]]] = {}
    groups.update(_open_groups())
    groups.update(_memory_groups())
    groups.update(_socket_groups(tree))
    groups["signals"] = _signal_group()
    groups["access_modes"] = _access_group()
    groups.update(_errno_groups(tree))
    return groups


def render() -> str:
    groups = collect()
    messages = {str(v): os.strerror(v) for _, v in groups["errno"]}
    doc = {
        "generated_by": "python -m syscall_tables.generate_constants",
        "sources": ["/usr/include/{linux,asm-generic,x86_64-linux-gnu/asm,x86_64-linux-gnu/bits}",
                    "kernel headers include/linux/{errno,socket}.h",
                    "python: os.strerror, os.[FRWX]_OK"
                    " (socket.SOCK_* when glibc's headers are missing)"],
        "groups": {name: [[n, v] for n, v in pairs] for name, pairs in sorted(groups.items())},
        "errno_messages": messages,
    }
    return json.dumps(doc, indent=1) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with the headers instead of writing")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not DATA_FILE.is_file() or DATA_FILE.read_text() != text:
            print(f"{DATA_FILE} differs from this machine's headers", file=sys.stderr)
            return 1
        return 0
    DATA_FILE.write_text(text)
    print(f"wrote {DATA_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
