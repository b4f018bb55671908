"""The calls strace decodes in its own way: open flags and a mode only with O_CREAT, mmap's
PROT_ and MAP_ sets, socket's family and type, fcntl's command and what its argument means,
clone's named fields, signals, descriptor pairs, *at flags.

Each rule is keyed by the argument's name as the kernel's tracepoint format declares it
(tracing.decode.argspec), so a call's arguments are printed in the kernel's order and count;
an argument without a rule is printed by its kind and type (tracing.decode.args.generic).
A rule may return None to leave the argument out, as strace does (open's mode without
O_CREAT, fcntl's argument for F_GETFD).
"""

from __future__ import annotations

from collections.abc import Callable

from tracing.decode.args import (
    MASK32,
    CallContext,
    env_count_text,
    fd_pair_text,
    fd_text,
    generic,
    octal_mode,
    pointer,
    sockaddr_text,
)
from tracing.decode.constants import (
    constants,
    flag_names,
    flag_parts,
    hex_value,
    open_flags,
    signal_name,
    value_name,
)

ArgRule = Callable[[CallContext, int], "str | None"]

PAGE_SHIFT = 12  # mmap2's offset is in 4096-byte pages on every ABI that has it


def _open_flags(ctx: CallContext, i: int) -> str:
    return open_flags(ctx.raw(i))


def _creates(ctx: CallContext) -> bool:
    i = ctx.arg_named("flags")
    if i is None:
        return True  # creat(): always a mode
    creat = constants().value("open_flags", "O_CREAT") or 0
    tmpfile = constants().value("open_flags", "__O_TMPFILE") or 0
    return bool(ctx.raw(i) & (creat | tmpfile))


def _mode_if_created(ctx: CallContext, i: int) -> str | None:
    return octal_mode(ctx.raw(i) & MASK32) if _creates(ctx) else None


def _cloexec_flags(ctx: CallContext, i: int) -> str:
    """dup3's and pipe2's flags: open flags without an access mode."""
    value = ctx.raw(i) & MASK32
    if not value:
        return "0"
    parts, rest = flag_parts(constants().group("open_flags"), value)
    return "|".join([*parts, *([hex_value(rest)] if rest else [])])


def _at_flags(ctx: CallContext, i: int) -> str:
    return flag_names("at_flags", ctx.raw(i) & MASK32)


def _statx_flags(ctx: CallContext, i: int) -> str:
    """The sync type by value (AT_STATX_SYNC_AS_STAT is 0), then the AT_ flags."""
    value = ctx.raw(i) & MASK32
    mask = constants().value("statx_sync", "AT_STATX_SYNC_TYPE") or 0
    sync = value_name("statx_sync", value & mask, "AT_STATX_???")
    rest = value & ~mask
    return sync if not rest else sync + "|" + flag_names("at_flags", rest)


def _statx_mask(ctx: CallContext, i: int) -> str:
    return flag_names("statx_masks", ctx.raw(i) & MASK32)


def _access_mode(ctx: CallContext, i: int) -> str:
    """access's mode: R_OK|W_OK, F_OK for none (strace's access.c)."""
    return flag_names("access_modes", ctx.raw(i) & MASK32, unknown="?_OK")


def _faccessat_flags(ctx: CallContext, i: int) -> str:
    """faccessat2's flags: AT_EACCESS is its own (other calls' AT_REMOVEDIR has the bit)."""
    return flag_names("faccessat_flags", ctx.raw(i) & MASK32, unknown="AT_???")


def _prot(ctx: CallContext, i: int) -> str:
    return flag_names("prot_flags", ctx.raw(i) & MASK32)


def _mmap_flags(ctx: CallContext, i: int) -> str:
    """The mapping type by value (MAP_PRIVATE), then the flags (strace's print_mmap_flags)."""
    value = ctx.raw(i) & MASK32
    mask = constants().value("map_type_mask", "MAP_TYPE") or 0x0F
    kind = value_name("map_types", value & mask, "MAP_???")
    rest = value & ~mask
    return kind if not rest else kind + "|" + flag_names("map_flags", rest)


def _mmap_offset(ctx: CallContext, i: int) -> str:
    value = ctx.raw(i) & ((1 << ctx.word_bits) - 1)
    if ctx.name == "mmap2":
        value <<= PAGE_SHIFT
    return hex_value(value)


def _family(ctx: CallContext, i: int) -> str:
    return value_name("address_families", ctx.int32(i) & 0xFFFF, "AF_???") \
        if 0 <= ctx.int32(i) <= 0xFFFF else str(ctx.int32(i))


def _sock_type(ctx: CallContext, i: int) -> str:
    value = ctx.raw(i) & MASK32
    kind = value_name("sock_types", value & 0xF, "SOCK_???")
    parts, rest = flag_parts(constants().group("sock_type_flags"), value & ~0xF)
    return "|".join([kind, *parts, *([hex_value(rest)] if rest else [])])


def _sock_flags(ctx: CallContext, i: int) -> str:
    return flag_names("sock_type_flags", ctx.raw(i) & MASK32)


def _protocol(ctx: CallContext, i: int) -> str:
    family = ctx.int32(0)
    inet = {constants().value("address_families", n) for n in ("AF_INET", "AF_INET6")}
    proto = ctx.int32(i)
    name = None
    if family in inet:
        name = constants().name("ip_protocols", proto)
    elif family == constants().value("address_families", "AF_NETLINK"):
        name = constants().name("netlink_protocols", proto)
    return name or str(proto)


def _msg_flags(ctx: CallContext, i: int) -> str:
    return flag_names("msg_flags", ctx.raw(i) & MASK32)


def _addrlen_pointer(ctx: CallContext, i: int) -> str:
    """accept's int *addrlen: strace shows the value the kernel wrote, [16]."""
    f = ctx.fields.get(i - 1)
    if ctx.raw(i) == 0 or f is None or f.faulted or ctx.failed:
        return pointer(ctx.raw(i))
    return f"[{len(f.data)}]"


def _accepted_addr(ctx: CallContext, i: int) -> str:
    return sockaddr_text(ctx, i, None) if not ctx.failed else pointer(ctx.raw(i))


_OPEN: dict[str, ArgRule] = {"flags": _open_flags, "mode": _mode_if_created}
_MMAP: dict[str, ArgRule] = {"prot": _prot, "flags": _mmap_flags, "off": _mmap_offset,
                             "offset": _mmap_offset, "pgoff": _mmap_offset}
_SOCKET: dict[str, ArgRule] = {"family": _family, "type": _sock_type, "protocol": _protocol,
                               "usockvec": fd_pair_text}
_ACCEPT: dict[str, ArgRule] = {"upeer_sockaddr": _accepted_addr,
                               "upeer_addrlen": _addrlen_pointer, "flags": _sock_flags}
_PIPE: dict[str, ArgRule] = {"fildes": fd_pair_text, "flags": _cloexec_flags}

RULES: dict[str, dict[str, ArgRule]] = {
    "open": _OPEN, "openat": _OPEN, "creat": _OPEN,
    "mmap": _MMAP, "mmap2": _MMAP, "mprotect": {"prot": _prot}, "pkey_mprotect": {"prot": _prot},
    "socket": _SOCKET, "socketpair": _SOCKET, "accept": _ACCEPT, "accept4": _ACCEPT,
    "pipe": _PIPE, "pipe2": _PIPE, "dup3": {"flags": _cloexec_flags},
    "statx": {"flags": _statx_flags, "mask": _statx_mask},
    "execve": {"envp": env_count_text}, "execveat": {"envp": env_count_text},
    "access": {"mode": _access_mode}, "faccessat": {"mode": _access_mode},
    "faccessat2": {"mode": _access_mode, "flags": _faccessat_flags},
}
# Calls that return an address: strace prints the result in hex.
HEX_RESULT = frozenset({"mmap", "mmap2", "brk", "mremap", "shmat"})
# A directory descriptor's flags argument that is not AT_* (open's are O_*, renameat2's
# RENAME_*).
_NOT_AT_FLAGS = frozenset({"openat", "openat2", "renameat2", "fanotify_mark",
                           "open_tree", "move_mount", "fsmount", "mount_setattr"})


def rule_for(ctx: CallContext, i: int) -> ArgRule | None:
    spec = ctx.spec
    if spec is None:
        return None
    name = spec.args[i].name
    rules = RULES.get(ctx.name)
    if rules is not None and name in rules:
        return rules[name]
    if ctx.name.startswith(("send", "recv")) and name == "flags":
        return _msg_flags
    if name in ("flag", "flags") and ctx.name not in _NOT_AT_FLAGS \
            and any("dfd" in a.name for a in spec.args):
        return _at_flags
    return None


def call_args(ctx: CallContext) -> list[str]:
    """The argument texts of a call, in the kernel's order; clone and fcntl have their own."""
    special = _SPECIAL.get(ctx.name)
    if special is not None:
        return special(ctx)
    if ctx.spec is None:  # no format known: every register, as strace's printargs
        return [hex_value(a) for a in ctx.args]
    out = []
    for i, arg in enumerate(ctx.spec.args):
        rule = rule_for(ctx, i)
        text = rule(ctx, i) if rule is not None else generic(ctx, i, arg)
        if text is not None:
            out.append(text)
    return out


def _fcntl(ctx: CallContext) -> list[str]:
    cmd = ctx.int32(1)
    name = constants().name("fcntl_cmds", cmd)
    out = [fd_text(ctx, 0), name if name is not None else hex_value(cmd & MASK32)]
    if name is None or _fcntl_takes_no_arg(name):
        return out if name is not None else [*out, hex_value(ctx.raw(2))]
    value = ctx.raw(2)
    if name == "F_SETFD":
        out.append(flag_names("fd_flags", value & MASK32))
    elif name == "F_SETFL":
        out.append(open_flags(value))
    elif name == "F_SETSIG":
        out.append(signal_name(ctx.int32(2)))
    elif "LK" in name or name.endswith(("_EX", "_UIDS")):
        out.append(pointer(value))  # struct flock and friends: not decoded, the pointer
    else:
        out.append(str(ctx.int32(2)))
    return out


def _fcntl_takes_no_arg(name: str) -> bool:
    return name.startswith("F_GET") and "LK" not in name and not name.endswith(("_EX", "_UIDS"))


def fcntl_result(ctx: CallContext) -> str | None:
    """F_GETFD's and F_GETFL's results name their flags: `= 0x8002 (flags O_RDWR|...)`."""
    cmd = constants().name("fcntl_cmds", ctx.int32(1))
    if ctx.failed or cmd not in ("F_GETFD", "F_GETFL"):
        return None
    if cmd == "F_GETFD":
        return None if ctx.ret == 0 else \
            f"{hex_value(ctx.ret)} (flags {flag_names('fd_flags', ctx.ret)})"
    return f"{hex_value(ctx.ret)} (flags {open_flags(ctx.ret)})"


def _clone(ctx: CallContext) -> list[str]:
    """clone(child_stack=..., flags=CLONE_...|SIGCHLD, ...) with strace's field names; the
    register order differs on i386 (tls before the child's tid pointer)."""
    flags = ctx.raw(0) & ((1 << ctx.word_bits) - 1)
    sig, bits = flags & 0xFF, flags & ~0xFF
    ptid, ctid, tls = (2, 4, 3) if ctx.abi == 1 else (2, 3, 4)
    shown = signal_name(sig) if sig else ""
    if bits:
        shown = "|".join(p for p in (flag_names("clone_flags", bits), shown) if p)
    out = [f"child_stack={pointer(ctx.raw(1))}", f"flags={shown or '0'}"]
    named = {n: constants().value("clone_flags", n) or 0 for n in (
        "CLONE_PARENT_SETTID", "CLONE_PIDFD", "CLONE_SETTLS", "CLONE_CHILD_SETTID",
        "CLONE_CHILD_CLEARTID")}
    if bits & (named["CLONE_PARENT_SETTID"] | named["CLONE_PIDFD"]):
        out.append(f"parent_tid={pointer(ctx.raw(ptid))}")
    if bits & named["CLONE_SETTLS"]:
        out.append(f"tls={pointer(ctx.raw(tls))}")
    if bits & (named["CLONE_CHILD_SETTID"] | named["CLONE_CHILD_CLEARTID"]):
        out.append(f"child_tidptr={pointer(ctx.raw(ctid))}")
    return out


_SPECIAL: dict[str, Callable[[CallContext], list[str]]] = {
    "fcntl": _fcntl, "fcntl64": _fcntl, "clone": _clone,
}
