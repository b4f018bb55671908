"""One definition of each kernel structure: every Python mirror of a C struct against the C.

The BPF programs are compiled as the engine compiles them (all three parts, the engine's -D
flags), with a few lines appended that declare one array map per mirrored type: bcc describes
each map's value type from clang's own layout, so its ctypes give the C offsets, sizes and
signedness of every field, which are compared with the hand-written numpy dtypes and ctypes.
The histogram layout is checked the same way, and by running the compiled bucket function
on durations at every bucket edge against tracing.model.stats.bucket_of.
"""

from __future__ import annotations

import ctypes
import os
import platform
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from syscall_tables import canonical_arch, syscall_number
from tracing.decode.argspec import OPENS
from tracing.decode.constants import constants
from tracing.engine.capture_config import LENPTR_SHIFT
from tracing.engine.doctor import _PerfEventAttr, _ProgLoadAttr
from tracing.engine.maps import (
    ARG_SPEC_DTYPE,
    CONFIG_DTYPE,
    DROP_SLOTS,
    FD_IO_DTYPE,
    FD_KEY_DTYPE,
    PROC_FLAG_GONE,
    PROC_FLAG_THREAD,
    SAMPLE_COUNT_DTYPE,
    SAMPLE_KEY_DTYPE,
    STAT_KEY_DTYPE,
    STAT_VALUE_DTYPE,
    ProcEventC,
)
from tracing.engine.program import EngineOptions, build_cflags, program_parts, program_text
from tracing.model.captures import COUNT_MAX, KIND_COUNT, KIND_PATH, PATH_MAX
from tracing.model.selection import SEL_FAILED
from tracing.model.stats import EVENT_DTYPE, HIST_BUCKETS, HIST_PMAX, HIST_SUB, bucket_of
from tracing.net.tcp_monitor import _TcpEventC

pytestmark = pytest.mark.ebpf

# Every struct of bpf/*.bpf.c that Python reads, with its mirror: (C type, mirror).
OWN_STRUCTS: dict[str, tuple[str, Any]] = {
    "stat_key": ("struct stat_key", STAT_KEY_DTYPE),
    "stat_val": ("struct stat_val", STAT_VALUE_DTYPE),
    "sys_event": ("struct sys_event", EVENT_DTYPE),
    "proc_event": ("struct proc_event", ProcEventC),
    "config": ("struct config", CONFIG_DTYPE),
    "arg_spec": ("struct arg_spec", ARG_SPEC_DTYPE),
    "fd_key": ("struct fd_key", FD_KEY_DTYPE),
    "fd_io_val": ("struct fd_io_val", FD_IO_DTYPE),
    "sample_key": ("struct sample_key", SAMPLE_KEY_DTYPE),
    "sample_count": ("u64", SAMPLE_COUNT_DTYPE),
    "tcp_event": ("struct tcp_event", _TcpEventC),
}
# The kernel's own structs the doctor passes to bpf(2) and perf_event_open(2): mirrored as a
# prefix (the kernel zero-fills the rest), so each mirrored field is checked, not the size.
KERNEL_STRUCTS: dict[str, tuple[str, Any]] = {
    "perf_event_attr": ("struct perf_event_attr", _PerfEventAttr),
    "bpf_attr": ("union bpf_attr", _ProgLoadAttr),
}
# The mirror's name for a C bit-field word: the bit-field that starts it (at bit 0).
BITFIELD_WORDS = {"flags": "disabled"}

# Durations to put through the compiled bucket function: every value below 2 * HIST_SUB, and
# the edges of every power of two up to the largest u64.
DURATIONS = list(range(2 * HIST_SUB)) + sorted(
    {v for p in range(4, 64) for v in ((1 << p) - 1, 1 << p, (1 << p) + 1, 3 << (p - 1))}
    | {(1 << 64) - 1})

APPENDIX = """
#include <uapi/linux/perf_event.h>
{maps}

struct hist_check {{
    u64 duration;
    u64 bucket;
}};
BPF_ARRAY(hist_check_map, struct hist_check, 1);

// Runs the program's own hist_bucket() on the duration user space wrote, at the test's next
// getppid() (one at a time: a loop over many would be more than the verifier follows).
TRACEPOINT_PROBE(syscalls, sys_enter_getppid)
{{
    if ((bpf_get_current_pid_tgid() >> 32) != {pid})
        return 0;
    u32 zero = 0;
    struct hist_check *c = hist_check_map.lookup(&zero);
    if (c)
        c->bucket = hist_bucket(c->duration);
    return 0;
}}
"""


@dataclass(frozen=True)
class Field:
    offset: int
    dtype: np.dtype  # the element type and shape, so size and signedness are compared too


@dataclass
class Compiled:
    bpf: Any
    cflags: list[str]

    def leaf(self, name: str) -> type:
        return self.bpf[f"layout_{name}".encode()].Leaf


@pytest.fixture(scope="module")
def compiled() -> Iterator[Compiled]:
    from tracing.engine import kheaders, tracefs

    tracefs.ensure_mounted()
    kheaders.prepare_bcc_environment(kheaders.find_kernel_headers())
    import bcc

    # Every part compiled in: the TCP monitor, CPU samples and function probes.
    options = EngineOptions(tcp=True, sample_hz=49, uprobes=("c:getpid",))
    assert len(program_parts(options)) == 3
    cflags = build_cflags(options, canonical_arch(platform.machine()))
    types = {**OWN_STRUCTS, **KERNEL_STRUCTS}
    maps = "\n".join(f"BPF_ARRAY(layout_{name}, {c_type}, 1);"
                     for name, (c_type, _) in types.items())
    text = program_text(options) + APPENDIX.format(maps=maps, pid=os.getpid())
    bpf = bcc.BPF(text=text.encode(), cflags=cflags)
    try:
        yield Compiled(bpf, cflags)
    finally:
        bpf.cleanup()


# -- layouts ------------------------------------------------------------------------------------


def c_layout(cls: type, base: int = 0) -> dict[str, Field]:
    """The fields of a bcc-generated ctypes struct or union, anonymous members flattened
    (their fields are the parent's in C), padding bcc inserts left out."""
    fields: dict[str, Field] = {}
    for name, ctype, *_bits in cls._fields_:  # type: ignore[attr-defined]
        offset = base + getattr(cls, name).offset
        if name.startswith("__anon"):
            fields.update(c_layout(ctype, offset))
        elif not name.startswith("__pad"):
            # For a bit-field, its storage word (bit positions are checked where they matter).
            fields[name] = Field(offset, np.dtype(ctype))
    return fields


def mirror_layout(mirror: Any) -> dict[str, Field]:
    """The fields of a numpy dtype or a ctypes Structure, in order."""
    dtype = np.dtype(mirror)
    if dtype.names is None or dtype.fields is None:  # a plain value (a map's u64)
        return {"": Field(0, dtype)}
    return {name: Field(dtype.fields[name][1], dtype.fields[name][0]) for name in dtype.names}


def own_layout(compiled: Compiled, name: str) -> tuple[dict[str, Field], int]:
    leaf = compiled.leaf(name)
    if not hasattr(leaf, "_fields_"):
        return {"": Field(0, np.dtype(leaf))}, ctypes.sizeof(leaf)
    return c_layout(leaf), ctypes.sizeof(leaf)


@pytest.mark.parametrize("name", OWN_STRUCTS)
def test_each_mirror_matches_its_c_struct_field_by_field(compiled, name):
    c_fields, c_size = own_layout(compiled, name)
    mirror = OWN_STRUCTS[name][1]
    assert mirror_layout(mirror) == c_fields, f"{OWN_STRUCTS[name][0]} and its mirror differ"
    assert np.dtype(mirror).itemsize == c_size


@pytest.mark.parametrize("name", KERNEL_STRUCTS)
def test_the_doctors_kernel_structs_match_the_headers(compiled, name):
    c_type, mirror = KERNEL_STRUCTS[name]
    leaf = compiled.leaf(name)
    c_fields = c_layout(leaf)
    if c_type.startswith("union"):  # the union's member that holds the mirrored fields
        member = next(ctype for field, ctype, *_ in leaf._fields_
                      if "prog_type" in dict((f[0], f[1]) for f in ctype._fields_))
        c_fields = c_layout(member)
    for field, want in mirror_layout(mirror).items():
        c_name = BITFIELD_WORDS.get(field, field)
        assert c_fields.get(c_name) == want, f"{c_type}: {field}"
    for word, first in BITFIELD_WORDS.items():
        if word in mirror_layout(mirror):
            assert getattr(leaf, first).size & 0xFFFF == 0  # bcc: bits << 16 | bit offset
    assert ctypes.sizeof(mirror) <= ctypes.sizeof(leaf)


def test_the_maps_the_engine_reads_have_the_mirrored_types(compiled):
    """The layout maps above stand for the real ones: the same C types."""
    maps = {b"stats": ("stat_key", "stat_val"), b"samples_0": ("sample_key", "sample_count"),
            b"samples_1": ("sample_key", "sample_count"), b"fd_io": ("fd_key", "fd_io_val")}
    for map_name, (key, value) in maps.items():
        table = compiled.bpf[map_name]
        for ctype, name in ((table.Key, key), (table.Leaf, value)):
            assert own_layout(compiled, name)[0] == (
                c_layout(ctype) if hasattr(ctype, "_fields_") else {"": Field(0, np.dtype(ctype))})


# -- the histogram --------------------------------------------------------------------------------


def test_the_c_takes_its_histogram_layout_from_python_only(compiled):
    for part in program_parts(EngineOptions(tcp=True, sample_hz=49)):
        assert not re.search(r"#\s*define\s+HIST_", part.read_text()), part.name
    expected = {f"-DHIST_SUB={HIST_SUB}", f"-DHIST_PMAX={HIST_PMAX}",
                f"-DHIST_BUCKETS={HIST_BUCKETS}", f"-DHIST_SUB_BITS={HIST_SUB.bit_length() - 1}"}
    assert expected <= set(compiled.cflags)
    hist = own_layout(compiled, "stat_val")[0]["hist"]
    assert hist.dtype.shape == (HIST_BUCKETS,)


def test_the_compiled_bucket_function_agrees_with_bucket_of(compiled):
    table = compiled.bpf[b"hist_check_map"]
    buckets = []
    for duration in DURATIONS:
        table[table.Key(0)] = table.Leaf(duration, 2**64 - 1)
        os.getppid()  # runs the check in the kernel
        buckets.append(table[table.Key(0)].bucket)
    assert buckets == [bucket_of(d) for d in DURATIONS]
    assert max(buckets) == HIST_BUCKETS - 1  # the last bucket is reached, and none beyond


# -- the record and the capture format ------------------------------------------------------------


def test_array_maps_hold_the_mirrored_values(compiled):
    for map_name, name in ((b"config", "config"), (b"arg_kinds", "arg_spec")):
        leaf = compiled.bpf[map_name].Leaf
        assert own_layout(compiled, name)[0] == c_layout(leaf)


def test_the_record_header_is_the_event_dtype_and_fields_follow_it(compiled):
    c_fields, c_size = own_layout(compiled, "sys_event")
    assert c_size == EVENT_DTYPE.itemsize == 96
    assert c_fields["fd_path"].offset + 4 == c_size  # no tail padding before the fields


def test_the_c_takes_the_capture_format_from_python_only(compiled):
    """Kinds, bounds, effects and selection bits come from the Python modules as -D flags:
    the C defines none of them itself."""
    text = program_parts(EngineOptions())[0].read_text()
    for prefix in ("KIND_", "STATUS_", "EFFECT_", "SEL_", "CAP_", "EVF_", "FIELD_IO_ARG"):
        assert not re.search(rf"#\s*define\s+{prefix}", text), prefix
    assert f"-DCAP_PATH_MAX={PATH_MAX}" in compiled.cflags
    assert f"-DKIND_PATH={KIND_PATH}" in compiled.cflags
    assert f"-DKIND_COUNT={KIND_COUNT}" in compiled.cflags
    assert f"-DCAP_COUNT_MAX={COUNT_MAX}" in compiled.cflags
    assert f"-DLENPTR_SHIFT={LENPTR_SHIFT}" in compiled.cflags
    assert "KIND_LENPTR" not in text  # the engine's mark is above the kinds, not one of them
    assert f"-DSEL_FAILED={SEL_FAILED}" in compiled.cflags
    assert f"-DEFFECT_OPENS={OPENS}" in compiled.cflags
    assert "-DEV_ALL" not in " ".join(compiled.cflags)  # the selection is a map now


def test_the_drop_counters_are_the_slots_python_reads(compiled):
    assert compiled.bpf[b"counters"].max_entries == DROP_SLOTS


def test_the_c_takes_clone_numbers_and_proc_flags_from_python_only(compiled: Compiled) -> None:
    """Threads are told from processes at fork by CLONE_THREAD (the generated constants)
    in the flags of clone and clone3 (the syscall tables); the proc_event flag bits are
    tracing.engine.maps's."""
    text = program_parts(EngineOptions())[0].read_text()
    assert not re.search(r"#\s*define\s+(NR_CLONE|CLONE_|PROC_FLAG_)", text)
    assert "0x10000" not in text  # CLONE_THREAD typed in
    arch = canonical_arch(platform.machine())
    assert f"-DCLONE_THREAD_FLAG={constants().value('clone_flags', 'CLONE_THREAD')}" \
        in compiled.cflags
    assert f"-DNR_CLONE={syscall_number('clone', arch)}" in compiled.cflags
    assert f"-DNR_CLONE3={syscall_number('clone3', arch)}" in compiled.cflags
    assert f"-DPROC_FLAG_GONE={PROC_FLAG_GONE}" in compiled.cflags
    assert f"-DPROC_FLAG_THREAD={PROC_FLAG_THREAD}" in compiled.cflags
    assert PROC_FLAG_GONE & PROC_FLAG_THREAD == 0
