"""Headless recording: trace until a duration passes, the targets exit, or a signal."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tracing.errors import UserError
from tracing.model import Snapshot
from tracing.tracer import TraceConfig, Tracer

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def record(config: TraceConfig, duration_s: float | None = None) -> tuple[Tracer, Snapshot]:
    """Trace to the end and return the tracer and its last snapshot."""
    stop = threading.Event()
    tracer = Tracer(config, on_snapshot=lambda _s: None)
    with _stop_on_signals(stop):
        tracer.start()
        deadline = None if duration_s is None else time.monotonic() + duration_s
        while tracer.running:
            if stop.is_set() or (deadline is not None and time.monotonic() >= deadline):
                tracer.stop()
                break
            stop.wait(0.05)
        if not tracer.join(timeout=30):
            raise UserError("the tracer did not stop within 30 s; what it counted is lost",
                            exit_code=1)
    if tracer.error is not None:
        raise tracer.error
    if tracer.last_snapshot is None:
        raise UserError("tracing ended before the first snapshot", exit_code=1)
    return tracer, tracer.last_snapshot
