"""Headless recording: trace until a duration passes, the targets exit, or a signal.

A launched command is ours: when recording stops early its whole tree gets the stop signal
too (as with `timeout`), then SIGKILL after a short grace, so stopping ends within 2 s even
for a command that ignores the signal. Attached PIDs are left running.

The command runs on a terminal of its own (tracing/system/terminal_relay.py): what it writes there
is relayed to our terminal, and when our stdin is the terminal in the foreground, it is put
in raw mode and each key is forwarded (Ctrl+C reaches the command as SIGINT through its own
terminal, as under ssh or script).
"""

from __future__ import annotations

import dataclasses
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

from tracing.engine.tracer import TraceConfig, Tracer
from tracing.errors import UserError
from tracing.model.stats import Snapshot
from tracing.system.reaper import GRACE_S
from tracing.system.terminal_relay import (
    CommandTerminal,
    is_foreground,
    is_terminal,
    raw_mode,
    write_all,
)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
OUTPUT_GRACE_S = 0.5  # the last output of the command, before the summary


class _StopRequest:
    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal = signal.SIGTERM

    def __call__(self, signum: int, _frame: object) -> None:
        self.signal = signal.Signals(signum)
        self.event.set()


@contextmanager
def _signals(handlers: dict[int, Callable[[int, object], None]]) -> Iterator[None]:
    previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _output_fd(config: TraceConfig) -> int | None:
    """Where the command's terminal output goes: our terminal, if we have one."""
    out = config.command_stdout if config.command_stdout is not None else 1
    return next((fd for fd in (out, 2) if is_terminal(fd)), None)


def _attach_terminal(config: TraceConfig, stack: ExitStack) -> TraceConfig:
    """Give a launched command its terminal, relayed to ours; returns the config to trace."""
    if not config.command or config.terminal is not None:
        return config
    out = _output_fd(config)
    terminal = CommandTerminal(like=next((fd for fd in (0, out) if fd is not None
                                          and is_terminal(fd)), None))
    stack.callback(terminal.close)
    stack.callback(terminal.wait_output, OUTPUT_GRACE_S)
    terminal.relay_output(None if out is None else lambda data: write_all(out, data))
    if config.command_stdin is None and is_terminal(0) and is_foreground(0):
        stack.enter_context(raw_mode(0))
        terminal.forward_input(0)
        stack.enter_context(_signals({signal.SIGWINCH: terminal.sync_size}))
    else:
        terminal.send_eof()  # nobody will type: a read from the terminal ends at once
    return dataclasses.replace(config, terminal=terminal)


def _wait(tracer: Tracer, request: _StopRequest, duration_s: float | None) -> None:
    deadline = None if duration_s is None else time.monotonic() + duration_s
    while tracer.running:
        if request.event.is_set() or (deadline is not None and time.monotonic() >= deadline):
            break
        request.event.wait(0.05)
    else:
        return
    command = tracer.command
    if command is not None:  # its children may outlive it: the whole session is stopped
        command.stop_tree(request.signal)
        # The launcher sends SIGKILL after GRACE_S; the trace ends when the tree is gone.
        grace_end = time.monotonic() + GRACE_S + 0.3
        while tracer.running and time.monotonic() < grace_end:
            request.event.wait(0.02)
    tracer.stop()


def record(config: TraceConfig, duration_s: float | None = None,
           on_started: Callable[[Tracer], None] | None = None,
           on_snapshot: Callable[[Snapshot], None] | None = None) -> tuple[Tracer, Snapshot]:
    """Trace to the end and return the tracer and its last snapshot. `on_snapshot` sees
    every snapshot, from the tracer's thread (the journal queues them)."""
    request = _StopRequest()
    with ExitStack() as stack:
        stack.enter_context(_signals({sig: request for sig in STOP_SIGNALS}))
        tracer = Tracer(_attach_terminal(config, stack),
                        on_snapshot=on_snapshot or (lambda _s: None))
        tracer.start()
        if tracer.command is not None:
            stack.callback(tracer.command.finish)  # leftovers of its tree end with us
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
