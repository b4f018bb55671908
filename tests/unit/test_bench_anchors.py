"""The bench's anchors are checked from their own output (benchmarks/tracers.py): a tool
that attached too late or traced the wrong process is a failed row, not a flattering figure.
These check the parsing on output shaped like the tools' (libbpf-tools and bcc syscount -L,
bpftrace 0.17's hist()), and the smaller runs the slow tools get."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import pytest

from benchmarks.common import BenchContext
from benchmarks.overhead import SIKTE_NONE, UNTRACED, Samples, measure, workloads
from benchmarks.tracers import (
    Measurement,
    Tool,
    ToolFailed,
    Workload,
    bpf_ns_per_call,
    bpftrace_program,
    check_bpftrace,
    check_syscount,
    histogram_total,
)

SYSCOUNT_OUT = b"""Tracing syscalls, printing top 10... Ctrl+C to quit.
^C[13:05:44]
SYSCALL                   COUNT        TIME (us)
read                    1000012       375902.088
write                   1000000       164313.117
close                         3            7.943
"""

BPFTRACE_OUT = b"""Attaching 4 probes...
bench-ready


@usecs:
[0]               1999900 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
[1]                    47 |                                        |
[2, 4)                 10 |                                        |
[1K, 2K)                1 |                                        |

"""


def test_syscount_rows_are_summed() -> None:
    dd = workloads(quick=False)[0]
    check_syscount(dd, dd.argv, SYSCOUNT_OUT)  # 2,000,015 >= 2,000,000
    with pytest.raises(ToolFailed, match="counted only 2000015 calls, expected 2000016"):
        check_syscount(dataclasses.replace(dd, min_syscalls=2_000_016), dd.argv, SYSCOUNT_OUT)


def test_bpftrace_histogram_total() -> None:
    assert histogram_total(BPFTRACE_OUT) == 1999900 + 47 + 10 + 1
    dd = workloads(quick=False)[0]
    with pytest.raises(ToolFailed, match="timed only 1999958 calls, expected 2000000"):
        check_bpftrace(dd, dd.argv, BPFTRACE_OUT)
    # The smaller run is checked against its own count.
    check_bpftrace(dd, dd.small_argv, BPFTRACE_OUT)


def test_bpftrace_program_filters_the_pid_and_says_ready() -> None:
    program = bpftrace_program(4242)
    assert "/pid == 4242/" in program
    assert 'printf("bench-ready\\n")' in program
    assert "hist((nsecs - @start[tid]) / 1000)" in program


def test_slow_tools_get_a_tenth() -> None:
    dd, tar = workloads(quick=False)
    assert dd.argv[-2] == "count=1000000" and dd.small_argv[-2] == "count=100000"
    assert dd.small_min_syscalls == 200_000
    assert tar.argv[-1] == "usr/share" and tar.small_argv[-1] == "usr/share/doc"


def test_bpf_cost_from_record_json_when_present() -> None:
    assert bpf_ns_per_call({"bpf": {"run_ns": 170_000_000, "runs": 2_000_000,
                                    "ns_per_call": 85.0, "cpu_pct": 2.1}}) == 85.0
    assert bpf_ns_per_call({"syscalls": []}) is None  # a tree before issue 18
    assert bpf_ns_per_call({"bpf": {"ns_per_call": 0}}) is None  # statistics unavailable
    assert bpf_ns_per_call({"bpf": "x"}) is None


def test_measured_ns_per_call_is_the_extra_cpu_per_syscall() -> None:
    samples = Samples(runs={
        UNTRACED: [Measurement(0.200, 0.2)],
        SIKTE_NONE: [Measurement(0.400, 0.4, syscalls=2_000_000, bpf_ns_per_call=95.0)],
    })
    assert samples.ns_per_call(SIKTE_NONE) == pytest.approx(100.0)
    assert samples.bpf_shown(SIKTE_NONE) == 95.0


def test_anchors_run_in_the_first_rounds_only(tmp_path: Path) -> None:
    def timed(workload: Workload, argv: Sequence[str], ctx: BenchContext) -> Measurement:
        return Measurement(0.1, 0.1)

    workload = Workload(key="w", title="w", argv=("true",), small_argv=("true",),
                        small_title="w")
    every, anchor = Tool("every", timed), Tool("anchor", timed, max_rounds=3)
    ctx = BenchContext(runs=5, quick=False, scratch=tmp_path)
    samples = measure(workload, [every, anchor], ctx)
    assert len(samples.runs["every"]) == 5
    assert len(samples.runs["anchor"]) == 3
