"""The kernel's structs as Python sees them, and reading whole BPF maps into numpy.

Each C struct of bpf/*.bpf.c that Python reads has one mirror here (numpy dtypes for maps read
in bulk, ctypes for ring buffer records), except the syscall event (tracing.model.stats
EVENT_DTYPE, which replay and the session store use too) and the TCP event (tracing.net).
tests/ebpf/test_struct_layout.py compiles the programs and checks every mirror, field by
field, against the C. Also here: the sort keys and change detection of the stats map reads.
"""

from __future__ import annotations

import ctypes
import errno
import os

import numpy as np

from tracing.engine.bcc_types import BccTable
from tracing.model.captures import IoTotals
from tracing.model.stats import HIST_BUCKETS

ENOTSUPP = 524  # the kernel-internal errno the bpf syscall returns for unsupported ops

# struct stat_key and struct stat_val (bpf/syscalls.bpf.c): the stats map.
STAT_KEY_DTYPE = np.dtype([("pid", "<u4"), ("tid", "<u4"), ("nr", "<u4"), ("pad", "<u4")])
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
    """One sortable 64-bit id per (pid, tid, nr) key: pids and tids fit 22 bits (pid_max is
    at most 2^22) and syscall numbers 20 bits: 18 of the number (every architecture's fit),
    function probes' bit 29 (PROBE_NR_BASE) in bit 18 and x32's bit 30 in bit 19."""
    nr: np.ndarray = keys["nr"].astype(np.uint64)
    nr = (nr & 0x3FFFF) | (((nr >> 29) & 1) << 18) | (((nr >> 30) & 1) << 19)
    return (keys["pid"].astype(np.uint64) << 42) | (keys["tid"].astype(np.uint64) << 20) | nr


def changed_rows(last_ids: np.ndarray, last_values: np.ndarray, last_counts: np.ndarray,
                 ids: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows (ids sorted) that are new or differ from the last read, and for each of them
    its values at the last read (zeros when new). last_counts marks rows to read again."""
    if not len(last_ids):
        return np.arange(len(ids)), np.zeros(len(ids), dtype=values.dtype)
    pos = np.minimum(np.searchsorted(last_ids, ids), len(last_ids) - 1)
    seen = last_ids[pos] == ids
    same = seen & (last_counts[pos] == values["count"]) \
        & (last_values["total_ns"][pos] == values["total_ns"])
    rows = np.flatnonzero(~same)
    previous = last_values[pos[rows]].copy()
    previous[~seen[rows]] = np.zeros(1, dtype=values.dtype)
    return rows, previous


class BatchReader:
    """Reads a whole hash map with BPF_MAP_LOOKUP_BATCH in fixed-size chunks into numpy
    arrays (bcc's own batch call allocates max_entries-sized buffers on every call)."""

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
        self._keys = ctypes.create_string_buffer(key_dtype.itemsize * self.CHUNK)
        self._values = ctypes.create_string_buffer(value_dtype.itemsize * self.CHUNK)
        self._fallback = table

    def read(self) -> tuple[np.ndarray, np.ndarray]:
        keys, values = [], []
        # For hash maps the batch position is a bucket index (a u32).
        token_in, token_out = ctypes.c_uint32(0), ctypes.c_uint32(0)
        first = True
        while True:
            count = ctypes.c_uint32(self.CHUNK)
            res = self._lib.bpf_lookup_batch(self._fd,
                                             None if first else ctypes.byref(token_in),
                                             ctypes.byref(token_out), self._keys,
                                             self._values, ctypes.byref(count))
            err = ctypes.get_errno()
            n = count.value
            if n:
                keys.append(self._keys.raw[: n * self._key_dtype.itemsize])
                values.append(self._values.raw[: n * self._value_dtype.itemsize])
            if res != 0:
                if err == errno.ENOENT:  # the end of the map
                    break
                if first and err in (errno.EINVAL, ENOTSUPP, errno.EOPNOTSUPP):
                    return self._read_one_by_one()  # kernels before 5.6
                raise OSError(err, f"reading BPF map: {os.strerror(err)}")
            if n == 0:
                break
            token_in.value = token_out.value
            first = False
        return (np.frombuffer(b"".join(keys), dtype=self._key_dtype),
                np.frombuffer(b"".join(values), dtype=self._value_dtype))

    def _read_one_by_one(self) -> tuple[np.ndarray, np.ndarray]:
        items = list(self._fallback.items())
        keys = b"".join(bytes(k) for k, _ in items)
        values = b"".join(bytes(v) for _, v in items)
        return (np.frombuffer(keys, dtype=self._key_dtype),
                np.frombuffer(values, dtype=self._value_dtype))


def delete_entry(table: BccTable, raw_key: bytes) -> None:
    from bcc.libbcc import lib

    lib.bpf_delete_elem(table.map_fd, ctypes.c_char_p(raw_key))
