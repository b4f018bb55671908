"""Headless recording: trace until a duration passes, the targets exit, or a signal.

A launched command is ours: when recording stops early it gets the stop signal too (as with
`timeout`), and a short grace period to exit so its status is reported. Attached PIDs are
left running.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tracing.errors import UserError
from tracing.model import Snapshot
from tracing.tracer import TraceConfig, Tracer

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
GRACE_S = 3.0


class _StopRequest:
    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal = signal.SIGTERM

    def __call__(self, signum: int, _frame: object) -> None:
        self.signal = signal.Signals(signum)
        self.event.set()


@contextmanager
def _stop_on_signals(request: _StopRequest) -> Iterator[None]:
    previous = {sig: signal.signal(sig, request) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _wait(tracer: Tracer, request: _StopRequest, duration_s: float | None) -> None:
    deadline = None if duration_s is None else time.monotonic() + duration_s
    while tracer.running:
        if request.event.is_set() or (deadline is not None and time.monotonic() >= deadline):
            break
        request.event.wait(0.05)
    else:
        return
    command = tracer.command
    if command is not None and command.poll() is None:
        command.kill(request.signal)
        grace_end = time.monotonic() + GRACE_S
        while tracer.running and time.monotonic() < grace_end:
            time.sleep(0.02)
    tracer.stop()


def record(config: TraceConfig, duration_s: float | None = None,
           on_started: Callable[[Tracer], None] | None = None,
           on_snapshot: Callable[[Snapshot], None] | None = None) -> tuple[Tracer, Snapshot]:
    """Trace to the end and return the tracer and its last snapshot. `on_snapshot` sees
    every snapshot, from the tracer's thread (the journal queues them)."""
    request = _StopRequest()
    tracer = Tracer(config, on_snapshot=on_snapshot or (lambda _s: None))
    with _stop_on_signals(request):
        tracer.start()
        if on_started is not None:
            on_started(tracer)
        _wait(tracer, request, duration_s)
        if not tracer.join(timeout=30):
            raise UserError("the tracer did not stop within 30 s; what it counted is lost",
                            exit_code=1)
    if tracer.error is not None:
        raise tracer.error
    if tracer.last_snapshot is None:
        raise UserError("tracing ended before the first snapshot", exit_code=1)
    return tracer, tracer.last_snapshot
