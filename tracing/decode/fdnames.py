"""Descriptors as `strace -y` shows them: `3</etc/passwd>`, `4<socket:[12345]>`.

The name inside the angle brackets is the descriptor's path or kind; it comes from the traced
process's world (a file name is anyone's choice), so it is escaped as strace escapes it:
non-printable bytes as octal, and `<` `>` as octal too so that a name cannot close the
brackets early.
"""

from __future__ import annotations

from collections.abc import Mapping

from tracing.decode.quote import escape


def escape_fd_name(name: str | bytes) -> str:
    raw = name if isinstance(name, bytes) else name.encode("utf-8", "surrogateescape")
    return escape(raw, b"<>")


def annotate_fd(fd: int, fd_names: Mapping[int, str | bytes] | None) -> str:
    """`3</etc/passwd>` when the descriptor's name is known, else `3`."""
    name = fd_names.get(fd) if fd_names else None
    return f"{fd}<{escape_fd_name(name)}>" if name else str(fd)
