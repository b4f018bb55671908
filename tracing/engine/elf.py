"""ELF function symbols of user binaries through bcc's reader (for naming sampled frames).

tracing.engine.symbols names addresses from these symbols; this module is the bcc side of it:
ctypes signatures of libbcc's ELF calls and the options that keep them safe on files another
user controls.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

_SYMBOL_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.c_uint64,
                                    ctypes.c_uint64, ctypes.c_void_p)
_STT_FUNC, _STT_GNU_IFUNC = 2, 10


class BccElfReader:
    """ELF function symbols through bcc's reader, which also finds separate debug files."""

    def __init__(self) -> None:
        from bcc.libbcc import bcc_symbol_option, lib

        self._lib = lib
        lib.bcc_elf_foreach_sym.argtypes = [ctypes.c_char_p, _SYMBOL_CALLBACK,
                                            ctypes.c_void_p, ctypes.c_void_p]
        lib.bcc_elf_foreach_sym.restype = ctypes.c_int
        lib.bcc_elf_foreach_vdso_sym.argtypes = [_SYMBOL_CALLBACK, ctypes.c_void_p]
        lib.bcc_elf_foreach_vdso_sym.restype = ctypes.c_int
        lib.bcc_elf_get_text_scn_info.argtypes = [ctypes.c_char_p,
                                                  ctypes.POINTER(ctypes.c_uint64),
                                                  ctypes.POINTER(ctypes.c_uint64)]
        lib.bcc_elf_get_text_scn_info.restype = ctypes.c_int
        # No .gnu_debuglink files: bcc would open a name the traced binary chooses, by path,
        # as root and blocking (a FIFO there hung the tracer; docs/security.md).
        self._option = bcc_symbol_option(use_debug_file=0, check_debug_file_crc=0,
                                         lazy_symbolize=0,
                                         use_symbol_type=(1 << _STT_FUNC) | (1 << _STT_GNU_IFUNC))

    @staticmethod
    def _collect(call: Callable[[object], object]) -> list[tuple[int, int, str]]:
        symbols: list[tuple[int, int, str]] = []

        def add(name: bytes, start: int, size: int, _payload: object) -> int:
            symbols.append((start, size, name.decode(errors="replace")))
            return 0

        call(_SYMBOL_CALLBACK(add))
        return symbols

    def symbols(self, path: str) -> list[tuple[int, int, str]]:
        return self._collect(lambda cb: self._lib.bcc_elf_foreach_sym(
            path.encode(), cb, ctypes.byref(self._option), None))

    def text_section(self, path: str) -> tuple[int, int] | None:
        addr, offset = ctypes.c_uint64(), ctypes.c_uint64()
        if self._lib.bcc_elf_get_text_scn_info(path.encode(), ctypes.byref(addr),
                                               ctypes.byref(offset)) != 0:
            return None
        return addr.value, offset.value

    def vdso_symbols(self) -> list[tuple[int, int, str]]:
        return self._collect(lambda cb: self._lib.bcc_elf_foreach_vdso_sym(cb, None))

