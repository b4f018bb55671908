"""What BPF run-time statistics cost, and whether the ns/call sikte-tui shows is what a
benchmark measures (issue 18).

    sudo .venv/bin/python -m benchmarks.bpf_stats_cost --rounds 5 --calls 1000000

Interleaved rounds of one workload that makes N getppid calls (tests/ebpf/workload.c,
"wait-then": it waits until the tracer is attached): untraced, then traced with BPF
statistics as sikte-tui runs by default (SIKTE_BPF_STATS=sampled: on a twentieth of the
time), always on, and off. Each run's figure is the workload's own CPU time (user + system, from
wait4), so the tracer's user-space work is not in it. Printed, as medians over the rounds:
ns per call untraced, the extra ns per call traced in each statistics mode (always - off is
the statistics' own cost), and the figure sikte-tui shows (BPF run time per syscall entered,
sampled mode) beside the extra ns per call the benchmark measures in that mode.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

from tracing.engine import bpf_stats
from tracing.engine.tracer import TraceConfig, Tracer
from tracing.model import bpf_cost
from tracing.model.stats import Snapshot

WORKLOAD_C = Path(__file__).resolve().parent.parent / "tests" / "ebpf" / "workload.c"


def _cpu_ns(pid: int) -> int:
    _, status, usage = os.wait4(pid, 0)
    if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        raise RuntimeError(f"workload ended with status {status:#x}")
    return round((usage.ru_utime + usage.ru_stime) * 1e9)


def run_once(binary: str, calls: int, mode: str) -> tuple[int, Snapshot | None]:
    """One run: "untraced" or a SIKTE_BPF_STATS mode -> the workload's CPU ns, last
    snapshot."""
    proc = subprocess.Popen([binary, "wait-then", str(calls)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdout.readline()  # "ready"
    tracer = None
    snapshots: list[Snapshot] = []
    if mode != "untraced":
        config = TraceConfig(pids=(proc.pid,), sample_hz=0, tcp=False, docker=False)
        tracer = Tracer(config, on_snapshot=snapshots.append)
        os.environ[bpf_stats.MODE_VARIABLE] = mode
        tracer.start()
    proc.stdin.write(b"x")
    proc.stdin.close()
    cpu = _cpu_ns(proc.pid)
    proc.returncode = 0  # reaped above
    if tracer is not None:
        tracer.stop()
        tracer.join(30)
        if tracer.error is not None:
            raise tracer.error
    return cpu, snapshots[-1] if snapshots else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=1_000_000)
    args = parser.parse_args()
    binary = str(Path(tempfile.mkdtemp(prefix="bpf-stats-cost-")) / "workload")
    subprocess.run(["gcc", "-O2", "-o", binary, str(WORKLOAD_C)], check=True)
    modes = ("untraced", bpf_stats.SAMPLED, bpf_stats.ALWAYS, bpf_stats.OFF)
    cpu: dict[str, list[float]] = {mode: [] for mode in modes}
    shown: list[float] = []
    for r in range(args.rounds):
        for mode in modes:
            ns, last = run_once(binary, args.calls, mode)
            cpu[mode].append(ns / args.calls)
            if mode == bpf_stats.SAMPLED and last is not None:
                rates = bpf_cost.since_start(last)
                if rates is not None and rates.ns_per_call is not None:
                    shown.append(rates.ns_per_call)
        print(f"round {r + 1}: " + ", ".join(f"{m} {v[-1]:.0f} ns/call" for m, v in cpu.items())
              + (f", shown {shown[-1]:.0f} ns/call" if shown else ""), flush=True)
    base = statistics.median(cpu["untraced"])
    extra = {mode: statistics.median(cpu[mode]) - base for mode in modes[1:]}
    print(f"untraced: {base:.0f} ns/call (median of {args.rounds})")
    for mode, e in extra.items():
        print(f"traced, statistics {mode}: +{e:.0f} ns/call ({(base + e) / base:.2f}x)")
    print(f"statistics' own cost (always - off): {extra['always'] - extra['off']:+.0f} ns/call; "
          f"as run (sampled - off): {extra['sampled'] - extra['off']:+.0f} ns/call")
    if shown:
        s = statistics.median(shown)
        print(f"shown (BPF run time per syscall entered, sampled): {s:.0f} ns/call; "
              f"shown / measured extra (sampled) = {s / extra['sampled']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
