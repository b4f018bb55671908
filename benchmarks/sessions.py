"""Sessions: does the journal keep up with 250,000 events/s, how long does exporting 5M events
take, and how many bytes does each event cost in Parquet.

The journal is fed synthetic snapshots at the tracer's pace (4 per second of trace time, each
with a quarter second's events and a realistic set of changed (pid, tid, syscall) entries),
as fast as it takes them: keeping up means writing one second of trace in under a second.
The events are shaped like a real trace's (increasing timestamps, a few syscalls, small
return values and durations, pointer-like arguments), so the Parquet size is meaningful.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from benchmarks.common import BenchContext, BenchResult, Check, Section, fmt_int
from tracing.model.stats import (
    EVENT_DTYPE,
    Drops,
    ProcessInfo,
    Snapshot,
    StatKey,
    SyscallStats,
    TraceState,
    bucket_of,
)

RATE = 250_000  # events per second of trace
TICK_S = 0.25
EXPORT_EVENTS = 5_000_000
TARGET_EXPORT_S = 10.0
TARGET_BYTES = 20.0
SYSCALLS = (0, 1, 3, 9, 257, 262, 110)  # read write close mmap openat newfstatat getppid


def _events(n: int, start_ns: int, rng: np.random.Generator) -> np.ndarray:
    events = np.zeros(n, dtype=EVENT_DTYPE)
    events["ts"] = start_ns + np.cumsum(rng.integers(200, 2000, n))
    events["pid"] = 4242
    events["tid"] = 4242 + rng.integers(0, 4, n)
    events["nr"] = rng.choice(SYSCALLS, n)
    events["ret"] = np.where(rng.random(n) < 0.02, -2, rng.integers(0, 4096, n))
    events["duration_ns"] = rng.lognormal(7.5, 1.0, n).astype(np.uint64)
    events["args"][:, 0] = rng.integers(3, 40, n)
    events["args"][:, 1] = 0x7FFD_0000_0000 + rng.integers(0, 1 << 20, n) * 16
    events["args"][:, 2] = rng.choice([1, 4096, 65536], n)
    events.setflags(write=False)
    return events


def _snapshots(seconds: float, rate: int) -> list[Snapshot]:
    rng = np.random.default_rng(7)
    per_tick = int(rate * TICK_S)
    start = 1_000_000_000_000
    proc = {4242: ProcessInfo(4242, 1, "bench", "/usr/bin/bench", ("bench",), "x86_64")}
    out = []
    for i in range(int(seconds / TICK_S)):
        ts = start + int((i + 1) * TICK_S * 1e9)
        events = _events(per_tick, ts - int(TICK_S * 1e9), rng)
        interval = {}
        for tid in range(4242, 4246):
            for nr in SYSCALLS:
                n = per_tick // (4 * len(SYSCALLS))
                interval[StatKey(4242, tid, nr)] = SyscallStats(
                    n, 0, n * 1800, 300, 90_000, ((bucket_of(1800), n),))
        out.append(Snapshot(
            seq=i + 1, ts_ns=ts, wall_time=1.7e9 + i * TICK_S, start_ts_ns=start,
            start_wall_time=1.7e9, arch="x86_64", state=TraceState.TRACING, stats=interval,
            interval=interval, interval_s=TICK_S, processes=proc, events=events,
            proc_events=(), drops=Drops(), tracer_cpu_s=0.0))
    return out


def _journal_rate(scratch: Path, seconds: float) -> tuple[float, float]:
    """(trace seconds written per wall second, events/s written)."""
    from tracing.session.journal import Journal

    snapshots = _snapshots(seconds, RATE)
    journal = Journal(scratch / f"bench-{time.monotonic_ns()}.sikte.db", {"targets": ["b"]})
    began = time.perf_counter()
    for s in snapshots:
        journal.put(s)
    journal.close(timeout=600)
    took = time.perf_counter() - began
    events = sum(len(s.events) for s in snapshots)
    return seconds / took, events / took


def _export(scratch: Path, events: int) -> tuple[float, float, Path]:
    """(seconds to export, Parquet bytes per event) for a journal of `events` events."""
    from tracing.session.export import export_parquet
    from tracing.session.journal import Journal
    from tracing.session.stored import open_session

    seconds = events / RATE
    path = scratch / f"export-{time.monotonic_ns()}.sikte.db"
    journal = Journal(path, {"targets": ["b"]})
    for s in _snapshots(seconds, RATE):
        journal.put(s)
    journal.close(timeout=600)
    began = time.perf_counter()
    out = export_parquet(open_session(path), scratch / f"{path.stem}-parquet")
    took = time.perf_counter() - began
    size = (out / "events.parquet").stat().st_size
    return took, size / events, out


def _drain_with_journal(ctx: BenchContext, paced: int) -> list[tuple[str, ...]]:
    """Every syscall as an event at `paced`/s, traced without and with a journal."""
    from benchmarks.event_rate import one_rate
    from tracing.session.journal import Journal

    rows: list[tuple[str, ...]] = []
    for label in ("no journal", "journal"):
        journal = (Journal(ctx.scratch / f"drain-{time.monotonic_ns()}.sikte.db", {})
                   if label == "journal" else None)
        r = one_rate(ctx, paced, 1.0 if ctx.quick else 2.0,
                     journal.put if journal is not None else None)
        if journal is not None:
            journal.close(timeout=600)
        rows.append((label, fmt_int(r.offered_per_s), fmt_int(r.received_per_s),
                     fmt_int(r.dropped)))
    return rows


def run(ctx: BenchContext) -> BenchResult:
    seconds = 4.0 if ctx.quick else 20.0
    ctx.log("drain at 200,000 events/s, without and with the journal")
    drain = Section("Event stream with the journal attached (every syscall an event)",
                    ("paced at 200,000/s", "offered /s", "received /s", "dropped"),
                    tuple(_drain_with_journal(ctx, 200_000)))
    export_events = 500_000 if ctx.quick else EXPORT_EVENTS
    ctx.log(f"journal: {seconds:.0f} s of trace at {RATE:,} events/s")
    speed, written = _journal_rate(ctx.scratch, seconds)
    ctx.log(f"export: {export_events:,} events")
    took, per_event, _ = _export(ctx.scratch, export_events)
    rows = (
        ("journal: trace seconds written per second", f"{speed:.1f}x",
         "at least 1x (keeps up)"),
        ("journal: events written per second", fmt_int(written), f"at least {RATE:,}"),
        (f"export of {export_events:,} events to Parquet", f"{took:.1f} s",
         f"at most {TARGET_EXPORT_S:.0f} s for 5,000,000"),
        ("events.parquet bytes per event", f"{per_event:.1f}", f"at most {TARGET_BYTES:.0f}"),
    )
    section = Section(
        "Sessions: journal throughput, export time, Parquet size",
        ("what", "measured", "target"), rows,
        ("The journal is fed synthetic snapshots shaped like a trace's (4 per second, "
         "250,000 events/s) as fast as it takes them, from this process.",
         "Export reads the journal back and writes every table (zstd); the time includes "
         "reading."))
    checks = (
        Check("journal keeps up with 250,000 events/s", f"{written:,.0f} events/s",
              written >= RATE),
        Check(f"export {export_events:,} events in at most "
              f"{TARGET_EXPORT_S * export_events / EXPORT_EVENTS:.0f} s", f"{took:.1f} s",
              took <= TARGET_EXPORT_S * export_events / EXPORT_EVENTS),
        Check("Parquet at most 20 bytes per event", f"{per_event:.1f}",
              per_event <= TARGET_BYTES),
    )
    return BenchResult((section, drain), checks)
