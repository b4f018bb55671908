"""Summaries of a snapshot: rows per syscall (named by each call's ABI, kept apart by ABI),
the `strace -c` style table and the JSON document that `sikte-tui record` prints.

The text forms are printed on the user's terminal and quote what traced processes control
(their names) or what a saved session holds: every such string goes through
tracing.boundary.display_text.sanitize. The JSON form needs nothing more: json escapes every control
character, and ensure_ascii every non-ASCII one."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from syscall_tables import ABI_NATIVE, abi_syscall_name, abi_table
from tracing.boundary.display_text import sanitize
from tracing.model.connections import Connection, summarize
from tracing.model.json_stream import Rows
from tracing.model.snapshots import folded_count
from tracing.model.stats import Drops, Snapshot, StatKey, SyscallStats, merge_stats
from tracing.model.timing import Timing, format_time, timing_note, timing_of
from tracing.model.units import format_duration


@dataclass(frozen=True, slots=True)
class SyscallRow:
    name: str  # as shown: the syscall's name, labelled with its ABI where two ABIs share it
    nr: int
    stats: SyscallStats
    abi: str = ""  # the table it was named from ("x86_64", "i386", "x32"...)
    syscall: str = ""  # the name alone ("" : `name`)


def key_abi(snapshot: Snapshot, key: StatKey) -> str:
    """The syscall table of an entry's ABI ("i386" for a compat call on x86_64)."""
    return abi_table(snapshot.arch, key.abi)


def key_name(snapshot: Snapshot, key: StatKey) -> str:
    """The name of an entry: its function probe's, else its syscall's in the ABI the call
    was made under (never the process's executable's: a process may exec 64 -> 32 bits, and a
    short-lived one is gone before /proc is read)."""
    probe = snapshot.probes.get(key.nr) if key.abi == ABI_NATIVE else None
    return probe if probe is not None else abi_syscall_name(snapshot.arch, key.abi, key.nr)


def labelled(name: str, abi: str) -> str:
    """A name as shown where another ABI has a call of the same name: `getppid (i386)`."""
    return f"{name} ({abi})"


def shared_names(pairs: Iterable[tuple[str, int]]) -> set[str]:
    """The names that occur under more than one ABI among (name, abi code) pairs."""
    seen: dict[str, int] = {}
    shared: set[str] = set()
    for name, abi in pairs:
        if seen.setdefault(name, abi) != abi:
            shared.add(name)
    return shared


def syscall_rows(snapshot: Snapshot, pid: int | None = None) -> list[SyscallRow]:
    """One row per syscall name and ABI, over all processes or one; sorted by total time.
    A name that occurs under two ABIs is labelled with each row's (`getppid (i386)`)."""
    groups: dict[tuple[str, int], tuple[int, list[SyscallStats]]] = {}
    for key, stats in snapshot.stats.items():
        if pid is not None and key.pid != pid:
            continue
        name = key_name(snapshot, key)
        groups.setdefault((name, key.abi), (key.nr, []))[1].append(stats)
    shared = shared_names(groups)
    rows = []
    for (name, abi), (nr, items) in groups.items():
        table = abi_table(snapshot.arch, abi)
        shown = labelled(name, table) if name in shared else name
        rows.append(SyscallRow(shown, nr, merge_stats(items), table, name))
    rows.sort(key=lambda r: (-r.stats.total_ns, -r.stats.count, r.name))
    return rows


def process_counts(snapshot: Snapshot) -> dict[int, int]:
    counts: dict[int, int] = {}
    for key, stats in snapshot.stats.items():
        counts[key.pid] = counts.get(key.pid, 0) + stats.count
    return counts


NAME_LIMIT = 200  # characters of a name printed: a comm has 15, a probe a path and a symbol
HEADER = ("% time", "calls", "errors", "total", "avg", "p50", "p95", "p99", "max", "syscall")


def format_table(rows: Iterable[SyscallRow], timing: str = Timing.EXACT) -> str:
    """`timing`: the snapshot's mode; sampled figures are marked "~", unmeasured ones "-"
    (format_summary adds the sentence that says so)."""
    rows = list(rows)
    grand = sum(r.stats.total_ns for r in rows) or 1
    off = timing_of(timing) is Timing.OFF

    def time(ns: float) -> str:
        return format_time(format_duration(ns), timing)

    def share(ns: int) -> str:
        return "-" if off else f"{100 * ns / grand:.2f}"

    lines: list[tuple[str, ...]] = [HEADER]
    for r in rows:
        s = r.stats
        lines.append((
            share(s.total_ns),
            str(s.count),
            str(s.errors) if s.errors else "",
            time(s.total_ns),
            time(s.avg_ns),
            time(s.quantile(0.50)),
            time(s.quantile(0.95)),
            time(s.quantile(0.99)),
            time(s.max_ns),
            sanitize(r.name, NAME_LIMIT),  # a probe's name: a path and a symbol
        ))
    total = merge_stats([r.stats for r in rows]) if rows else SyscallStats()
    lines.append(("-" if off else "100.00", str(total.count),
                  str(total.errors) if total.errors else "",
                  time(total.total_ns), time(total.avg_ns), "", "", "", "", "total"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    rule = tuple("-" * w for w in widths)
    lines.insert(1, rule)
    lines.insert(len(lines) - 1, rule)
    # Numbers right-aligned, the name left-aligned, as strace -c does.
    return "\n".join(
        " ".join(c.rjust(w) for c, w in zip(line[:-1], widths, strict=False)) + " " + line[-1]
        for line in lines
    )


def format_summary(snapshot: Snapshot, per_process: bool = False) -> str:
    parts = []
    if per_process:
        counts = process_counts(snapshot)
        for pid in sorted(counts):
            info = snapshot.processes.get(pid)
            comm = sanitize(info.comm, NAME_LIMIT) if info else "?"  # set by the process
            ended = f", exit {info.exit}" if info and info.exit is not None else ""
            table = format_table(syscall_rows(snapshot, pid), snapshot.timing)
            parts.append(f"pid {pid} ({comm}){ended}\n{table}")
    else:
        parts.append(format_table(syscall_rows(snapshot), snapshot.timing))
    note = timing_note(snapshot.timing)
    if note:  # what "~" and "-" in the table mean
        parts.append(note)
    folded = folded_count(snapshot.processes)
    if folded:
        parts.append(f"{folded:,} exited processes shown as one (pid 0, the oldest past "
                     "the bound); the session keeps each one")
    drops = snapshot.drops
    if drops.total:
        parts.append(
            f"dropped: {drops.events} events (ring buffer full), {drops.stats_full} syscalls "
            f"(stats map full), {drops.proc_events} process events, {drops.inflight} untimed, "
            f"CPU samples: {drops.stacks_missing} without a user stack, "
            f"{drops.stack_collisions} with a stack lost (stack map collision or full), "
            f"{drops.samples_lost} not counted (sample map full), {drops.tcp_events} TCP "
            f"state changes, {drops.fd_events} descriptor records (files)"
        )
    return "\n\n".join(parts)


# What each Drops field counts, as the header names it (stacks_missing is not a loss: such a
# sample is still counted, as "[missing user stack]").
DROP_CAUSES = (
    ("events", "syscall events"),  # no room in the ring buffer: counts stay exact
    ("stats_full", "syscalls uncounted"),  # the stats map was full
    ("proc_events", "process events"),
    ("inflight", "syscalls untimed"),
    ("stack_collisions", "sample stacks"),  # stack map collision or full
    ("samples_lost", "samples"),  # the sample map was full
    ("tcp_events", "TCP events"),
    ("fd_events", "file records"),  # descriptor bookkeeping: per-file totals incomplete
)


def drop_parts(drops: Drops) -> list[str]:
    """Each loss that happened, by cause, never added together: a lost stack and a lost
    syscall event are different things ("1,204 syscall events", "3 sample stacks")."""
    return [f"{getattr(drops, field):,} {label}" for field, label in DROP_CAUSES
            if getattr(drops, field)]


def format_connections(connections: Sequence[Connection]) -> str:
    """TCP connections per remote endpoint, most first ("" when there were none)."""
    if not connections:
        return ""
    lines = [f"{'connections':>11} {'failed':>6} {'open':>5} {'avg time':>9}  dir remote"]
    for r in summarize(connections):
        avg = format_duration(r.avg_duration_ns) if r.avg_duration_ns else "-"
        lines.append(f"{r.connections:>11,} {r.failures:>6,} {r.open:>5,} {avg:>9}  "
                     f"{sanitize(r.direction, 3):<3} {sanitize(r.remote, NAME_LIMIT)}")
    failed = sum(c.failed for c in connections)
    lines.append(f"TCP: {len(connections):,} connections, {failed:,} failed")
    return "\n".join(lines)


TIME_FIELDS = ("total_ns", "avg_ns", "p50_ns", "p95_ns", "p99_ns", "max_ns")


def _row_json(row: SyscallRow, timing: str = Timing.EXACT) -> dict[str, object]:
    s = row.stats
    doc: dict[str, object] = {
        "syscall": row.syscall or row.name,
        "abi": row.abi,
        "nr": row.nr,
        "count": s.count,
        "errors": s.errors,
        "total_ns": s.total_ns,
        "avg_ns": s.avg_ns,
        "p50_ns": s.quantile(0.50),
        "p95_ns": s.quantile(0.95),
        "p99_ns": s.quantile(0.99),
        "max_ns": s.max_ns,
    }
    mode = timing_of(timing)
    if mode is Timing.SAMPLED:  # the time fields are estimates (counts and errors exact)
        doc["estimated"] = True
    elif mode is Timing.OFF:  # not measured: null, never a 0 that reads as "instant"
        doc.update(dict.fromkeys(TIME_FIELDS))
    return doc


def syscall_row_json(row: SyscallRow, timing: str = Timing.EXACT) -> dict[str, object]:
    """A syscall row as the JSON summary gives it (`record --interval --json`'s intervals
    give theirs alike): with `"estimated": true` when sampled, null times when off."""
    return _row_json(row, timing)


def summary_json(snapshot: Snapshot, target: dict[str, object], per_process: bool = False,
                 connections: Sequence[Connection] = (), lazy: bool = False
                 ) -> dict[str, object]:
    """The JSON summary. `lazy`: its long lists (processes, per process) are made as they
    are written (tracing/model/json_stream.py), never held whole."""
    counts = process_counts(snapshot)

    def listed(make: Callable[[], Iterator[object]]) -> object:
        return Rows(make) if lazy else list(make())

    def processes() -> Iterator[object]:
        for pid, info in sorted(snapshot.processes.items()):
            yield {
                "pid": pid,
                "ppid": info.ppid,
                "comm": info.comm,
                "exe": info.exe,
                "abi": info.abi or snapshot.arch,
                "container": info.container,
                "exit_code": info.exit.code if info.exit else None,
                "exit_signal": info.exit.signal if info.exit else None,
                "count": counts.get(pid, 0),
            }

    def per_pid() -> Iterator[object]:
        for pid in sorted(counts):
            yield {"pid": pid, "syscalls": [_row_json(r, snapshot.timing)
                                            for r in syscall_rows(snapshot, pid)]}

    doc: dict[str, object] = {
        "syscalls": [_row_json(r, snapshot.timing) for r in syscall_rows(snapshot)],
        "processes": listed(processes),
        # Exited processes shown as the one entry of pid 0 (past the live model's bound).
        "processes_folded": folded_count(snapshot.processes),
        "drops": {
            "events": snapshot.drops.events,
            "stats_full": snapshot.drops.stats_full,
            "proc_events": snapshot.drops.proc_events,
            "inflight": snapshot.drops.inflight,
            "stacks_missing": snapshot.drops.stacks_missing,
            "stack_collisions": snapshot.drops.stack_collisions,
            "samples_lost": snapshot.drops.samples_lost,
            "tcp_events": snapshot.drops.tcp_events,
        },
        "connections": [dataclasses.asdict(c) for c in connections],
        # record's target names the mode; other callers' (demo) get the snapshot's.
        "target": {**target, "timing": target.get("timing", str(timing_of(snapshot.timing)))},
    }
    if per_process:
        doc["per_process"] = listed(per_pid)
    return doc
