"""Socket addresses as strace prints them (src/sockaddr.c), bogus lengths included, and the
short form for tables and filters."""

from __future__ import annotations

import socket
import struct

import pytest

from tracing.decode.sockaddr import format_sockaddr, short_address


def inet(addr: str, port: int) -> bytes:
    return struct.pack("<H", socket.AF_INET) + struct.pack(">H", port) \
        + socket.inet_aton(addr) + bytes(8)


def inet6(addr: str, port: int, flow: int = 0, scope: int = 0) -> bytes:
    return struct.pack("<H", socket.AF_INET6) + struct.pack(">HI", port, flow) \
        + socket.inet_pton(socket.AF_INET6, addr) + struct.pack("<I", scope)


def unix(path: bytes) -> bytes:
    return struct.pack("<H", socket.AF_UNIX) + path


def test_inet() -> None:
    assert format_sockaddr(inet("10.0.0.1", 443), 16) == \
        '{sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("10.0.0.1")}'
    assert short_address(inet("10.0.0.1", 443), 16) == "10.0.0.1:443"


def test_inet6() -> None:
    assert format_sockaddr(inet6("::1", 443), 28) == (
        "{sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), "
        'inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}')
    assert format_sockaddr(inet6("2001:db8::5", 80, flow=7), 24) == (
        "{sa_family=AF_INET6, sin6_port=htons(80), sin6_flowinfo=htonl(7), "
        'inet_pton(AF_INET6, "2001:db8::5", &sin6_addr)}')
    assert short_address(inet6("::1", 443), 28) == "[::1]:443"


def test_link_local_scope_names_the_interface() -> None:
    name = socket.if_indextoname(1)
    assert format_sockaddr(inet6("fe80::1", 22, scope=1), 28).endswith(
        f'sin6_scope_id=if_nametoindex("{name}")}}')
    assert format_sockaddr(inet6("fe80::1", 22, scope=99999), 28).endswith(
        "sin6_scope_id=99999}")


def test_unix_paths() -> None:
    assert format_sockaddr(unix(b"/run/x.sock".ljust(108, b"\0")), 110) == \
        '{sa_family=AF_UNIX, sun_path="/run/x.sock"}'
    assert format_sockaddr(unix(b"/run/x.sock"), 13) == \
        '{sa_family=AF_UNIX, sun_path="/run/x.sock"}'
    assert format_sockaddr(unix(b'/r"\n'), 6) == '{sa_family=AF_UNIX, sun_path="/r\\"\\n"}'
    assert format_sockaddr(unix(b"\0abs"), 6) == '{sa_family=AF_UNIX, sun_path=@"abs"}'
    assert format_sockaddr(unix(b"\0a\0b"), 6) == '{sa_family=AF_UNIX, sun_path=@"a\\0b"}'
    assert short_address(unix(b"/run/x.sock"), 13) == "/run/x.sock"
    assert short_address(unix(b"\0abs"), 6) == "@abs"


def test_netlink() -> None:
    raw = struct.pack("<HHII", socket.AF_NETLINK, 0, 0, 0)
    assert format_sockaddr(raw, 12) == "{sa_family=AF_NETLINK, nl_pid=0, nl_groups=00000000}"
    raw = struct.pack("<HHII", socket.AF_NETLINK, 0, 1234, 1)
    assert format_sockaddr(raw, 12) == "{sa_family=AF_NETLINK, nl_pid=1234, nl_groups=0x000001}"
    assert short_address(raw, 12) is None


@pytest.mark.parametrize(("data", "addrlen", "expected"), [
    (inet("127.0.0.1", 1), 3, '{sa_family=AF_INET, sa_data="\\0"}'),
    (inet("127.0.0.1", 1), 2, "{sa_family=AF_INET}"),
    (inet("127.0.0.1", 80), 8, '{sa_family=AF_INET, sa_data="\\0P\\177\\0\\0\\1"}'),
    (struct.pack("<H", 200) + b"ab", 4, '{sa_family=0xc8 /* AF_??? */, sa_data="ab"}'),
    (inet("127.0.0.1", 80), 4000, '{sa_family=AF_INET, sin_port=htons(80), '
                                  'sin_addr=inet_addr("127.0.0.1")}'),
    (b"\x02\x00", 16, "{sa_family=AF_INET}"),  # fewer bytes captured than the length says
    (bytes(16), 16, "{sa_family=AF_UNSPEC, sa_data=" + '"' + "\\0" * 14 + '"}'),
])
def test_bogus_lengths_show_as_strace_shows_them(data: bytes, addrlen: int,
                                                  expected: str) -> None:
    assert format_sockaddr(data, addrlen) == expected


def test_short_form_of_short_addresses_is_none() -> None:
    assert short_address(inet("127.0.0.1", 1), 8) is None
    assert short_address(b"\x02", 1) is None
