"""Run by test_churn.py in a process of its own (its memory is the tracer's): trace a shell
that starts N short processes as fast as it can, as `sikte-tui record` does (the tracer and
the session journal), and print one JSON object: what the last snapshot counts, the exits,
the drops, and the peak resident memory of the whole process (VmHWM: the compile's own peak
included; the peak as the program was loaded is reported apart, as `load_peak_mb`).

    python -m tests.ebpf.churn_harness N JOURNAL_PATH [SAMPLE_HZ]
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from tracing.engine.tracer import TraceConfig, Tracer
from tracing.model.report import syscall_rows
from tracing.model.snapshots import FOLDED_PID, folded_count
from tracing.record import record
from tracing.session.journal import JournalOptions, start_journal

LOOP = "i=0; while [ $i -lt {n} ]; do /bin/true; i=$((i+1)); done"


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def main(n: int, journal_path: Path, sample_hz: int) -> None:
    config = TraceConfig(command=("/bin/sh", "-c", LOOP.format(n=n)), sample_hz=sample_hz)
    journal = start_journal(JournalOptions(db_path=journal_path), config.describe_targets(), {})
    load_peak: list[float] = []

    def started(_tracer: Tracer) -> None:
        load_peak.append(_status_mb("VmHWM"))

    try:
        _tracer, last = record(config, on_started=started, on_snapshot=journal.put)
    finally:
        journal.close()
    peak = _status_mb("VmHWM")
    counts: dict[str, int] = {}
    for row in syscall_rows(last):
        counts[row.name] = counts.get(row.name, 0) + row.stats.count
    folded = folded_count(last.processes)
    processes = [p for p in last.processes.values() if p.pid != FOLDED_PID]
    print(json.dumps({
        "counts": counts,
        "processes": len(processes),  # shown one by one
        "folded_processes": folded,
        "without_exit": sorted(p.pid for p in processes if p.exit is None),
        "exit_codes": sorted({p.exit.code for p in processes if p.exit is not None},
                             key=str),
        "drops": dataclasses.asdict(last.drops),
        "entries": len(last.stats),
        "folded_entries": sum(1 for k in last.stats if k.pid == FOLDED_PID),
        "peak_mb": round(peak, 1),
        "load_peak_mb": round(load_peak[0], 1) if load_peak else None,
    }))


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 99)
