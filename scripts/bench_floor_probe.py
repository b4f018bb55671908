"""The floor: two empty raw tracepoints on sys_enter and sys_exit, loaded with bcc.

    .venv/bin/python scripts/bench_floor_probe.py

A standalone process that `make bench` starts like it starts syscount-bpfcc; it lives here,
not in benchmarks/, because only tracing/engine/ may import bcc among the packages
(tests/unit/test_layers.py), and nothing imports this.

Prints "Tracing" once both are attached and keeps them until Ctrl+C (or SIGTERM). Every
syscall on the machine then pays the tracepoints' entry and exit and nothing else, which
is what any tracer built on them pays at least; the overhead benchmark runs the workloads
under it like under the other tools (benchmarks/overhead.py).
"""

from __future__ import annotations

import signal
import sys

PROGRAM = """
RAW_TRACEPOINT_PROBE(sys_enter) { return 0; }
RAW_TRACEPOINT_PROBE(sys_exit) { return 0; }
"""


def main() -> int:
    from bcc import BPF

    bpf = BPF(text=PROGRAM)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    print("Tracing (two empty raw tracepoints); Ctrl+C stops", flush=True)
    signal.sigwait({signal.SIGINT, signal.SIGTERM})
    bpf.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
