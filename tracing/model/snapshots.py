"""Turns what the engine reads each tick into immutable Snapshots, and rebases a snapshot on
an earlier one (reset in a replayed session).

Per-file totals (Snapshot.files) stay cumulative since the start through resets and rebases:
the Files view shows the trace's running totals, as `record` stores them.

The engine owns the totals; each tick hands over the changed entries' totals, which the
builder folds into a PersistentMap shared with the snapshots before. Pure: no bcc, no
Textual, no I/O.

The processes themselves are folded likewise (tracing/system/process_fold.py): past a bound,
the oldest exited ones become one entry, FoldedProcesses, under FOLDED_PID.

Memory stays bounded under process churn: the entries of processes that have exited are
kept one by one up to FOLD_AFTER of them; past that, those of the processes that exited
first are folded into one entry per syscall and ABI under pid 0 (FOLDED_PID), so every
per-syscall total stays exact while the detail of long-gone processes is dropped from the
live snapshots. The journal keeps it: it adds up each entry's changes (the intervals), and a
process's entries are folded only in a snapshot after the one that carried their last change.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from itertools import compress
from types import MappingProxyType

import numpy as np

from tracing.model.bpf_cost import BpfTotals
from tracing.model.connections import Connection
from tracing.model.files import FileKey, FileStats
from tracing.model.inflight import InFlightRead
from tracing.model.paths import PathTable
from tracing.model.persistent_map import PersistentMap
from tracing.model.samples import StackSample
from tracing.model.selection import EventSelection
from tracing.model.stats import (
    Drops,
    ExitStatus,
    ProcessInfo,
    ProcEvent,
    ProcKind,
    Snapshot,
    StatKey,
    SyscallStats,
    TraceState,
    merge_stats,
    no_events,
)

# Entries of exited processes held one by one (about 400 bytes each in a snapshot's map);
# once more are held, the oldest processes' ones are folded until a quarter are left (a
# fold costs one pass over the totals: it comes once per 3/4 FOLD_AFTER exited entries).
FOLD_AFTER = 20_000
FOLDED_PID = 0  # the pid (and tid) of folded entries: no traced task has it


@dataclasses.dataclass(frozen=True, slots=True)
class FoldedProcesses(ProcessInfo):
    """The entry of the folded processes (pid FOLDED_PID): how many, and that they ended."""

    count: int = 0


def folded_entry(count: int) -> FoldedProcesses:
    return FoldedProcesses(pid=FOLDED_PID, comm=f"({count:,} exited processes)",
                           exit=ExitStatus(), count=count)


def folded_count(processes: Mapping[int, ProcessInfo]) -> int:
    """How many exited processes a snapshot's processes hold folded (0: none)."""
    entry = processes.get(FOLDED_PID)
    return entry.count if isinstance(entry, FoldedProcesses) else 0


class SnapshotBuilder:
    """Makes each tick's Snapshot from the entries that changed, at a cost proportional to
    them: the totals are a PersistentMap, whose new version shares every unchanged entry
    with the snapshot before (which keeps showing what it showed).

    The totals come from the caller (the engine owns them: its `changes` are cumulative since
    the start); the builder only folds the changed ones into the snapshots' map. `reset()`
    starts the shown totals from zero again (a new epoch): snapshots then show the totals
    since the reset and still carry those since the start (`Snapshot.totals`)."""

    def __init__(self, start_ts_ns: int, start_wall_time: float, arch: str,
                 targets: tuple[str, ...] = (), sample_hz: int = 0,
                 probes: Mapping[int, str] | None = None, tcp_monitored: bool = True,
                 paths: PathTable | None = None, timing: str = "exact") -> None:
        self.paths = paths  # the trace's names of path ids, shared by every snapshot
        self.timing = str(timing)  # copied into every snapshot (a Timing's str is its value)
        self.start_ts_ns = start_ts_ns
        self.start_wall_time = start_wall_time
        self.arch = arch
        self.targets = targets
        self.sample_hz = sample_hz
        self.tcp_monitored = tcp_monitored
        self.probes = MappingProxyType(dict(probes or {}))
        self.epoch = 0
        self._seq = 0
        self._prev_ts_ns = start_ts_ns
        self._totals: PersistentMap[StatKey, SyscallStats] = PersistentMap()  # since the start
        # The totals at the last reset (immutable: kept, not copied), and those since then.
        self._baseline: PersistentMap[StatKey, SyscallStats] = PersistentMap()
        self._since_reset: PersistentMap[StatKey, SyscallStats] | None = None
        # Entries per pid in the totals; processes exited (in order) and the entries they
        # hold; those whose exit came with this build (folded from the next one on).
        self._entries_of: dict[int, int] = {}
        self._exited: dict[int, None] = {}
        self._exited_entries = 0
        self._just_exited: dict[int, None] = {}
        self.fold_after = FOLD_AFTER

    def total_of(self, key: StatKey) -> SyscallStats | None:
        """The total since the start of one entry, while it is held one by one (the engine
        adds a reused pid's new counts to it)."""
        total: SyscallStats | None = self._totals.get(key)
        return total

    def reset(self) -> None:
        self._baseline = self._totals
        self._since_reset = PersistentMap()
        self.epoch += 1

    def _apply(self, changes: Mapping[StatKey, SyscallStats],
               deltas: Mapping[StatKey, SyscallStats] | None) -> Mapping[StatKey, SyscallStats]:
        """Fold the changed totals in; the interval's change (`deltas`, else computed)."""
        before = self._totals
        entries = self._entries_of
        for key in before.missing(changes):
            entries[key.pid] = entries.get(key.pid, 0) + 1
            if key.pid in self._exited:  # a late entry of an exited process
                self._exited_entries += 1
        self._totals = before.updated(changes)
        if self._since_reset is not None:
            self._since_reset = self._since_reset.updated(_since(changes, self._baseline))
        return deltas if deltas is not None else _since(changes, before)

    def build(
        self,
        *,
        ts_ns: int,
        wall_time: float,
        state: TraceState,
        changes: Mapping[StatKey, SyscallStats],
        events: np.ndarray,
        deltas: Mapping[StatKey, SyscallStats] | None = None,
        proc_events: Iterable[ProcEvent],
        processes: Mapping[int, ProcessInfo],
        drops: Drops,
        tracer_cpu_s: float,
        target_exit: ExitStatus | None = None,
        samples: Iterable[StackSample] = (),
        connections: tuple[Connection, ...] = (),
        samples_until_ns: int = 0,
        event_data: tuple[bytes, ...] = (),
        files: Mapping[FileKey, FileStats] | None = None,
        selection: EventSelection | None = None,
        inflight: InFlightRead | None = None,
        notices: tuple[str, ...] = (),
        bpf: BpfTotals | None = None,
    ) -> Snapshot:
        """`changes`: the entries that are new or changed since the last build, cumulative;
        `deltas`: their change since then, when the caller has it (else it is computed).
        `event_data`: the captured fields of each of `events` (() or aligned with them);
        `files`: the per-file totals since the start (immutable: the caller's own)."""
        if event_data and len(event_data) != len(events):
            raise ValueError(f"{len(event_data)} captures for {len(events)} events")
        interval = self._apply(changes, deltas)
        proc_events = tuple(proc_events)
        self._note_exits(proc_events)
        since_reset = self._since_reset
        interval_s = max((ts_ns - self._prev_ts_ns) / 1e9, 1e-9)
        self._prev_ts_ns = ts_ns
        self._seq += 1
        return Snapshot(
            seq=self._seq,
            ts_ns=ts_ns,
            wall_time=wall_time,
            start_ts_ns=self.start_ts_ns,
            start_wall_time=self.start_wall_time,
            arch=self.arch,
            state=state,
            stats=self._totals if since_reset is None else since_reset,
            since_start=None if since_reset is None else self._totals,
            # A dict made for this build (or the caller's deltas, handed over): not copied.
            interval=MappingProxyType(interval if isinstance(interval, dict)
                                      else dict(interval)),
            interval_s=interval_s,
            processes=MappingProxyType(processes),  # the tracker never mutates a handed-out dict
            events=events,
            proc_events=proc_events,
            drops=drops,
            tracer_cpu_s=tracer_cpu_s,
            target_exit=target_exit,
            targets=self.targets,
            epoch=self.epoch,
            samples=tuple(samples),
            samples_until_ns=samples_until_ns,
            connections=connections,
            tcp_monitored=self.tcp_monitored,
            sample_hz=self.sample_hz,
            probes=self.probes,
            event_data=event_data,
            paths=self.paths,
            files=MappingProxyType({}) if files is None else files,
            selection=selection,
            inflight=inflight,
            notices=notices,
            timing=self.timing,
            bpf_run_ns=bpf.run_ns if bpf is not None else 0,
            bpf_runs=bpf.runs if bpf is not None else 0,
            bpf_on_ns=bpf.on_ns if bpf is not None else 0,
            bpf_stats=bpf is not None,
        )

    def _note_exits(self, proc_events: tuple[ProcEvent, ...]) -> None:
        """Processes that exited before this build may be folded now; those that exit in it
        from the next build on (this snapshot carries their final totals, for the journal).
        A pid that starts again (reused) is not folded while it lives."""
        for pid in self._just_exited:
            # Also one without entries yet: under load the kernel's entries of a process can
            # be read a tick after its exit, and they come in then as a late entry of an
            # exited process (kept out, they were never folded: the totals grew for good).
            if pid not in self._exited:
                self._exited[pid] = None
                self._exited_entries += self._entries_of.get(pid, 0)
        self._just_exited = {}
        for e in proc_events:
            if e.kind == ProcKind.EXIT and e.process_gone:
                self._just_exited[e.pid] = None
            elif e.kind == ProcKind.FORK and not e.thread:  # its pid may be a reused one
                self._just_exited.pop(e.tid, None)
                if e.tid in self._exited:
                    del self._exited[e.tid]
                    self._exited_entries -= self._entries_of.get(e.tid, 0)
        if self._exited_entries > self.fold_after:
            self._fold()

    def _fold(self) -> None:
        """Fold the oldest exited processes' entries until a quarter of fold_after are held."""
        pids = set()
        for pid in self._exited:
            if self._exited_entries <= self.fold_after // 4:
                break
            pids.add(pid)
            self._exited_entries -= self._entries_of.pop(pid, 0)
        for pid in pids:
            del self._exited[pid]
        self._totals = _folded(self._totals, pids)
        if self._since_reset is not None:
            self._baseline = _folded(self._baseline, pids)
            self._since_reset = _folded(self._since_reset, pids)


def _folded(totals: PersistentMap[StatKey, SyscallStats],
            pids: set[int]) -> PersistentMap[StatKey, SyscallStats]:
    """The totals with the entries of `pids` added into one per syscall and ABI under
    FOLDED_PID (a new map: the snapshots before keep theirs)."""
    keys, values = list(totals), list(totals.values())
    out = [k.pid in pids or k.pid == FOLDED_PID for k in keys]
    groups: dict[tuple[int, int], list[SyscallStats]] = {}
    for key, stats in zip(compress(keys, out), compress(values, out), strict=True):
        groups.setdefault((key.nr, key.abi), []).append(stats)
    kept = [not o for o in out]
    kept_keys, kept_values = list(compress(keys, kept)), list(compress(values, kept))
    for (nr, abi), items in groups.items():
        kept_keys.append(StatKey(FOLDED_PID, FOLDED_PID, nr, abi))
        kept_values.append(merge_stats(items))
    return PersistentMap.from_lists(kept_keys, kept_values)


def _since(changes: Mapping[StatKey, SyscallStats],
           base: Mapping[StatKey, SyscallStats]) -> dict[StatKey, SyscallStats]:
    """The changed entries counted since `base` (their totals there)."""
    since = {}
    for key, now in changes.items():
        before = base.get(key)
        since[key] = now if before is None else now - before
    return since


def rebase(snapshot: Snapshot, baseline: Snapshot | None) -> Snapshot:
    """The snapshot as counted since `baseline` (for reset in replayed sessions); its
    samples stay cumulative (SampleSet keeps its own baseline)."""
    if baseline is None:
        return snapshot
    base = baseline.stats
    stats = {}
    for key, now in snapshot.stats.items():
        before = base.get(key)
        if before is None:
            stats[key] = now
        elif now.count != before.count:
            stats[key] = now - before
    # Counted since the baseline: nothing happened in between, and its events are older.
    return dataclasses.replace(snapshot, stats=MappingProxyType(stats),
                               since_start=snapshot.totals,
                               interval=MappingProxyType({}), events=no_events(),
                               event_data=(), epoch=snapshot.epoch + 1)
