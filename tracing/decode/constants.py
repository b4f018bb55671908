"""Names of flags and values as strace prints them (O_RDONLY|O_CLOEXEC, MAP_PRIVATE|
MAP_ANONYMOUS, AF_INET, SIGTERM, ENOENT and its message), from the generated
syscall_tables/data/constants.json (`python -m syscall_tables.generate_constants`).

Each group keeps strace's print order; flag sets are decoded as strace's printflags does:
each name whose bits are all set is printed and its bits cleared, in table order, and what
is left is appended in hex.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources

MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class Constants:
    groups: dict[str, tuple[tuple[str, int], ...]]
    errno_messages: dict[int, str]

    def group(self, name: str) -> tuple[tuple[str, int], ...]:
        return self.groups.get(name, ())

    @functools.cached_property
    def _by_value(self) -> dict[str, dict[int, str]]:
        out: dict[str, dict[int, str]] = {}
        for group, pairs in self.groups.items():
            names: dict[int, str] = {}
            for name, value in pairs:
                names.setdefault(value, name)
            out[group] = names
        return out

    def name(self, group: str, value: int) -> str | None:
        return self._by_value.get(group, {}).get(value)

    @functools.cached_property
    def _by_name(self) -> dict[str, dict[str, int]]:
        return {group: dict(pairs) for group, pairs in self.groups.items()}

    def value(self, group: str, name: str) -> int | None:
        return self._by_name.get(group, {}).get(name)


@functools.cache
def constants() -> Constants:
    text = resources.files("syscall_tables").joinpath("data", "constants.json").read_text("utf-8")
    doc = json.loads(text)
    groups = {g: tuple((str(n), int(v)) for n, v in pairs) for g, pairs in doc["groups"].items()}
    messages = {int(k): str(v) for k, v in doc["errno_messages"].items()}
    return Constants(groups, messages)


def hex_value(value: int) -> str:
    """strace's %#x: 0 is "0", others 0x-prefixed."""
    return f"{value:#x}" if value else "0"


def flag_names(group: str, value: int, *, zero: str | None = None,
               unknown: str | None = None) -> str:
    """A flag set as strace's printflags shows it: NAME|NAME|0x..., the group's 0-valued name
    (PROT_NONE) or `zero` ("0" by default) when no bit is set; with `unknown` (strace's
    default text), bits none of whose names match are `0x8 /* ?_OK */`."""
    value &= MASK64
    pairs = constants().group(group)
    if value == 0:
        named = next((n for n, v in pairs if v == 0), None)
        return named or zero or "0"
    parts, rest = flag_parts(pairs, value)
    if rest and not parts and unknown is not None:
        return f"{hex_value(rest)} /* {unknown} */"
    if rest:
        parts.append(hex_value(rest))
    return "|".join(parts)


def flag_parts(pairs: tuple[tuple[str, int], ...], value: int) -> tuple[list[str], int]:
    """The names whose bits are all in `value` (each clearing its bits), and the bits left."""
    parts = []
    for name, bits in pairs:
        if bits and value & bits == bits:
            parts.append(name)
            value &= ~bits
            if not value:
                break
    return parts, value


def value_name(group: str, value: int, unknown: str) -> str:
    """A value's name, or strace's form for one it does not know: `0x2a /* AF_??? */`."""
    name = constants().name(group, value)
    return name if name is not None else f"{hex_value(value & MASK64)} /* {unknown} */"


def open_flags(value: int) -> str:
    """O_RDONLY|O_CLOEXEC: the access mode by value, then the flags (strace's open.c)."""
    value &= 0xFFFFFFFF
    access = constants().name("open_access", value & 3)
    parts: list[str] = []
    if access is not None:
        parts.append(access)
        value &= ~3
        if not value:
            return access
    names, rest = flag_parts(constants().group("open_flags"), value)
    parts.extend(names)
    if rest:
        parts.append(hex_value(rest))
    return "|".join(parts)


def signal_name(sig: int) -> str:
    """SIGTERM; real-time signals as strace names them (SIGRTMIN, SIGRT_1...); else the number."""
    name = constants().name("signals", sig)
    if name is not None:
        return name
    rtmin = constants().value("signals", "SIGRTMIN")
    if rtmin is not None and rtmin < sig <= 64:
        return f"SIGRT_{sig - rtmin}"
    return str(sig)


def errno_name(code: int) -> str | None:
    """ENOENT, ERESTARTSYS...; None for a number no header names."""
    return constants().name("errno", code) or constants().name("kernel_errno", code)


def errno_message(code: int) -> str:
    """strerror's text, as strace prints it after the name."""
    message = constants().errno_messages.get(code)
    return message if message is not None else f"Unknown error {code}"
