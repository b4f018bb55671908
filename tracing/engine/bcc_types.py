"""Typed views of the bcc objects the engine uses: the loaded program and its tables.

bcc ships no type hints, so its objects would be `Any` (or `object`, and then every call a
`type: ignore`). These Protocols name the part of bcc's API the engine relies on, so a type
checker verifies our side of each call; bcc's `BPF` and table classes satisfy them by shape.
Nothing here imports bcc.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

# A ring buffer callback: (context, address of the record, its size) -> 0, or -1 to stop.
RingBufferCallback = Callable[[int, int, int], int]


class BccTable(Protocol):
    """One BPF map as bcc wraps it (hash, array, per-CPU array, stack trace, ring buffer).

    Key and Leaf are the ctypes types bcc generates from the C declaration; values read are
    Leaf instances (a list of them for per-CPU maps), hence `Any`."""

    map_fd: int
    Key: type[Any]
    Leaf: type[Any]

    def __getitem__(self, key: Any) -> Any: ...

    def __setitem__(self, key: Any, leaf: Any) -> None: ...

    def __delitem__(self, key: Any) -> None: ...

    def keys(self) -> Iterable[Any]: ...

    def items(self) -> Iterable[tuple[Any, Any]]: ...

    def clear(self) -> None: ...

    def open_ring_buffer(self, callback: RingBufferCallback) -> None: ...

    def walk(self, stack_id: int) -> Iterator[int]: ...


class BccProgram(Protocol):
    """A compiled and loaded program (bcc.BPF): its tables by name, attach calls, polling."""

    module: int  # the C handle libbcc's functions take (bpf_table_fd)

    def __getitem__(self, name: bytes) -> BccTable: ...

    def attach_raw_tracepoint(self, *, tp: bytes, fn_name: bytes) -> None: ...

    def detach_raw_tracepoint(self, *, tp: bytes) -> None: ...

    def attach_uprobe(self, *, name: str, sym: str, fn_name: bytes) -> None: ...

    def attach_uretprobe(self, *, name: str, sym: str, fn_name: bytes) -> None: ...

    def attach_perf_event(self, *, ev_type: int, ev_config: int, fn_name: bytes,
                          sample_freq: int) -> None: ...

    def ring_buffer_consume(self) -> None: ...

    def ring_buffer_poll(self, timeout: int = -1) -> None: ...

    def cleanup(self) -> None: ...
