"""The kernel's structs as Python sees them, and reading whole BPF maps into numpy.

Each C struct of bpf/*.bpf.c that Python reads has one mirror here (numpy dtypes for maps read
in bulk, ctypes for ring buffer records), except the syscall event (tracing.model.stats
EVENT_DTYPE, which replay and the session store use too) and the TCP event (tracing.net).
tests/ebpf/test_struct_layout.py compiles the programs and checks every mirror, field by
field, against the C. Also here: the sort keys of the stats map's entries (what changed
between two reads is told in tracing/engine/aggregates.py).
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Callable, Iterator

import numpy as np

from tracing.engine.bcc_types import BccTable
from tracing.model.captures import IoTotals
from tracing.model.stats import HIST_BUCKETS

ENOTSUPP = 524  # the kernel-internal errno the bpf syscall returns for unsupported ops

# struct stat_key and struct stat_val (bpf/syscalls.bpf.c): the stats map.
# "abi": the ABI the call was made in (0 native, 1 compat, 2 x32; x32's nr is without its bit).
STAT_KEY_DTYPE = np.dtype([("pid", "<u4"), ("tid", "<u4"), ("nr", "<u4"), ("abi", "<u4")])
STAT_VALUE_DTYPE = np.dtype([
    ("count", "<u8"),
    ("errors", "<u8"),
    ("total_ns", "<u8"),
    ("min_ns", "<u8"),
    ("max_ns", "<u8"),
    ("hist", "<u4", (HIST_BUCKETS,)),
])

# struct fd_key and struct fd_io_val: the fd_io map (I/O per open descriptor).
FD_KEY_DTYPE = np.dtype([("pid", "<u4"), ("fd", "<i4")])
FD_IO_DTYPE = np.dtype([(name, "<u8") for name in IoTotals._fields])
# struct config (the event selection, set at run time) and struct arg_spec (arg_kinds map).
CONFIG_DTYPE = np.dtype([("events", "<u4"), ("files", "<u4"), ("slow_ns", "<u8"),
                         ("sample_n", "<u8")])
ARG_SPEC_DTYPE = np.dtype([("kinds", "<u4"), ("effects", "<u4")])
DROP_SLOTS = 6  # enum drop_slot's counters; the last, DROP_FD_EVENTS, is Drops.fd_events

# struct sample_key and the u64 count (bpf/profile.bpf.c): the samples_0/1 maps.
SAMPLE_KEY_DTYPE = np.dtype([("pid", "<u4"), ("tid", "<u4"), ("user_stack", "<i4"),
                             ("kernel_stack", "<i4")])
SAMPLE_COUNT_DTYPE = np.dtype("<u8")


# struct proc_event's flag bits (given to the C as -D flags): an exit that ends the whole
# process; a fork that made a thread of the parent's process, not a new process.
PROC_FLAG_GONE = 1
PROC_FLAG_THREAD = 2


class ProcEventC(ctypes.Structure):
    """struct proc_event of bpf/syscalls.bpf.c: the proc_events ring buffer's records."""

    _fields_ = [
        ("ts", ctypes.c_uint64),
        ("kind", ctypes.c_uint32),
        ("pid", ctypes.c_uint32),
        ("tid", ctypes.c_uint32),
        ("ppid", ctypes.c_uint32),
        ("status", ctypes.c_int32),
        ("flags", ctypes.c_uint32),
        ("comm", ctypes.c_char * 16),
        ("filename", ctypes.c_char * 128),
    ]


def key_ids(keys: np.ndarray) -> np.ndarray:
    """One sortable 64-bit id per (pid, tid, nr, abi) key: pids and tids fit 22 bits (pid_max
    is at most 2^22), the call 20 bits: the ABI in bits 18..19, function probes' bit 29
    (PROBE_NR_BASE) in bit 17 and 17 bits of the number (every architecture's calls fit; x32's
    come without their bit). Only invalid numbers of 2^17 and above, in one thread and ABI,
    could share an id (syscall(-1) has all 17 bits set)."""
    nr: np.ndarray = keys["nr"].astype(np.uint64)
    abi: np.ndarray = keys["abi"].astype(np.uint64) & 3
    call = (abi << 18) | (((nr >> 29) & 1) << 17) | (nr & 0x1FFFF)
    return (keys["pid"].astype(np.uint64) << 42) | (keys["tid"].astype(np.uint64) << 20) | call


class BatchReader:
    """Reads a whole hash map with BPF_MAP_LOOKUP_BATCH in fixed-size chunks straight into
    numpy arrays (bcc's own batch call allocates max_entries-sized buffers on every call).

    The arrays are kept and reused between reads, growing by chunks as the map does: a read
    costs one copy of the map's entries (stats entries are over a KiB each, and a map under
    process churn holds tens of thousands), not the three that bytes, a join and a parse
    would. What `read` returns is valid until the next read (copy what must outlive it)."""

    CHUNK = 4096

    def __init__(self, table: BccTable, key_dtype: np.dtype, value_dtype: np.dtype) -> None:
        from bcc.libbcc import lib

        self._lib = lib
        self._fd = table.map_fd
        self._key_dtype, self._value_dtype = key_dtype, value_dtype
        # A wrong mirror would misread every entry: refuse it (the struct-layout test checks
        # each field; this catches a size mismatch on any machine).
        assert key_dtype.itemsize == ctypes.sizeof(table.Key)
        assert value_dtype.itemsize == ctypes.sizeof(table.Leaf)
        self._keys = np.empty(self.CHUNK, dtype=key_dtype)
        self._values = np.empty(self.CHUNK, dtype=value_dtype)
        self._fallback = table

    def _room(self, used: int) -> int:
        """At least CHUNK free entries after `used` in both arrays (grown by half); `used`."""
        if used + self.CHUNK <= len(self._keys):
            return used
        size = max(used + self.CHUNK, len(self._keys) * 3 // 2)
        keys, values = np.empty(size, self._key_dtype), np.empty(size, self._value_dtype)
        keys[:used], values[:used] = self._keys[:used], self._values[:used]
        self._keys, self._values = keys, values
        return used

    def read(self) -> tuple[np.ndarray, np.ndarray]:
        """The whole map (views of the reader's arrays, valid until its next read)."""
        used = 0
        for n in self._batches(self._room, 0):
            if n < 0:  # no batch operations here
                return self._read_one_by_one()
            used += n
        return self._keys[:used], self._values[:used]

    def chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The map, CHUNK entries at a time at most: what a reader that handles each part
        before the next needs in memory, however large the map is (each chunk is a view
        of one buffer, valid until the next)."""
        keys, values = self._keys[: self.CHUNK], self._values[: self.CHUNK]
        for n in self._batches(lambda _used: 0, 0):
            if n < 0:
                fallback = self._read_one_by_one()
                for start in range(0, len(fallback[0]), self.CHUNK):
                    yield (fallback[0][start : start + self.CHUNK],
                           fallback[1][start : start + self.CHUNK])
                return
            yield keys[:n], values[:n]

    def _batches(self, place: Callable[[int], int], used: int) -> Iterator[int]:
        """BPF_MAP_LOOKUP_BATCH until the end of the map: each batch is read at the entry
        `place(used)` of the arrays; yields each batch's size (-1 once: not supported)."""
        # For hash maps the batch position is a bucket index (a u32).
        token_in, token_out = ctypes.c_uint32(0), ctypes.c_uint32(0)
        first = True
        while True:
            at = place(used)
            count = ctypes.c_uint32(self.CHUNK)
            res = self._lib.bpf_lookup_batch(
                self._fd, None if first else ctypes.byref(token_in), ctypes.byref(token_out),
                self._keys[at:].ctypes.data, self._values[at:].ctypes.data,
                ctypes.byref(count))
            err = ctypes.get_errno()
            if count.value:
                used += count.value
                yield count.value
            if res != 0:
                if err == errno.ENOENT:  # the end of the map
                    return
                if first and err in (errno.EINVAL, ENOTSUPP, errno.EOPNOTSUPP):
                    yield -1  # kernels before 5.6
                    return
                raise OSError(err, f"reading BPF map: {os.strerror(err)}")
            if count.value == 0:
                return
            token_in.value = token_out.value
            first = False

    def _read_one_by_one(self) -> tuple[np.ndarray, np.ndarray]:
        items = list(self._fallback.items())
        keys = b"".join(bytes(k) for k, _ in items)
        values = b"".join(bytes(v) for _, v in items)
        return (np.frombuffer(keys, dtype=self._key_dtype),
                np.frombuffer(values, dtype=self._value_dtype))


def delete_entries(table: BccTable, keys: np.ndarray) -> None:
    """Delete these keys (a contiguous array of the map's key dtype) from a hash map: with
    BPF_MAP_DELETE_BATCH where the kernel has it (5.6), else one call per key. Keys that
    are already gone are skipped."""
    from bcc.libbcc import lib

    keys = np.ascontiguousarray(keys)
    done = 0
    while done < len(keys):
        count = ctypes.c_uint32(len(keys) - done)
        res = lib.bpf_delete_batch(table.map_fd, keys[done:].ctypes.data, ctypes.byref(count))
        err = ctypes.get_errno()
        done += count.value
        if res == 0:
            return
        if err == errno.ENOENT:
            done += 1  # the batch stops at a key that is not there: step over it
            continue
        break  # no batch delete here (or another failure): one by one
    for i in range(done, len(keys)):
        delete_entry(table, keys[i].tobytes())


def delete_entry(table: BccTable, raw_key: bytes) -> None:
    from bcc.libbcc import lib

    lib.bpf_delete_elem(table.map_fd, ctypes.c_char_p(raw_key))
