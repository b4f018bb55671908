"""Keeping the tracer's resident memory near what it holds (glibc's allocator only).

Two things make a tracer under process churn keep far more memory than it uses:
- bcc compiles the program with LLVM in this process; what LLVM frees stays in the heap
  (tens of MB) until trimmed;
- each tick makes and frees large arrays and many objects. glibc raises its mmap threshold to
  the size of the largest block freed (up to 32 MiB), so from then on such arrays come from
  the heap too, and the heap grows to the largest tick seen and rarely shrinks. A fixed
  threshold keeps large arrays in their own mappings, which are returned when freed.

On other C libraries (musl) these calls are absent and nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3  # mallopt parameter (malloc.h)
MMAP_THRESHOLD = 128 << 10  # glibc's default starting threshold, kept fixed


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def release_after_load() -> None:
    """Fix the mmap threshold and give the heap's free memory back to the system."""
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt") or not hasattr(libc, "malloc_trim"):
        return
    libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    libc.malloc_trim(0)
