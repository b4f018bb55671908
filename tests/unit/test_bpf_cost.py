"""The BPF cost figures (tracing/model/bpf_cost.py) and the meter's on/off stretches
(tracing/engine/bpf_stats.py) with a made-up clock and kernel."""

from __future__ import annotations

import dataclasses
import json
from types import MappingProxyType

import pytest

from tracing.engine import bpf_stats
from tracing.engine.bpf_stats import BpfCostMeter
from tracing.model import bpf_cost
from tracing.model.bpf_cost import BpfTotals
from tracing.model.stats import Drops, Snapshot, TraceState


def snapshot(ts_ns: int = 3_000_000_000, run_ns: int = 0, runs: int = 0, on_ns: int = 0,
             stats: bool = True) -> Snapshot:
    return Snapshot(
        seq=1, ts_ns=ts_ns, wall_time=0.0, start_ts_ns=1_000_000_000, start_wall_time=0.0,
        arch="x86_64", state=TraceState.TRACING, stats=MappingProxyType({}),
        interval=MappingProxyType({}), interval_s=1.0, processes=MappingProxyType({}),
        events=None, proc_events=(), drops=Drops(), tracer_cpu_s=0.0,  # type: ignore[arg-type]
        bpf_run_ns=run_ns, bpf_runs=runs, bpf_on_ns=on_ns, bpf_stats=stats)


def test_figures_since_the_start_are_over_the_time_statistics_were_on() -> None:
    # 0.5 s on out of 2 s: 20 ms in our programs over 100,000 calls.
    s = snapshot(run_ns=20_000_000, runs=100_000, on_ns=500_000_000)
    rates = bpf_cost.since_start(s)
    assert rates == bpf_cost.BpfRates(200.0, 4.0)
    assert bpf_cost.header_text(rates) == "BPF 200 ns/call · 4.0% CPU"
    assert bpf_cost.header_text(rates, short=True) == "BPF 200ns 4.0%"
    assert bpf_cost.bpf_json(s) == {"run_ns": 20_000_000, "runs": 100_000,
                                    "measured_ns": 500_000_000, "ns_per_call": 200.0,
                                    "cpu_pct": 4.0}
    assert bpf_cost.summary_line(s) == (
        "BPF cost: 200 ns per syscall in the kernel, 4.00% of a CPU (measured over 0.50 s of "
        "the trace: 20.0 ms in our programs, 100,000 syscalls entered on the machine)")
    json.dumps(bpf_cost.bpf_json(s))  # plain JSON


def test_not_measured_is_unknown_not_zero() -> None:
    off = snapshot(stats=False)
    assert bpf_cost.since_start(off) is None
    assert bpf_cost.header_between(None, off) is None
    assert bpf_cost.bpf_json(off) is None
    assert "not measured" in bpf_cost.summary_line(off)
    # On, but no syscall in the stretch: no per-call figure, a 0% share.
    idle = snapshot(run_ns=0, runs=0, on_ns=10_000_000)
    assert bpf_cost.header_between(None, idle) == ("BPF - ns/call · 0.0% CPU", "BPF -ns 0.0%")
    assert bpf_cost.bpf_json(idle) == {"run_ns": 0, "runs": 0, "measured_ns": 10_000_000,
                                       "ns_per_call": None, "cpu_pct": 0.0}


def test_header_is_from_snapshot_to_snapshot_while_on_else_since_the_start() -> None:
    a = snapshot(ts_ns=2_000_000_000, run_ns=1_000_000, runs=10_000, on_ns=250_000_000)
    b = snapshot(ts_ns=2_250_000_000, run_ns=4_000_000, runs=20_000, on_ns=500_000_000)
    assert bpf_cost.between(a, b) == bpf_cost.BpfRates(300.0, 1.2)
    # Off in between (no time on added): the figure since the start, not nothing.
    c = dataclasses.replace(b, ts_ns=2_500_000_000)
    assert bpf_cost.between(b, c) == bpf_cost.BpfRates(200.0, 0.8)
    # Another trace's snapshot before it: since the start.
    other = dataclasses.replace(a, start_ts_ns=5)
    assert bpf_cost.between(other, b) == bpf_cost.since_start(b)


class FakeKernel:
    """Statistics held by fds; each read of a program's counters adds what ran since."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.open_fds: set[int] = set()
        self.next_fd = 100
        self.counters = {3: [0, 0], 4: [0, 0]}  # prog fd -> [run_ns, runs]
        monkeypatch.setattr(bpf_stats, "enable_run_stats", self.enable)
        monkeypatch.setattr(bpf_stats, "prog_run_stats", lambda fd: tuple(self.counters[fd]))
        monkeypatch.setattr(bpf_stats.os, "close", self.open_fds.remove)

    def enable(self) -> int:
        self.next_fd += 1
        self.open_fds.add(self.next_fd)
        return self.next_fd

    def run(self, calls: int, enter_ns: int, exit_ns: int) -> None:
        """Calls made: counted only while statistics are on."""
        if self.open_fds:
            self.counters[3][0] += calls * enter_ns
            self.counters[3][1] += calls
            self.counters[4][0] += calls * exit_ns
            self.counters[4][1] += calls


def test_sampled_meter_is_on_a_twentieth_of_the_time_and_measures_only_then(
        monkeypatch: pytest.MonkeyPatch) -> None:
    kernel = FakeKernel(monkeypatch)
    now = [0]
    meter = BpfCostMeter([3], [4], bpf_stats.SAMPLED, clock=lambda: now[0])
    assert meter.enabled and len(kernel.open_fds) == 1  # on from the start
    seen = []
    for _ in range(40):  # 10 s of 0.25 s ticks, 1,000 calls each
        kernel.run(1_000, 60, 40)
        now[0] += 250_000_000
        seen.append(meter.enabled)
        totals = meter.read()
        assert totals is not None
    # On for the first tick (0.25 s), then off for 4.75 s, on again for a tick, ...
    assert seen[0] and not any(seen[1:20]) and seen[20] and not any(seen[21:])
    # What the stretches saw: 2,000 calls at 100 ns over 0.5 s on.
    assert totals == BpfTotals(200_000, 2_000, 500_000_000)
    meter.close()
    assert not kernel.open_fds


def test_always_and_off(monkeypatch: pytest.MonkeyPatch) -> None:
    kernel = FakeKernel(monkeypatch)
    now = [0]
    always = BpfCostMeter([3], [4], bpf_stats.ALWAYS, clock=lambda: now[0])
    for _ in range(20):
        kernel.run(10, 50, 50)
        now[0] += 250_000_000
        assert always.read() == BpfTotals(1_000 * (now[0] // 250_000_000),
                                          10 * (now[0] // 250_000_000), now[0])
    always.close()
    off = BpfCostMeter([3], [4], bpf_stats.OFF, clock=lambda: now[0])
    assert not kernel.open_fds and off.read() is None


def test_a_kernel_that_refuses_gives_no_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse() -> int:
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(bpf_stats, "enable_run_stats", refuse)
    meter = BpfCostMeter.open({"raw_tracepoint__sys_enter": 3, "raw_tracepoint__sys_exit": 4})
    assert meter.read() is None and meter.error == (
        "BPF statistics unavailable: Operation not permitted")
    assert meter.take_notices() == (
        "BPF statistics unavailable: Operation not permitted; the BPF cost is not shown",)
    assert meter.take_notices() == ()  # said once
    meter.close()
    assert BpfCostMeter.open({}).read() is None  # no syscall program: nothing to measure
