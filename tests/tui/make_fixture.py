"""Record the replay fixture the TUI tests run on (needs root; run again when the snapshot
format changes): `sudo .venv/bin/python -m tests.tui.make_fixture`.

A real trace of a small workload with known syscalls: getppid, failing openat (ENOENT),
nanosleep (12 of 50 ms), a child that exits 3, and a thread pool; failed events plus 1 in 20
sampled.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tracing.engine.tracer import TraceConfig, Tracer
from tracing.model.selection import EventSelection
from tracing.model.stats import Snapshot
from tracing.session.replay import save_snapshots

HERE = Path(__file__).resolve().parent
FIXTURE = HERE / "data" / "session.jsonl.gz"
THREADS = (
    "import os, threading\n"
    "ts = [threading.Thread(target=lambda: [os.getppid() for _ in range(300)])"
    " for _ in range(3)]\n"
    "[t.start() for t in ts]; [t.join() for t in ts]\n"
)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        workload = Path(tmp) / "workload"
        source = HERE.parent / "ebpf" / "workload.c"
        subprocess.run(["gcc", "-O2", "-o", str(workload), str(source)], check=True)
        script = (f"{workload} getppid 5000; {workload} enoent 25; "
                  f"({workload} sleep 12 50; exit 3); {sys.executable} -c '{THREADS}'; "
                  f"{workload} sleep 4 60; {workload} getppid 2000")
        snapshots: list[Snapshot] = []
        tracer = Tracer(TraceConfig(command=("/bin/sh", "-c", script),
                                    events=EventSelection(failed=True, sample_n=20),
                                    command_stdout=os.open(os.devnull, os.O_WRONLY)),
                        snapshots.append)
        tracer.start()
        tracer.join(60)
    if tracer.error is not None:
        raise tracer.error
    save_snapshots(FIXTURE, snapshots)
    print(f"wrote {FIXTURE}: {len(snapshots)} snapshots, "
          f"{snapshots[-1].total_count} syscalls")
    return 0


if __name__ == "__main__":
    sys.exit(main())
