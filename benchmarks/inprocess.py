"""Tracing a command with the engine API in this process, keeping only what benchmarks need
from the snapshots (holding every snapshot would cost memory at high event rates)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tracing.model.selection import EventSelection
    from tracing.model.stats import Snapshot

TRACE_TIMEOUT_S = 300


@dataclass
class TraceOutcome:
    first: Snapshot | None = None
    last: Snapshot | None = None
    snapshots: int = 0
    events: int = 0  # individual syscall events that reached snapshots
    stdout: str = ""  # what the traced command printed

    def __call__(self, snapshot: Snapshot) -> None:
        if self.first is None:
            self.first = snapshot
        self.last = snapshot
        self.snapshots += 1
        self.events += len(snapshot.events)


def trace_command(argv: list[str], events: EventSelection, scratch: Path,
                  also: Callable[[Snapshot], None] | None = None) -> TraceOutcome:
    """Trace `argv` to its end; raises whatever the tracer raised. `also` sees every
    snapshot too (a journal, to measure what it costs the drain)."""
    from tracing.engine.tracer import TraceConfig, Tracer

    outcome = TraceOutcome()
    out_path = scratch / "traced.stdout"
    with open(out_path, "w+") as out:
        config = TraceConfig(
            command=tuple(argv),
            user=str(os.getuid()),
            events=events,
            command_stdout=out.fileno(),
        )
        def deliver(snapshot: Snapshot) -> None:
            outcome(snapshot)
            if also is not None:
                also(snapshot)

        tracer = Tracer(config, deliver)
        tracer.start()
        if not tracer.join(timeout=TRACE_TIMEOUT_S):
            tracer.stop()
            tracer.join(timeout=30)
            raise RuntimeError(f"{argv[0]} was still running after {TRACE_TIMEOUT_S} s")
        if tracer.error is not None:
            raise tracer.error
        out.seek(0)
        outcome.stdout = out.read()
    return outcome
