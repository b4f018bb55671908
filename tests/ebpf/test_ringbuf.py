"""The ring buffer reader (tracing/engine/ringbuf.py) against the real kernel and a fake ring.

A small BPF program writes one record per getpid() call of this process that carries a
marker in its first argument: the record's size is the second argument and its bytes a
known pattern that starts with the third (a sequence number). The ring has one page of
data, so records of every size wrap around its end again and again. Whatever the kernel
does with a busy record (reserved, not yet committed) cannot be timed from here: that case
runs over a fake ring laid out in ordinary memory.
"""

from __future__ import annotations

import ctypes
import os
import platform
import random
import select
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from syscall_tables import canonical_arch, syscall_number
from tracing.engine.ringbuf import (
    BUSY_BIT,
    DISCARD_BIT,
    Batch,
    EventQueue,
    RingReader,
    ordered_reads,
    split_events,
)
from tracing.model.stats import EVENT_DTYPE

MARK = 0x5EED_F00D
PAGE = os.sysconf("SC_PAGE_SIZE")
PATTERN = bytes((i * 7 + 3) & 0xFF for i in range(1024))

PROGRAM = """
struct blob { u8 b[1024]; };
BPF_RINGBUF_OUTPUT(ring, 1);
BPF_PERCPU_ARRAY(scratch, struct blob, 1);
BPF_ARRAY(pattern, struct blob, 1);
BPF_ARRAY(failed, u64, 1);

TRACEPOINT_PROBE(raw_syscalls, sys_enter)
{
    if (args->id != NR_CALL || args->args[0] != MARK_VALUE)
        return 0;
    if ((bpf_get_current_pid_tgid() >> 32) != OWNER)
        return 0;
    int zero = 0;
    struct blob *p = pattern.lookup(&zero);
    struct blob *s = scratch.lookup(&zero);
    if (!p || !s)
        return 0;
    bpf_probe_read_kernel(s, sizeof(*s), p);
    *(u64 *)s->b = args->args[2];
    u32 len = args->args[1] & 1023;
    if (ring.ringbuf_output(s, len, 0) != 0) {
        u64 *f = failed.lookup(&zero);
        if (f)
            __sync_fetch_and_add(f, 1);
    }
    return 0;
}
"""

_libc = ctypes.CDLL(None, use_errno=True)


def expected(seq: int, size: int) -> bytes:
    return (seq.to_bytes(8, "little") + PATTERN[8:])[:size]


@dataclass
class Ring:
    bpf: Any
    nr: int

    def emit(self, seq: int, size: int) -> None:
        _libc.syscall(self.nr, ctypes.c_long(MARK), ctypes.c_long(size), ctypes.c_long(seq))

    def failed(self) -> int:
        table = self.bpf[b"failed"]
        return int(table[table.Key(0)].value)

    def reader(self) -> RingReader:
        return RingReader(self.bpf[b"ring"].map_fd)


@pytest.fixture(scope="module")
def ring() -> Iterator[Ring]:
    if not ordered_reads():
        pytest.skip("RingReader reads rings on TSO machines only")
    from tracing.engine import kheaders, tracefs

    tracefs.ensure_mounted()
    kheaders.prepare_bcc_environment(kheaders.find_kernel_headers())
    import bcc

    nr = syscall_number("getpid", canonical_arch(platform.machine()))
    assert nr is not None
    bpf = bcc.BPF(text=PROGRAM.encode(), cflags=[f"-DNR_CALL={nr}", f"-DMARK_VALUE={MARK}",
                                                  f"-DOWNER={os.getpid()}"])
    table = bpf[b"pattern"]
    leaf = table.Leaf()
    ctypes.memmove(ctypes.addressof(leaf), PATTERN, len(PATTERN))
    table[table.Key(0)] = leaf
    try:
        yield Ring(bpf, nr)
    finally:
        bpf.cleanup()


def _bpf_map_lines() -> int:
    with open("/proc/self/maps") as maps:
        return sum("bpf-map" in line or "bpf_ringbuf" in line for line in maps)


# -- the real kernel -----------------------------------------------------------------------


@pytest.mark.ebpf
def test_records_of_every_size_come_back_exactly_and_in_order(ring: Ring) -> None:
    reader = ring.reader()
    try:
        assert reader.size == PAGE
        rng = random.Random(15)
        seq, wrapped, position = 0, 0, 0
        for _round in range(300):
            sizes, room = [], reader.size
            while True:  # a round fills most of the ring: the kernel keeps it from full
                size = rng.choice((0, 1, 7, 8, 9, 96, 100, 146, 255, 512, 1000, 1023))
                step = (size + 8 + 7) & ~7
                if step >= room:
                    break
                sizes.append(size)
                room -= step
            batch_seqs = list(range(seq, seq + len(sizes)))
            for s, size in zip(batch_seqs, sizes, strict=True):
                ring.emit(s, size)
            batch = reader.read()
            assert batch is not None
            assert batch.records() == [expected(s, n) for s, n in
                                       zip(batch_seqs, sizes, strict=True)]
            for size in sizes:
                step = (size + 8 + 7) & ~7
                wrapped += position % reader.size + step > reader.size
                position += step
            seq += len(sizes)
            assert reader.read() is None
        assert ring.failed() == 0
        assert wrapped > 100  # records cut by the ring's end read whole
    finally:
        reader.close()


@pytest.mark.ebpf
def test_a_consumer_that_lags_loses_what_did_not_fit_and_the_kernel_counts_it(
        ring: Ring) -> None:
    reader = ring.reader()
    try:
        before = ring.failed()
        for seq in range(100):
            ring.emit(seq, 200)  # 208 bytes a record: 19 fit in a page
        batch = reader.read()
        assert batch is not None
        assert batch.records() == [expected(seq, 200) for seq in range(19)]
        assert ring.failed() - before == 81
        ring.emit(100, 10)  # room again
        again = reader.read()
        assert again is not None and again.records() == [expected(100, 10)]
    finally:
        reader.close()


@pytest.mark.ebpf
def test_the_map_polls_readable_while_records_wait_and_close_unmaps(ring: Ring) -> None:
    mapped = _bpf_map_lines()
    reader = ring.reader()
    try:
        assert _bpf_map_lines() == mapped + 2
        poll = select.poll()
        poll.register(reader.fileno(), select.POLLIN)
        assert poll.poll(0) == []
        ring.emit(7, 33)
        assert poll.poll(1000) == [(reader.fileno(), select.POLLIN)]
        batch = reader.read()
        assert batch is not None and batch.records() == [expected(7, 33)]
        assert poll.poll(0) == []
    finally:
        reader.close()
    assert _bpf_map_lines() == mapped


# -- a fake ring in ordinary memory ---------------------------------------------------------


class FakeRing:
    """A ring's three parts as the kernel lays them out, without the double mapping (the
    records written here never cross the end)."""

    def __init__(self, size: int = 8192) -> None:
        self.consumer = (ctypes.c_uint64 * 1)()
        self.producer = (ctypes.c_uint64 * 1)()
        self.data = ctypes.create_string_buffer(size)
        self.end = 0
        self.reader = RingReader.over(ctypes.addressof(self.consumer),
                                      ctypes.addressof(self.producer),
                                      ctypes.addressof(self.data), size)

    def put(self, payload: bytes, flags: int = 0) -> int:
        """Writes a record and publishes it (moves the producer position); its place."""
        place = self.end
        struct.pack_into("<II", self.data, place, len(payload) | flags, 0)
        self.data[place + 8:place + 8 + len(payload)] = payload
        self.end += (len(payload) + 15) & ~7
        self.producer[0] = self.end
        return place

    def commit(self, place: int) -> None:
        length, = struct.unpack_from("<I", self.data, place)
        struct.pack_into("<I", self.data, place, length & ~BUSY_BIT)


def test_a_busy_record_stops_the_walk_until_it_is_committed() -> None:
    fake = FakeRing()
    first = [bytes([i]) * (96 + i % 5) for i in range(20)]
    for payload in first:
        fake.put(payload)
    fake.put(b"d" * 40, DISCARD_BIT)  # skipped, but passed
    fake.put(b"after discard")
    busy = fake.put(b"b" * 96, BUSY_BIT)
    fake.put(b"c" * 96)  # committed, but behind a busy one
    batch = fake.reader.read()
    assert batch is not None and batch.records() == [*first, b"after discard"]
    assert fake.consumer[0] == busy
    assert fake.reader.read() is None
    assert fake.consumer[0] == busy
    fake.commit(busy)
    again = fake.reader.read()
    assert again is not None and again.records() == [b"b" * 96, b"c" * 96]
    assert fake.consumer[0] == fake.end


def test_runs_of_alike_records_and_mixed_ones_split_the_same() -> None:
    fake = FakeRing(1 << 16)
    payloads = [b"x" * 96] * 50 + [bytes([i % 256]) * (96 + i % 9) for i in range(200)] \
        + [b"y" * 150] * 40
    for payload in payloads:
        fake.put(payload)
    batch = fake.reader.read()
    assert batch is not None and batch.records() == payloads


def _event(nr: int, tail: bytes) -> bytes:
    header = np.zeros(1, dtype=EVENT_DTYPE)
    header["nr"], header["data_len"], header["pid"] = nr, len(tail), 1000 + nr
    return header.tobytes() + tail


def test_split_events_gives_writable_headers_and_each_records_fields() -> None:
    tails = [b"", b"/etc/passwd\x00", b"", b"a" * 50, b"a" * 50, b"b" * 50, b"z" * 7]
    fake = FakeRing()
    for nr, tail in enumerate(tails):
        fake.put(_event(nr, tail))
    batch = fake.reader.read()
    assert batch is not None
    headers, data = split_events([batch], EVENT_DTYPE)
    assert headers.flags.writeable
    assert headers["nr"].tolist() == list(range(len(tails)))
    assert headers["pid"].tolist() == [1000 + n for n in range(len(tails))]
    assert data == tails
    bare, none = split_events([], EVENT_DTYPE)
    assert len(bare) == 0 and none == []


def test_records_through_bccs_callback_come_out_the_same() -> None:
    callbacks = []
    queue = EventQueue(-1, callbacks.append, direct=False)
    assert queue.reader is None and len(callbacks) == 1
    records = [_event(n, b"p" * n) for n in range(12)]
    for record in records:
        buffer = ctypes.create_string_buffer(record, len(record))
        assert callbacks[0](0, ctypes.addressof(buffer), len(record)) == 0
    headers, data = queue.take(EVENT_DTYPE)
    assert headers["nr"].tolist() == list(range(12))
    assert data == [b"p" * n for n in range(12)]
    assert queue.take(EVENT_DTYPE)[1] == []


def test_a_record_claiming_more_than_was_produced_is_not_read_past() -> None:
    fake = FakeRing()
    fake.put(b"ok")
    struct.pack_into("<II", fake.data, fake.end, 4000, 0)  # a header without its record
    fake.producer[0] = fake.end + 16
    batch = fake.reader.read()
    assert isinstance(batch, Batch) and batch.records() == [b"ok"]
    assert fake.consumer[0] == 16
