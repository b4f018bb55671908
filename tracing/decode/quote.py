"""strace's string quoting: `"..."` with \\t \\n \\v \\f \\r \\" \\\\ escapes, every other byte
outside printable ASCII as octal, and `...` after the closing quote when the string was cut.

As strace's string_quote (src/util.c): an octal escape is as short as it can be (`\\0`,
`\\33`), and three digits long when the next shown byte is an octal digit, so that
`"\\0011"` reads back as byte 1 then "1". The result is printable ASCII only, whatever the
bytes: safe to show in a terminal or a table as it is.
"""

from __future__ import annotations

PATH_BOUND = 4095  # strace prints up to PATH_MAX - 1 bytes of a path, then `...`
STRING_BOUND = 32  # strace's default -s 32 for strings and data buffers

_NAMED = {0x09: "\\t", 0x0A: "\\n", 0x0B: "\\v", 0x0C: "\\f", 0x0D: "\\r",
          0x22: '\\"', 0x5C: "\\\\"}


def _short(byte: int) -> str:
    if byte in _NAMED:
        return _NAMED[byte]
    if 0x20 <= byte <= 0x7E:
        return chr(byte)
    return "\\" + format(byte, "o")


_SHORT = tuple(_short(b) for b in range(256))
_LONG = tuple(s if (b in _NAMED or 0x20 <= b <= 0x7E) else f"\\{b:03o}"
              for b, s in enumerate(_SHORT))
_OCTAL_DIGITS = frozenset(b"01234567")
_PLAIN = bytes(b for b in range(0x20, 0x7F) if b not in _NAMED)


def escape(data: bytes, also: bytes = b"") -> str:
    """The bytes as strace writes them between the quotes; the bytes of `also` are escaped
    in octal too (strace -y escapes `<` and `>` in a descriptor's name)."""
    if not data.translate(None, _PLAIN) and not any(b in data for b in also):
        return data.decode("ascii")
    out = []
    last = len(data) - 1
    for i, byte in enumerate(data):
        long_form = i < last and data[i + 1] in _OCTAL_DIGITS
        if byte in also:
            out.append(f"\\{byte:03o}" if long_form else "\\" + format(byte, "o"))
        else:
            out.append(_LONG[byte] if long_form else _SHORT[byte])
    return "".join(out)


def quote(data: bytes, bound: int | None = STRING_BOUND, *, more: bool = False) -> str:
    """`"..."` of the first `bound` bytes (None: all), `...` after when there was more: bytes
    past the bound, or `more` (the capture itself was cut)."""
    cut = bound is not None and len(data) > bound
    shown = data[:bound] if cut else data
    return f'"{escape(shown)}"' + ("..." if cut or more else "")


def quote_path(data: bytes, *, truncated: bool = False, bound: int = PATH_BOUND) -> str:
    """A path as strace prints it: up to PATH_MAX - 1 bytes, `...` after a longer one."""
    return quote(data, bound, more=truncated)
