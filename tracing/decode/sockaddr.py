"""Socket addresses as strace prints them (`{sa_family=AF_INET, sin_port=htons(443),
sin_addr=inet_addr("10.0.0.1")}`, AF_INET6, AF_UNIX, AF_NETLINK, other families raw), and
a short form for tables and filters (`10.0.0.1:443`, `[::1]:443`, `/run/x.sock`).

The bytes come from the traced process (captured by the kernel, at most 128): every length
is checked, a short or bogus one is shown as strace shows it (the family alone, or the raw
`sa_data`), never an error. Layouts follow strace's src/sockaddr.c: a family's fields are
decoded only when the address length covers its structure.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import struct

from tracing.decode.constants import constants, value_name
from tracing.decode.quote import escape, quote

SOCKADDR_STORAGE = 128
FAMILY_SIZE = 2
UNIX_PATH_MAX = 108
IN6_MIN_LEN = 24  # offsetof(struct sockaddr_in6, sin6_scope_id)


def _family_value(name: str, default: int) -> int:
    value = constants().value("address_families", name)
    return default if value is None else value


def _families() -> tuple[int, int, int, int]:
    return (_family_value("AF_UNIX", socket.AF_UNIX), _family_value("AF_INET", socket.AF_INET),
            _family_value("AF_INET6", socket.AF_INET6),
            _family_value("AF_NETLINK", getattr(socket, "AF_NETLINK", 16)))


def format_sockaddr(data: bytes, addrlen: int | None = None) -> str:
    """The address strace prints for `addrlen` bytes (None: as many as captured); never more
    than was captured, whatever the length says."""
    length = min(len(data), SOCKADDR_STORAGE if addrlen is None else addrlen)
    buf = data[:length].ljust(SOCKADDR_STORAGE + 1, b"\0")  # strace zero-fills past addrlen
    family = struct.unpack_from("<H", buf)[0]
    head = "sa_family=" + value_name("address_families", family, "AF_???")
    if length <= FAMILY_SIZE:
        return "{" + head + "}"
    return "{" + head + ", " + _family_fields(family, buf, length) + "}"


def _family_fields(family: int, buf: bytes, length: int) -> str:
    af_unix, af_inet, af_inet6, af_netlink = _families()
    if family == af_unix and length >= FAMILY_SIZE + 1:
        return _unix(buf, length)
    if family == af_inet and length >= 16:
        port, addr = struct.unpack_from(">H4s", buf, 2)
        return f'sin_port=htons({port}), sin_addr=inet_addr("{socket.inet_ntoa(addr)}")'
    if family == af_inet6 and length >= IN6_MIN_LEN:
        return _inet6(buf, length)
    if family == af_netlink and length >= 12:
        return _netlink(buf)
    return "sa_data=" + quote(buf[FAMILY_SIZE:length], None)


def _unix(buf: bytes, length: int) -> str:
    path_len = min(length, FAMILY_SIZE + UNIX_PATH_MAX) - FAMILY_SIZE
    path = buf[FAMILY_SIZE:FAMILY_SIZE + path_len]
    if path[:1] != b"\0":
        return "sun_path=" + quote(path.split(b"\0", 1)[0], None)
    return 'sun_path=@"' + escape(path[1:]) + '"'


def _inet6(buf: bytes, length: int) -> str:
    port, flowinfo, addr = struct.unpack_from(">HI16s", buf, 2)
    text = (f"sin6_port=htons({port}), sin6_flowinfo=htonl({flowinfo}), "
            f'inet_pton(AF_INET6, "{socket.inet_ntop(socket.AF_INET6, addr)}", &sin6_addr)')
    if length <= IN6_MIN_LEN:
        return text
    scope = struct.unpack_from("<I", buf, IN6_MIN_LEN)[0]
    ip = ipaddress.IPv6Address(addr)
    link_local = ip.is_link_local or (ip.is_multicast and addr[1] & 0x0F == 2)
    name = _interface_name(scope) if link_local else None
    shown = f'if_nametoindex("{escape(name.encode())}")' if name else str(scope)
    return f"{text}, sin6_scope_id={shown}"


@functools.lru_cache(maxsize=64)
def _interface_name(index: int) -> str | None:
    try:
        return socket.if_indextoname(index) if index else None
    except (OSError, OverflowError, ValueError):
        return None


def _netlink(buf: bytes) -> str:
    pad, pid, groups = struct.unpack_from("<HII", buf, 2)
    # strace's PRINT_FIELD_0X is C's %#08x: 0 prints as 00000000, 1 as 0x000001.
    shown_groups = f"{groups:#08x}" if groups else "00000000"
    text = f"nl_pid={pid}, nl_groups={shown_groups}"
    return (f"nl_pad={pad:#x}, " + text) if pad else text


def short_address(data: bytes, addrlen: int | None = None) -> str | None:
    """10.0.0.1:443, [::1]:443, /run/x.sock, @abstract; None for other families or a length
    too short to hold the address."""
    length = len(data) if addrlen is None else min(addrlen, SOCKADDR_STORAGE, len(data))
    if length < FAMILY_SIZE + 1:
        return None
    buf = data[:length].ljust(SOCKADDR_STORAGE, b"\0")
    family = struct.unpack_from("<H", buf)[0]
    af_unix, af_inet, af_inet6, _ = _families()
    if family == af_inet and length >= 16:
        port, addr = struct.unpack_from(">H4s", buf, 2)
        return f"{socket.inet_ntoa(addr)}:{port}"
    if family == af_inet6 and length >= IN6_MIN_LEN:
        port, addr = struct.unpack_from(">H4x16s", buf, 2)
        return f"[{socket.inet_ntop(socket.AF_INET6, addr)}]:{port}"
    if family == af_unix:
        path = buf[FAMILY_SIZE:min(length, FAMILY_SIZE + UNIX_PATH_MAX)]
        if path[:1] == b"\0":
            return "@" + escape(path[1:])
        return escape(path.split(b"\0", 1)[0])
    return None
