"""The tracing engine: loads the program, manages targets, and runs the worker thread that
drains the ring buffers and reads the aggregates each tick into a Snapshot.

Each tick's event records also go through a FileTracker (tracing.model.file_tracker), with
the process events, in the order they happened: it keeps the targets' descriptor tables
(seeded from /proc at attach), names each record's descriptor and counts I/O per file.
Only the records the user's selection keeps (EVF_SELECTED) become the snapshot's events.

The worker only calls `on_snapshot`; whoever receives it (the TUI, `record`, the store)
decides what to do with it in its own thread.
"""

from __future__ import annotations

import platform
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import chain

import numpy as np

from syscall_tables import canonical_arch
from tracing.decode.argspec import load_specs
from tracing.decode.sockaddr import short_address
from tracing.engine import tracefs
from tracing.engine.bpf_stats import BpfCostMeter
from tracing.engine.inflight import MAP_NAME as INFLIGHT_MAP
from tracing.engine.inflight import InFlightWatch
from tracing.engine.program import EngineOptions, SyscallProgram
from tracing.errors import UserError
from tracing.model.captures import EVF_SELECTED
from tracing.model.file_tracker import FileTracker
from tracing.model.paths import PathTable
from tracing.model.probes import probe_names
from tracing.model.selection import EventSelection
from tracing.model.snapshots import SnapshotBuilder
from tracing.model.stats import (
    ExitStatus,
    ProcEvent,
    ProcKind,
    Snapshot,
    TraceState,
    no_events,
)
from tracing.model.timing import Timing
from tracing.net.containers import BackgroundResolver, ContainerResolver
from tracing.system import fd_seed
from tracing.system.processes import ProcessTracker
from tracing.system.targets import BoundPid, LaunchedCommand, RunAs, run_as
from tracing.system.terminal_relay import CommandTerminal

SnapshotCallback = Callable[[Snapshot], None]
ErrorCallback = Callable[[BaseException], None]
MAX_PERIOD_S = 2.0
# Between ticks the records received are taken in at most this often: a tick then handles a
# short stretch of them, and the ring buffer (not drained while a tick runs) never fills
# because a tick had a long stretch to go through.
ABSORB_S = 0.05


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
    timing: Timing = Timing.EXACT  # every call timed, a sample of them, or none (--timing)
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
        self.paths = PathTable()  # shared with every snapshot (append-only)
        self._files = FileTracker(load_specs(), self.arch, self.paths, short_address)
        self.selection = config.events  # in force; a new one waits in _new_selection
        self._new_selection: EventSelection | None = None
        self._selection_lock = threading.Lock()
        # Taken in since the last tick: process events, and the selected events with their
        # captured fields.
        self._proc_taken: list[ProcEvent] = []
        self._kept: list[tuple[np.ndarray, Sequence[bytes]]] = []
        self._inflight = InFlightWatch(self.arch)  # the calls the threads are in
        self._inflight_watched = threading.Event()  # read them each second (the view is open)
        self._proc_drops = 0  # process events lost so far (kernel counter)
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
            timing=self.config.timing,
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
        # Issue 18: BPF run-time statistics on while tracing (off again when the meter closes
        # or the process ends, however): the programs' own kernel cost in every snapshot.
        self._bpf_cost = BpfCostMeter.open(self._program.program_fds(),
                                           self._program.exit_only)
        self._builder = SnapshotBuilder(
            start_ns, start_wall, self.arch, self.config.describe_targets(),
            sample_hz=self.config.sample_hz, probes=probe_names(self.config.uprobes),
            tcp_monitored=options.tcp, paths=self.paths, timing=self.config.timing,
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
            self._seed(bound.pid)
        if self._program.tcp is not None and self._bound:
            # Their TCP sockets from before the trace (looked up on a thread of its own).
            self._program.tcp.attach_existing([bound.pid for bound in self._bound])
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
            # Counted from its own execve: what the launcher does before is not the command's.
            self._program.set_target(self.command.pid, at_exec=True)
            self._tracker.add_root(self.command.pid, start_ns)
            self._seed(self.command.pid)  # its terminal's 0, 1, 2 (the rest close at exec)
            self.command.release()
        except BaseException:
            self.command.abandon()
            raise

    def _seed(self, pid: int) -> None:
        """A target's descriptors as it is attached (the calls it makes keep them current)."""
        fds = fd_seed.read_fds(pid)
        self._files.seed(pid, fds, fd_seed.read_cloexec(pid, list(fds)))

    def set_selection(self, selection: EventSelection) -> None:
        """Switch the event selection (from any thread): the kernel gets it at the next
        tick."""
        with self._selection_lock:
            self._new_selection = selection

    def watch_inflight(self, on: bool) -> None:
        """Read the calls in flight each second (on: someone looks at them) or only at stop
        (off, the default: a read of thousands of threads costs the engine thread tens of
        ms). From any thread."""
        if on:
            self._inflight_watched.set()
        else:
            self._inflight_watched.clear()

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
        absorbed = time.monotonic()
        try:
            while True:
                program.poll_until(min(next_tick, absorbed + ABSORB_S))
                now = time.monotonic()
                if now < next_tick and not self._stop.is_set():
                    if now - absorbed >= ABSORB_S:
                        self._absorb(program)
                        absorbed = now
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
            self._bpf_cost.close()
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
        self._apply_selection(program)
        # Taken together: the same poll drained both, so they cover the same stretch of
        # time, which the FileTracker puts back in order.
        fresh = program.take_proc_events()
        records, data = _take_events(program)
        proc_events, self._proc_taken = self._proc_taken + fresh, []
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
            fresh += late
            records, data = _joined((records, data), _take_events(program))
        if all_gone:
            self.state = TraceState.EXITED
        elif final:
            self.state = TraceState.STOPPED
        self._take_in(records, data, fresh)
        last = all_gone or final
        self._keep_up(program, last)
        events, event_data = self._settle_files(program, proc_events)
        self._keep_up(program, last)
        # A reused pid's new entries add to what the builder holds of the old ones.
        changes = program.read_changes(self._builder.total_of)
        self._tracker.note_threads((k.pid, k.tid) for k in changes)
        processes = self._tracker.snapshot()
        samples = program.read_samples(processes, final=last)
        self._keep_up(program, last)
        inflight = self._inflight.read(  # --timing off keeps no slots: None reads /proc
            None if self.config.timing == Timing.OFF else program.map_fd(INFLIGHT_MAP),
            sorted(self._tracker.alive), processes, self._builder.start_ts_ns, last,
            self._inflight_watched.is_set())
        drops = program.read_drops()
        if drops.proc_events > self._proc_drops:  # names of running threads may be stale
            self._proc_drops = drops.proc_events
            self._tracker.note_lost_events()
        snapshot = self._builder.build(
            ts_ns=time.monotonic_ns(),
            wall_time=time.time(),
            state=self.state,
            changes=changes,  # their changes: from the totals the builder holds
            events=events,
            event_data=event_data,
            files=self._files.files(),
            selection=self.selection,
            proc_events=proc_events,
            processes=processes,
            drops=drops,
            tracer_cpu_s=time.thread_time(),  # the worker thread: the tracer's own cost
            target_exit=target_exit,
            samples=samples,
            samples_until_ns=program.samples_until_ns(),
            connections=program.read_connections(),
            inflight=inflight,
            notices=program.take_notices() + self._bpf_cost.take_notices(),
            bpf=self._bpf_cost.read(),
        )
        # Exited threads' final values are in this snapshot: the kernel map can let them go.
        program.retire({(e.pid, e.tid) for e in proc_events if e.kind == ProcKind.EXIT},
                       {e.pid for e in proc_events if e.kind == ProcKind.EXIT and e.process_gone})
        self.last_snapshot = snapshot
        self.on_snapshot(snapshot)
        return all_gone or final

    @staticmethod
    def _keep_up(program: SyscallProgram, last: bool) -> None:
        """Within a tick: take what arrived so far (kept for the next tick). At high event
        rates a tick lasts a good part of what the ring buffer holds; the last tick has
        taken everything already."""
        if not last:
            program.drain(time.monotonic())

    def _apply_selection(self, program: SyscallProgram) -> None:
        with self._selection_lock:
            new, self._new_selection = self._new_selection, None
        if new is None:
            return
        program.set_selection(new)
        self.selection = new

    def _absorb(self, program: SyscallProgram) -> None:
        """Between ticks: take in what was received so far."""
        fresh = program.take_proc_events()
        records, data = _take_events(program)
        self._proc_taken += fresh
        self._take_in(records, data, fresh)

    def _take_in(self, records: np.ndarray, data: Sequence[bytes],
                 proc_events: Sequence[ProcEvent]) -> None:
        """Records and process events into the descriptor tables and per-file totals (in
        the order they happened); the selected events kept for the next snapshot."""
        if not self.config.follow:  # children are not traced: no table of theirs to copy
            proc_events = [e for e in proc_events if e.kind != ProcKind.FORK]
        self._files.apply_batch(records, data, proc_events)
        if len(records):
            self._kept.append(_selected(records, data))

    def _settle_files(self, program: SyscallProgram, proc_events: Sequence[ProcEvent]
                      ) -> tuple[np.ndarray, tuple[bytes, ...]]:
        """At a tick: the kernel's live per-descriptor totals and the exited processes'
        last ones into the per-file totals; the events kept since the last tick."""
        self._files.live(program.read_fd_io())
        gone = {e.pid for e in proc_events if e.kind == ProcKind.EXIT and e.process_gone}
        # Processes whose exit event was lost: their tables and kernel totals go as well.
        gone |= self._files.retain_now_and_then(self._tracker.alive, time.monotonic())
        if gone:
            finals = program.take_fd_io(gone)
            for pid in sorted(gone):
                self._files.process_gone(pid, finals.get(pid, {}))
        kept, self._kept = self._kept, []
        return _concatenated(kept)

    def _command_exit(self) -> ExitStatus | None:
        if self.command is None:
            return None
        status = self.command.poll()
        if status is None:
            return None
        exit_status = ExitStatus.from_wait_status(status)
        self._tracker.set_exit(self.command.pid, exit_status, time.monotonic_ns())
        return exit_status


Batch = tuple[np.ndarray, Sequence[bytes]]


def _take_events(program: SyscallProgram) -> Batch:
    """The records received since the last call (writable: the FileTracker names their
    descriptors) and their captured fields."""
    records, data = program.take_events()
    if not records.flags.writeable:
        records = records.copy()
    return records, data if len(data) == len(records) else ()


def _joined(first: Batch, second: Batch) -> Batch:
    if not len(second[0]):
        return first
    if not len(first[0]):
        return second
    data: Sequence[bytes] = ()
    if first[1] or second[1]:  # one without captures: b"" for each of its records
        data = [*(first[1] or [b""] * len(first[0])), *(second[1] or [b""] * len(second[0]))]
    return np.concatenate((first[0], second[0])), data


def _selected(records: np.ndarray, data: Sequence[bytes]) -> tuple[np.ndarray, Sequence[bytes]]:
    """The records the user's selection keeps (the rest were bookkeeping), read-only, and
    their captured fields."""
    keep = np.flatnonzero(records["flags"] & EVF_SELECTED)
    if len(keep) == len(records):
        events, kept = records, data  # made a tuple once, in _concatenated
    else:
        events = records[keep]
        kept = tuple(map(data.__getitem__, keep.tolist())) if data else ()
    events.setflags(write=False)
    return events, kept


def _concatenated(parts: list[tuple[np.ndarray, Sequence[bytes]]]
                  ) -> tuple[np.ndarray, tuple[bytes, ...]]:
    """Several stretches of selected events (and their captures) as one, read-only."""
    if not parts:
        return no_events(), ()
    if len(parts) == 1:
        return parts[0][0], tuple(parts[0][1])
    events = np.concatenate([p[0] for p in parts])
    events.setflags(write=False)
    if not any(p[1] for p in parts):
        return events, ()
    # chain: no Python step per event (hundreds of thousands a tick at high rates)
    data = tuple(chain.from_iterable(p[1] or (b"",) * len(p[0]) for p in parts))
    return events, data
