"""Reading a BPF ring buffer map directly from its memory mapping, as libbpf does, without a
Python callback per record.

bcc's ring buffer reader calls back into Python for every record (a ctypes callback costs
1-3 us), which at hundreds of thousands of events a second is most of the engine thread.
`RingReader` maps the ring (the consumer page read-write at offset 0; the producer page and
the data, mapped twice in a row so a record that wraps around the end reads contiguously,
read-only at offset one page), copies the whole ready region at once and cuts it into
records with a short loop over their 8-byte headers (u32 length with the busy and discard
bits, u32 page offset). `split_events` turns a batch into a writable array of fixed-size
headers and the bytes after each. `EventQueue` is what the engine holds: the records taken
so far, from a RingReader, or from bcc's callback where `RingReader` cannot be used.

Memory ordering (why plain loads and one plain store are enough): this is correct on x86,
whose memory model (TSO) keeps loads in order with loads and stores in order after earlier
loads. The kernel writes a record, then clears its busy bit with an atomic exchange, then
reads the consumer position to decide on a wake-up; it reads the consumer position before
reserving room. So: (1) the records of the region are loaded after the producer position is
loaded; (2) a record's bytes are trusted only when loaded after its header was seen
committed: memcpy may load a region's last bytes first, so the headers are walked in a
first copy and the committed prefix copied again; (3) every load of that copy happens before
the new consumer position is stored (a single aligned 8-byte store), so the kernel never
overwrites a record still being read. Other architectures need barriers Python cannot
issue: there `ordered_reads()` is false and the engine keeps bcc's callback.

Should the consumer fall behind, nothing changes in the kernel: a record with no room left
is refused (bpf_ringbuf_output fails) and the BPF program counts it as dropped. (The kernel
never fills a ring to the last byte: a record that would make it exactly full is refused.)
"""

from __future__ import annotations

import ctypes
import mmap
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

BUSY_BIT = 1 << 31  # BPF_RINGBUF_BUSY_BIT: reserved, not yet committed
DISCARD_BIT = 1 << 30  # BPF_RINGBUF_DISCARD_BIT: committed but to be skipped
LENGTH_MASK = DISCARD_BIT - 1
HEADER = 8  # BPF_RINGBUF_HDR_SZ
RINGBUF_MAP_TYPE = 27  # BPF_MAP_TYPE_RINGBUF

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                       ctypes.c_int, ctypes.c_int64)
_libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
_MAP_FAILED = ctypes.c_void_p(-1).value


def ordered_reads() -> bool:
    """Whether the plain loads and stores of RingReader are ordered enough here (TSO)."""
    return platform.machine() in ("x86_64", "amd64", "i386", "i686")


class Batch(NamedTuple):
    """Records taken in one pass: a copy of their region and where each one's data is."""

    region: bytes
    starts: np.ndarray  # offsets in region of each record's data (after its ring header)
    lengths: np.ndarray  # each record's data length

    def records(self) -> list[bytes]:
        return [self.region[s:s + n]
                for s, n in zip(self.starts.tolist(), self.lengths.tolist(), strict=True)]


RUN_PROBE = 4096  # records compared at once when looking for a run of like records
RUN_COOLDOWN = 64  # records walked one by one after a probe found no run


def walk(region: bytes) -> tuple[Batch, int]:
    """The committed records at the start of `region` (ring records from the consumer
    position on), and how many bytes they take (discarded records included). Stops at the
    first record still busy."""
    words = memoryview(region).cast("I")  # headers are 8-byte aligned
    size = len(region)
    places: list[int] = []
    append = places.append
    pos, last, cooldown = 0, -1, 0
    # The one loop run per record: as little as can be (the rest is done in numpy after).
    while pos < size:
        header = words[pos >> 2]
        if header & BUSY_BIT:
            break
        step = ((header & LENGTH_MASK) + HEADER + 7) & ~7
        if header == last and not cooldown:
            # Two alike in a row: a run of the same call is likely; numpy finds its end.
            run = _run_length(region, pos, step, header)
            places.extend(range(pos, pos + run * step, step))
            pos += run * step
            last, cooldown = -1, (0 if run >= 8 else RUN_COOLDOWN)
            continue
        cooldown -= cooldown > 0
        last = header
        append(pos)
        pos += step
    if pos > size:  # never for a region the kernel produced; refuse to overrun it
        pos = places.pop()
    found = np.asarray(places, dtype=np.intp)
    headers = np.frombuffer(region, dtype="<u4")[found >> 2]
    kept = (headers & DISCARD_BIT) == 0
    return Batch(region, found[kept] + HEADER, (headers[kept] & LENGTH_MASK).astype(np.intp)), pos


def _run_length(region: bytes, pos: int, step: int, header: int) -> int:
    """How many records from `pos` on have this header (so this size), at least 1."""
    ends = (len(region) - pos) // step  # records that end inside the region
    probe = np.frombuffer(region, dtype="<u4", offset=pos)[::step >> 2][:min(ends, RUN_PROBE)]
    differ = np.flatnonzero(probe != header)
    return max(1, int(differ[0]) if len(differ) else len(probe))


def ring_size(map_fd: int) -> int:
    """The data size of a ring buffer map (its max_entries), from the kernel's fdinfo."""
    fields = {}
    for line in Path(f"/proc/self/fdinfo/{map_fd}").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name.strip()] = value.strip()
    if fields.get("map_type") != str(RINGBUF_MAP_TYPE) or "max_entries" not in fields:
        raise ValueError(f"fd {map_fd} is not a BPF ring buffer map")
    return int(fields["max_entries"])


def _map(length: int, prot: int, fd: int, offset: int) -> int:
    address = _libc.mmap(None, length, prot, mmap.MAP_SHARED, fd, offset)
    if address is None or address == _MAP_FAILED:
        err = ctypes.get_errno()
        raise OSError(err, f"mapping the BPF ring buffer: {os.strerror(err)}")
    return int(address)


class RingReader:
    """One BPF ring buffer map, read from its mapping. Not thread-safe: one consumer."""

    def __init__(self, map_fd: int) -> None:
        size = ring_size(map_fd)
        page = mmap.PAGESIZE
        consumer = _map(page, mmap.PROT_READ | mmap.PROT_WRITE, map_fd, 0)
        try:
            producer = _map(page + 2 * size, mmap.PROT_READ, map_fd, page)
        except OSError:
            _libc.munmap(consumer, page)
            raise
        self._maps = [(consumer, page), (producer, page + 2 * size)]
        self._setup(map_fd, consumer, producer, producer + page, size)

    @classmethod
    def over(cls, consumer: int, producer: int, data: int, size: int) -> RingReader:
        """A reader over memory laid out like a ring's (tests: a fake ring); unmaps
        nothing."""
        reader = cls.__new__(cls)
        reader._maps = []
        reader._setup(-1, consumer, producer, data, size)
        return reader

    def _setup(self, fd: int, consumer: int, producer: int, data: int, size: int) -> None:
        self.fd = fd
        self.size = size
        self._mask = size - 1
        self._consumer = ctypes.c_uint64.from_address(consumer)
        self._producer = ctypes.c_uint64.from_address(producer)
        self._data = data
        self._open = True

    def fileno(self) -> int:
        return self.fd

    def read(self) -> Batch | None:
        """Take the committed records waiting now (None: none)."""
        if not self._open:  # unmapped: the positions are gone
            return None
        cons = self._consumer.value
        ready = min(self._producer.value - cons, self.size)  # one aligned 8-byte load each
        if ready <= 0:
            return None
        start = self._data + (cons & self._mask)
        batch, taken = walk(ctypes.string_at(start, ready))
        if not taken:
            return None
        # The records' bytes again, loaded after their headers said committed (see above).
        batch = batch._replace(region=ctypes.string_at(start, taken))
        self._consumer.value = cons + taken  # after every load of the region (TSO)
        return batch if len(batch.starts) else None

    def close(self) -> None:
        self._open = False
        maps, self._maps = self._maps, []
        for address, length in maps:
            _libc.munmap(address, length)


def split_events(batches: list[Batch], dtype: np.dtype) -> tuple[np.ndarray, list[bytes]]:
    """Records that each start with a `dtype` header (a multiple of 8 bytes): a writable
    array of the headers and the bytes that follow each (b"" when none). Per record only
    C-speed slicing."""
    if not batches:
        return np.zeros(0, dtype=dtype), []
    size = dtype.itemsize
    words = np.arange(size // 8)
    heads, tails = [], []
    for region, offsets, lengths in batches:
        if len(offsets) and int(lengths.min()) < size:
            raise ValueError("a ring buffer record is shorter than its header")
        # Records start 8-byte aligned: gather the headers as 8-byte words (a copy).
        raw = np.frombuffer(region, dtype=np.uint64)
        heads.append(raw[(offsets >> 3)[:, None] + words])
        tails += _tails(region, offsets + size, lengths - size)
    headers = np.concatenate(heads) if len(heads) > 1 else heads[0]
    return headers.view(dtype).reshape(len(tails)), tails


GATHER_CHUNK = 1 << 18  # bytes of tails gathered at once (their index takes 8 a byte)


def _tails(region: bytes, starts: np.ndarray, lengths: np.ndarray) -> list[bytes]:
    """region[start:start + length] for each record, in order. Records of one length are
    gathered together by numpy into fixed-size byte strings (a few times faster than one
    slice each); a batch of mostly different lengths is sliced."""
    if not len(lengths) or not lengths.any():
        return [b""] * len(lengths)
    order = np.argsort(lengths, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(lengths[order])) + 1)
    if len(groups) * 16 > len(lengths):
        cut = map(slice, starts.tolist(), (starts + lengths).tolist())
        return list(map(region.__getitem__, cut))
    raw = np.frombuffer(region, dtype=np.uint8)
    out = np.empty(len(lengths), dtype=object)
    for rows in groups:
        length = int(lengths[rows[0]])
        if not length:
            out[rows] = b""
            continue
        columns = np.arange(length)
        per = max(1, GATHER_CHUNK // length)
        for first in range(0, len(rows), per):
            part = rows[first:first + per]
            block = raw[starts[part][:, None] + columns]
            out[part] = block.view(f"V{length}").ravel().tolist()  # bytes objects
    result: list[bytes] = out.tolist()
    return result


class EventQueue:
    """The records taken from one ring buffer since the last `take`: read directly from its
    mapping (RingReader) where ordered_reads(), else through bcc's per-record callback
    (`subscribe` registers it, and bcc's own consume fills the queue)."""

    def __init__(self, map_fd: int, subscribe: Callable[[Callable[[int, int, int], int]], None],
                 direct: bool | None = None) -> None:
        self._batches: list[Batch] = []
        self._chunks: list[bytes] = []
        self.deadline = float("inf")  # the bcc path stops a consume under a flood here
        self.reader = RingReader(map_fd) if (ordered_reads() if direct is None else direct) \
            else None
        if self.reader is None:
            subscribe(self._on_record)

    def _on_record(self, _ctx: int, data: int, size: int) -> int:
        chunks = self._chunks
        chunks.append(ctypes.string_at(data, size))
        if not len(chunks) & 0xFFF and time.monotonic() >= self.deadline:
            return -1
        return 0

    def read(self) -> int:
        """Take what is waiting (direct reading only); the number of records taken."""
        if self.reader is None:
            return 0
        batch = self.reader.read()
        if batch is None:
            return 0
        self._batches.append(batch)
        return len(batch.starts)

    def take(self, dtype: np.dtype) -> tuple[np.ndarray, list[bytes]]:
        batches, self._batches = self._batches, []
        if self._chunks:
            chunks, self._chunks = self._chunks, []
            batches.append(_chunk_batch(chunks))
        return split_events(batches, dtype)

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()


def _chunk_batch(chunks: list[bytes]) -> Batch:
    """Records received one by one as a Batch, each 8-byte aligned as in a ring."""
    lengths = np.fromiter(map(len, chunks), dtype=np.intp, count=len(chunks))
    steps = (lengths + 7) & ~7
    starts = np.concatenate(([0], np.cumsum(steps)[:-1])).astype(np.intp)
    region = b"".join(c + bytes(-len(c) % 8) for c in chunks)
    return Batch(region, starts, lengths)
