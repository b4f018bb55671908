"""The tracing engine: loads the program, manages targets, and runs the worker thread that
drains the ring buffers and reads the aggregates each tick into a Snapshot.

The worker only calls `on_snapshot`; whoever receives it (the TUI, `record`, the store)
decides what to do with it in its own thread.
"""

from __future__ import annotations

import platform
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from syscall_tables import canonical_arch
from tracing.engine import tracefs
from tracing.engine.program import EngineOptions, EventSelection, SyscallProgram
from tracing.errors import UserError
from tracing.model.probes import probe_names
from tracing.model.snapshots import SnapshotBuilder
from tracing.model.stats import ExitStatus, ProcKind, Snapshot, TraceState
from tracing.net.containers import BackgroundResolver, ContainerResolver
from tracing.system.processes import ProcessTracker
from tracing.system.targets import BoundPid, LaunchedCommand, RunAs, run_as
from tracing.system.terminal_relay import CommandTerminal

SnapshotCallback = Callable[[Snapshot], None]
ErrorCallback = Callable[[BaseException], None]
MAX_PERIOD_S = 2.0


@dataclass(frozen=True)
class TraceConfig:
    pids: tuple[int, ...] = ()
    command: tuple[str, ...] = ()
    user: str | None = None
    follow: bool = True
    events: EventSelection = field(default_factory=EventSelection)
    tick_hz: float = 4.0
    ringbuf_pages: int = 1024
    sample_hz: int = 99  # on-CPU stack samples per second and CPU (0: none)
    uprobes: tuple[str, ...] = ()  # "BINARY_OR_LIB:FUNCTION" probes counted like syscalls
    tcp: bool = True  # follow the targets' TCP connections (--disable-tcp-mon: off)
    docker: bool = True  # name containers from the Docker Engine API (--disable-docker-mon)
    # The launched command's standard fds; None: ours if it is not a terminal, else its own
    # terminal (never ours: see tracing/system/terminal_relay.py).
    command_stdin: int | None = None
    command_stdout: int | None = None
    command_stderr: int | None = None
    # That terminal; None: a new one whose output is dropped. Not compared or hashed.
    terminal: CommandTerminal | None = field(default=None, compare=False)

    def describe_targets(self) -> tuple[str, ...]:
        described = tuple(f"pid {p}" for p in self.pids)
        if self.command:
            described += (" ".join(self.command),)
        return described


class Tracer:
    """One trace session. `start()` raises UserError for bad targets or a failed load;
    afterwards snapshots arrive through `on_snapshot` from the worker thread. Should the
    worker fail later, it ends, keeps the error in `.error` and calls `on_error` (from the
    worker thread, after the program is closed)."""

    def __init__(self, config: TraceConfig, on_snapshot: SnapshotCallback,
                 on_error: ErrorCallback | None = None) -> None:
        if not config.pids and not config.command:
            raise UserError("nothing to trace: give --pid PID or -- COMMAND")
        self.config = config
        self.on_snapshot = on_snapshot
        self.on_error = on_error
        self.arch = canonical_arch(platform.machine())
        self.command: LaunchedCommand | None = None
        self.state = TraceState.STARTING
        self._stop = threading.Event()
        self._reset = threading.Event()
        self._thread: threading.Thread | None = None
        self._program: SyscallProgram | None = None
        # One resolver for the process views and the connections: they share its caches.
        # On a thread of its own: the engine thread only reads its cache (a miss is answered
        # on a later tick), and stopping never waits for it (a slow Docker socket).
        self._containers = BackgroundResolver(ContainerResolver(docker=config.docker))
        self._tracker = ProcessTracker(self._containers.label_of_pid)
        self.last_snapshot: Snapshot | None = None
        self.error: BaseException | None = None

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        # Each PID is pinned to the process checked here: a number reused while the program
        # loads is caught after it is in the target map (BoundPid.verify).
        self._bound = [BoundPid(pid) for pid in self.config.pids]
        user = run_as(self.config.user) if self.config.command else None
        options = EngineOptions(
            follow=self.config.follow,
            events=self.config.events,
            ringbuf_pages=self.config.ringbuf_pages,
            sample_hz=self.config.sample_hz,
            uprobes=self.config.uprobes,
            tcp=self.config.tcp and tracefs.ensure_mounted() is not None
            and tracefs.has_event("sock", "inet_sock_set_state"),
        )
        self._program = SyscallProgram(options, self.arch, self._containers)
        start_ns, start_wall = time.monotonic_ns(), time.time()
        try:
            self._add_targets(start_ns, user)
        except BaseException:
            self._program.close()
            self._containers.close()
            raise
        finally:
            for bound in self._bound:
                bound.close()
        self._builder = SnapshotBuilder(
            start_ns, start_wall, self.arch, self.config.describe_targets(),
            sample_hz=self.config.sample_hz, probes=probe_names(self.config.uprobes),
            tcp_monitored=options.tcp,
        )
        self.state = TraceState.TRACING
        self._thread = threading.Thread(target=self._run, name="sikte-tracer", daemon=True)
        self._thread.start()

    def _add_targets(self, start_ns: int, user: RunAs | None) -> None:
        assert self._program is not None
        for bound in self._bound:
            self._program.set_target(bound.pid)
            bound.verify()  # it may have exited while the program loaded
            self._tracker.add_root(bound.pid, start_ns)
        if self.config.command:
            assert user is not None
            self._launch(start_ns, user)

    def _launch(self, start_ns: int, user: RunAs) -> None:
        assert self._program is not None
        c = self.config
        terminal = c.terminal
        if terminal is None:
            terminal = CommandTerminal()
            terminal.relay_output(None)
        try:
            self.command = LaunchedCommand(
                c.command, user, terminal, (c.command_stdin, c.command_stdout, c.command_stderr))
        finally:
            terminal.close_slave()  # the launcher holds it now (or nobody: EIO ends the relay)
        try:
            self._program.set_target(self.command.pid)
            self._tracker.add_root(self.command.pid, start_ns)
            self.command.release()
        except BaseException:
            self.command.abandon()
            raise

    def stop(self) -> None:
        """Ask the worker to take a last snapshot and finish; returns at once."""
        self._stop.set()

    def reset(self) -> None:
        """Start the cumulative counts from zero at the next tick."""
        self._reset.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker to end; True when it has."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- the worker ------------------------------------------------------------------------

    def _run(self) -> None:
        program = self._program
        assert program is not None
        fastest = 1.0 / self.config.tick_hz
        period = fastest
        next_tick = time.monotonic() + period
        try:
            while True:
                program.poll_until(next_tick)
                if time.monotonic() < next_tick and not self._stop.is_set():
                    continue
                started = time.monotonic()
                finished = self._tick(final=self._stop.is_set())
                # A tick that costs more than a fifth of its period (thousands of entries
                # changing at once) spaces the next ones out, up to MAX_PERIOD_S, so the
                # drain and the UI keep their share of the interpreter.
                period = min(MAX_PERIOD_S, max(fastest, 5 * (time.monotonic() - started)))
                next_tick = max(next_tick + period, time.monotonic() + period / 2)
                if finished:
                    break
        except BaseException as err:  # surfaced to the caller through .error and on_error
            self.error = err
        finally:
            try:
                program.close()
            except Exception as err:
                self.error = self.error or err
            self._containers.close()  # returns at once; a Docker request in flight ends
        if self.error is not None and self.on_error is not None:
            self.on_error(self.error)

    def _tick(self, final: bool) -> bool:
        program = self._program
        assert program is not None
        if self._reset.is_set():
            self._reset.clear()
            self._builder.reset()
        proc_events = program.take_proc_events()
        self._tracker.apply(proc_events, self.config.follow)
        target_exit = self._command_exit()
        if not proc_events:
            self._tracker.prune_vanished()
        all_gone = not self._tracker.alive
        if all_gone or final:
            # The last snapshot: take everything still in the buffers. With the targets gone
            # nothing more is produced; stopped while they run, half a second bounds it.
            program.drain(float("inf") if all_gone else time.monotonic() + 0.5)
            late = program.take_proc_events()
            self._tracker.apply(late, self.config.follow)
            proc_events += late
        if all_gone:
            self.state = TraceState.EXITED
        elif final:
            self.state = TraceState.STOPPED
        changes, deltas = program.read_changes()
        self._tracker.note_threads((k.pid, k.tid) for k in changes)
        processes = self._tracker.snapshot()
        samples = program.read_samples(processes, final=all_gone or final)
        snapshot = self._builder.build(
            ts_ns=time.monotonic_ns(),
            wall_time=time.time(),
            state=self.state,
            changes=changes,
            deltas=deltas,
            events=program.take_events(),
            proc_events=proc_events,
            processes=processes,
            drops=program.read_drops(),
            tracer_cpu_s=time.thread_time(),  # the worker thread: the tracer's own cost
            target_exit=target_exit,
            samples=samples,
            samples_until_ns=program.samples_until_ns(),
            connections=program.read_connections(),
        )
        # Exited threads' final values are in this snapshot: the kernel map can let them go.
        program.retire({(e.pid, e.tid) for e in proc_events if e.kind == ProcKind.EXIT},
                       {e.pid for e in proc_events if e.kind == ProcKind.EXIT and e.process_gone})
        self.last_snapshot = snapshot
        self.on_snapshot(snapshot)
        return all_gone or final

    def _command_exit(self) -> ExitStatus | None:
        if self.command is None:
            return None
        status = self.command.poll()
        if status is None:
            return None
        exit_status = ExitStatus.from_wait_status(status)
        self._tracker.set_exit(self.command.pid, exit_status, time.monotonic_ns())
        return exit_status
