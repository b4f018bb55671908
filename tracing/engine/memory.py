"""Keeping the tracer's resident memory near what it holds (Linux, glibc's allocator).

Three things make a tracer under process churn keep far more memory than it uses:
- bcc compiles the program with LLVM and clang in this process: the compile touches about
  90 MB of those libraries' code and data, which stay resident (counted in the process's
  RSS) though nothing runs them again until the next compile. Their file-backed pages are
  given back (`release_compiler_pages`); should bcc compile again (a new trace in the TUI),
  the kernel reads them back from the page cache on demand.
- what LLVM frees stays in the heap (tens of MB) until trimmed;
- each tick makes and frees large arrays and many objects. glibc raises its mmap threshold to
  the size of the largest block freed (up to 32 MiB), so from then on such arrays come from
  the heap too, and the heap grows to the largest tick seen and rarely shrinks. A fixed
  threshold keeps large arrays in their own mappings, which are returned when freed.

On other C libraries (musl) the allocator calls are absent and skipped; on a kernel without
MADV_PAGEOUT (before 5.4) only the pages that can be dropped safely are.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
from collections.abc import Iterator
from dataclasses import dataclass

M_MMAP_THRESHOLD = -3  # mallopt parameter (malloc.h)
MMAP_THRESHOLD = 128 << 10  # glibc's default starting threshold, kept fixed
MADV_DONTNEED = 4  # asm-generic/mman-common.h
MADV_PAGEOUT = 21
# The libraries bcc compiles with (libbcc embeds clang and LLVM when linked statically).
COMPILER_LIBRARIES = ("libLLVM", "libclang", "libbcc")
SMAPS_MAX = 16 << 20  # /proc/self/smaps of a large process is a few MB


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name, use_errno=True) if name else None
    except OSError:
        return None


def release_after_load() -> None:
    """Once the program is compiled and loaded: the compiler's pages and the heap's free
    memory back to the system, and the mmap threshold fixed."""
    libc = _libc()
    if libc is None:
        return
    release_compiler_pages(libc)
    if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim"):
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        libc.malloc_trim(0)


@dataclass(frozen=True, slots=True)
class MappedRange:
    start: int
    end: int
    perms: str
    path: str
    anonymous_kb: int  # its pages that are private copies (written: relocations, data)


def mappings(smaps: str) -> Iterator[MappedRange]:
    """The mappings of a /proc/PID/smaps text, with how much of each is private copies."""
    head: list[str] | None = None
    anonymous = 0
    for line in smaps.splitlines():
        fields = line.split()
        if not fields:
            continue
        if "-" in fields[0] and not fields[0].endswith(":"):  # a mapping's first line
            if head is not None:
                yield _mapping(head, anonymous)
            head, anonymous = fields, 0
        elif fields[0] == "Anonymous:" and len(fields) > 1 and fields[1].isdigit():
            anonymous = int(fields[1])
    if head is not None:
        yield _mapping(head, anonymous)


def _mapping(head: list[str], anonymous_kb: int) -> MappedRange:
    start, _, end = head[0].partition("-")
    path = head[5] if len(head) > 5 else ""
    return MappedRange(int(start, 16), int(end, 16), head[1], path, anonymous_kb)


def is_compiler_library(path: str) -> bool:
    return os.path.basename(path).startswith(COMPILER_LIBRARIES)


def release_compiler_pages(libc: ctypes.CDLL | None = None) -> int:
    """Give back the resident pages of the compiler's libraries; the bytes asked for.

    A read-only mapping without private copies holds the file's pages only: dropping them
    (MADV_DONTNEED) changes nothing but residency, and a later access reads them again.
    Any other mapping (written data, relocated read-only data) would lose its writes that
    way: it is only paged out (MADV_PAGEOUT keeps the contents), where the kernel can."""
    libc = libc or _libc()
    if libc is None or not hasattr(libc, "madvise"):
        return 0
    try:
        with open("/proc/self/smaps", encoding="ascii", errors="replace") as f:
            smaps = f.read(SMAPS_MAX)
    except OSError:
        return 0
    madvise = libc.madvise
    madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    madvise.restype = ctypes.c_int
    asked = 0
    for m in mappings(smaps):
        if not is_compiler_library(m.path):
            continue
        drop = "w" not in m.perms and m.anonymous_kb == 0
        with contextlib.suppress(OSError):
            if madvise(m.start, m.end - m.start, MADV_DONTNEED if drop else MADV_PAGEOUT) == 0:
                asked += m.end - m.start
    return asked
