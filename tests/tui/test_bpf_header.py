"""Issue 18: the header shows the BPF programs' kernel cost beside the tracer CPU, from one
snapshot to the next while statistics were on, since the start while they were off, and
nothing when they were not measured (a replay of an older session)."""

from __future__ import annotations

import dataclasses

from tracing.model.stats import Snapshot
from tui.app import SikteApp

from .conftest import NOW, until
from .test_rates import SIZE, Stepped, header


def with_bpf(s: Snapshot, run_ns: int, runs: int, on_ns: int) -> Snapshot:
    return dataclasses.replace(s, bpf_run_ns=run_ns, bpf_runs=runs, bpf_on_ns=on_ns,
                               bpf_stats=True)


async def test_header_shows_bpf_cost(snapshots: list[Snapshot]) -> None:
    assert [s.state for s in snapshots][:3] == ["tracing"] * 3
    measured = [
        with_bpf(snapshots[0], 1_000_000, 10_000, 250_000_000),
        # 3 ms over 10,000 calls in 0.25 s on: 300 ns/call, 1.2% of a CPU
        with_bpf(snapshots[1], 4_000_000, 20_000, 500_000_000),
        # off in between (no time on added): since the start, 200 ns/call, 0.8%
        with_bpf(snapshots[2], 4_000_000, 20_000, 500_000_000),
    ]
    source = Stepped(measured, first=1)
    app = SikteApp(source=source, clock=lambda: NOW)
    async with app.run_test(size=SIZE) as pilot:
        # The first: since the start, 100 ns/call, 0.4%.
        await until(pilot, lambda: "BPF 100 ns/call · 0.4% CPU" in header(app),
                    seen=lambda: header(app))
        source.push(measured[1])
        await until(pilot, lambda: "BPF 300 ns/call · 1.2% CPU" in header(app),
                    seen=lambda: header(app))
        source.push(measured[2])
        await until(pilot, lambda: "BPF 200 ns/call · 0.8% CPU" in header(app),
                    seen=lambda: header(app))
        line = next(ln for ln in header(app).splitlines() if "BPF" in ln)
        assert line.index("tracer CPU") < line.index("BPF")  # beside the tracer's own CPU


async def test_no_bpf_figure_when_not_measured(snapshots: list[Snapshot]) -> None:
    app = SikteApp(source=Stepped(snapshots, first=3), clock=lambda: NOW)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "tracer CPU" in header(app), seen=lambda: header(app))
        assert "BPF" not in header(app)


async def test_narrow_header_keeps_the_share(snapshots: list[Snapshot]) -> None:
    """Where the long form would be cut (the line is 36 columns before it, the long form
    26), the short one shows both figures."""
    measured = [with_bpf(snapshots[0], 1_000_000, 10_000, 250_000_000)]
    app = SikteApp(source=Stepped(measured, first=1), clock=lambda: NOW)
    async with app.run_test(size=(60, 24)) as pilot:
        await until(pilot, lambda: "BPF 100ns 0.4%" in header(app), seen=lambda: header(app))
