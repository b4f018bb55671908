"""The difference between two saved sessions, or two stretches of one: the Diff that
`sikte-tui diff` prints (--json, a plain table) or shows (tui/diff_app.py).

Each side is a whole session (its final aggregates: exact, with min and max) or a stretch of
one (the timeline's intervals that end inside it: exact counts, errors, total time and
histograms; tracing/session/window.py). Rows are matched by syscall name and ABI when both
sessions come from the same machine (host, kernel and architecture), else by name alone:
numbers and ABIs differ between architectures, names do not. Files and TCP endpoints are
compared for whole sessions only: a session keeps their totals at its end, not over time.

Everything in a session file is untrusted: names and paths are kept as data here (the text
form sanitizes them; JSON escapes them), and a bad window is one UserError line.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syscall_tables import ABI_NATIVE, abi_syscall_name, abi_table, canonical_arch
from tracing.errors import UserError
from tracing.model.connections import summarize
from tracing.model.diff import Diff, DiffRow, DiffSide, DiffTable
from tracing.model.files import merge_files
from tracing.model.paths import UNKNOWN_ID
from tracing.model.report import labelled
from tracing.model.stats import StatKey, SyscallStats, merge_stats
from tracing.model.timing import diff_timing_note, timing_of
from tracing.model.units import parse_offset
from tracing.session.stored import open_session
from tracing.session.stored_session import StoredSession
from tracing.session.window import Window, whole, window_connections, window_stats

# Offsets in seconds from a session's start; None as the end: the session's end.
Span = tuple[float, float | None]

STAT_METRICS = ("count", "calls_per_s", "errors", "errors_per_s", "total_ns", "p50_ns",
                "p95_ns", "p99_ns")
FILE_METRICS = ("opens", "failed_opens", "bytes_read", "bytes_written", "io_ns")
ENDPOINT_METRICS = ("connections", "failed", "avg_ns")
# Each table's rows are sorted by the largest change in this metric.
SORT_METRIC = {"syscalls": "total_ns", "processes": "total_ns", "files": "io_ns",
               "endpoints": "connections"}
TITLES = {"syscalls": "by syscall", "processes": "by command name", "files": "by file",
          "endpoints": "by remote endpoint"}
# The JSON name of each table's key.
KEY_NAMES = {"syscalls": "syscall", "processes": "comm", "files": "path",
             "endpoints": "endpoint"}
FOLDED_COMM = "(exited processes)"  # pid 0: exited processes folded past the live bound
UNKNOWN_COMM = "(unknown)"
WINDOW_HINT = ("windows are START..END in seconds from the session's start (12, 1:30, 250ms; "
               "END empty: the end)")


def parse_window(text: str) -> Span:
    """'START..END' -> (start_s, end_s or None); START empty is the start, END empty the
    end. UserError (one line) for anything else."""
    start_text, sep, end_text = text.partition("..")
    if not sep:
        raise UserError(f"bad window {text!r}: {WINDOW_HINT}")
    try:
        start = parse_offset(start_text) if start_text.strip() else 0.0
        end = parse_offset(end_text) if end_text.strip() else None
    except ValueError:
        raise UserError(f"bad window {text!r}: {WINDOW_HINT}") from None
    if start < 0 or (end is not None and end < 0):
        raise UserError(f"bad window {text!r}: times count from the session's start (0)")
    if end is not None and end <= start:
        raise UserError(f"bad window {text!r}: it ends before it starts or is empty")
    return start, end


def resolve_window(session: StoredSession, span: Span, which: str) -> Window:
    """The Window of `span` in this session; UserError when it is not inside it."""
    full = whole(session)
    length = full.seconds
    start, end = span
    if start >= length:
        raise UserError(f"--window-{which} starts at {start:g} s but {session.name} lasts "
                        f"{length:.3f} s")
    if end is not None and end > length:
        raise UserError(f"--window-{which} ends at {end:g} s but {session.name} lasts "
                        f"{length:.3f} s (leave END empty for its end)")
    end_ns = full.end_ns if end is None else full.start_ns + round(end * 1e9)
    return Window(full.start_ns + round(start * 1e9), end_ns)


@dataclass(frozen=True)
class Side:
    """One side as computed: what it is, and its statistics named for matching."""

    side: DiffSide
    whole: bool
    syscalls: dict[tuple[str, str], list[SyscallStats]]  # (name, ABI table) -> entries
    processes: dict[str, list[SyscallStats]]  # command name -> entries
    files: dict[str, dict[str, int]]  # path -> metrics (whole sessions only)
    endpoints: dict[str, dict[str, int]]  # "out 10.0.0.1:443" -> metrics (whole only)


def identity(session: StoredSession) -> tuple[Any, ...]:
    """What tells one recorded session from another, whichever file holds it (a journal and
    its Parquet export are the same session)."""
    meta = session.meta
    return (meta.get("host"), meta.get("start_ts_ns"), meta.get("start_wall_time"))


def same_session(a: StoredSession, b: StoredSession) -> bool:
    if os.path.realpath(a.path) == os.path.realpath(b.path):
        return True
    return identity(a) == identity(b) and a.meta.get("start_wall_time") is not None


def _text(meta: Mapping[str, Any], key: str) -> str:
    value = meta.get(key)
    return value if isinstance(value, str) else ""


def _probes(meta: Mapping[str, Any]) -> dict[int, str]:
    """nr -> function probe name, from the metadata (untrusted: odd entries are skipped)."""
    probes = meta.get("probes")
    out: dict[int, str] = {}
    if isinstance(probes, dict):
        for nr, name in probes.items():
            if isinstance(name, str) and isinstance(nr, str) and nr.isdigit():
                out[int(nr)] = name
    return out


def session_arch(session: StoredSession) -> str:
    """The architecture whose syscall tables name the session's calls; UserError for one
    this sikte-tui has no tables for (a damaged or hand-made session)."""
    arch = _text(session.meta, "arch") or "x86_64"
    try:
        canonical_arch(arch)
    except ValueError:
        raise UserError(f"{session.path}: its metadata names an architecture sikte-tui has "
                        f"no syscall table for ({arch[:40]!r})") from None
    return arch


def _namer(meta: Mapping[str, Any], arch: str) -> Callable[[StatKey], str]:
    """An entry's name as tracing.model.report.key_name gives it, from the metadata alone."""
    probes = _probes(meta)

    def name(key: StatKey) -> str:
        probe = probes.get(key.nr) if key.abi == ABI_NATIVE else None
        return probe if probe is not None else abi_syscall_name(arch, key.abi, key.nr)

    return name


def _comms(session: StoredSession) -> dict[int, str]:
    frame = session.processes
    return {int(pid): comm if isinstance(comm, str) and comm else UNKNOWN_COMM
            for pid, comm in zip(frame["pid"], frame["comm"], strict=True)}


def _files(session: StoredSession) -> dict[str, dict[str, int]]:
    paths = session.paths
    if paths is None:
        return {}
    out: dict[str, dict[str, int]] = {}
    for path_id, stats in merge_files(session.files).items():
        key = "(unknown)" if path_id == UNKNOWN_ID else paths.text(path_id)
        values = {"opens": stats.opens, "failed_opens": stats.open_failures,
                  "bytes_read": stats.bytes_read, "bytes_written": stats.bytes_written,
                  "io_ns": stats.io_ns}
        before = out.get(key)
        out[key] = values if before is None else {m: before[m] + values[m] for m in values}
    return out


def _endpoints(session: StoredSession) -> dict[str, dict[str, int]]:
    return {f"{r.direction} {r.remote}": {"connections": r.connections, "failed": r.failures,
                                          "avg_ns": r.avg_duration_ns}
            for r in summarize(window_connections(session, whole(session)))}


def load_side(session: StoredSession, span: Span | None, which: str) -> Side:
    """A session, or the stretch `span` of it, as one side of a diff."""
    window = whole(session) if span is None else resolve_window(session, span, which)
    is_whole = window == whole(session)
    stats = window_stats(session, window)
    arch = session_arch(session)
    name_of = _namer(session.meta, arch)
    comms = _comms(session)
    syscalls: dict[tuple[str, str], list[SyscallStats]] = {}
    processes: dict[str, list[SyscallStats]] = {}
    for key, entry in stats.items():
        if not entry.count:
            continue
        syscalls.setdefault((name_of(key), abi_table(arch, key.abi)), []).append(entry)
        comm = FOLDED_COMM if key.pid == 0 else comms.get(key.pid, UNKNOWN_COMM)
        processes.setdefault(comm, []).append(entry)
    start_s = (window.start_ns - session.start_ts_ns) / 1e9
    end_s = (window.end_ns - session.start_ts_ns) / 1e9
    label = session.name if is_whole else \
        f"{session.name} [{format_span(start_s)}..{format_span(end_s)}]"
    side = DiffSide(label=label, path=str(session.path), start_s=start_s, end_s=end_s,
                    host=_text(session.meta, "host"), kernel=_text(session.meta, "kernel"),
                    arch=arch, timing=str(timing_of(session.meta.get("timing"))))
    return Side(side, is_whole, syscalls, processes,
                _files(session) if is_whole else {}, _endpoints(session) if is_whole else {})


def format_span(seconds: float) -> str:
    """An offset as the window arguments take it back (m:ss.s past a minute)."""
    if seconds < 60:
        return f"{seconds:.3f}".rstrip("0").rstrip(".") or "0"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}:{rest:06.3f}"


def _stat_metrics(entries: list[SyscallStats], seconds: float) -> dict[str, float]:
    s = merge_stats(entries)
    return {
        "count": s.count,
        "calls_per_s": s.count / seconds if seconds > 0 else 0.0,
        "errors": s.errors,
        "errors_per_s": s.errors / seconds if seconds > 0 else 0.0,
        "total_ns": s.total_ns,
        "p50_ns": s.quantile(0.50),
        "p95_ns": s.quantile(0.95),
        "p99_ns": s.quantile(0.99),
    }


def _merged_hist(entries: list[SyscallStats] | None) -> tuple[tuple[int, int], ...]:
    return merge_stats(entries).hist if entries else ()


def _stat_table(name: str, a: Mapping[str, list[SyscallStats]],
                b: Mapping[str, list[SyscallStats]], a_s: float, b_s: float) -> DiffTable:
    rows = [DiffRow(key, _stat_metrics(a[key], a_s) if key in a else None,
                    _stat_metrics(b[key], b_s) if key in b else None,
                    _merged_hist(a.get(key)), _merged_hist(b.get(key)))
            for key in set(a) | set(b)]
    return _table(name, STAT_METRICS, rows)


def _plain_table(name: str, metrics: tuple[str, ...], a: Mapping[str, Mapping[str, int]],
                 b: Mapping[str, Mapping[str, int]]) -> DiffTable:
    rows = [DiffRow(key, dict(a[key]) if key in a else None, dict(b[key]) if key in b else None)
            for key in set(a) | set(b)]
    return _table(name, metrics, rows)


def _table(name: str, metrics: tuple[str, ...], rows: Iterable[DiffRow]) -> DiffTable:
    metric = SORT_METRIC[name]
    ordered = sorted(rows, key=lambda r: (-abs(r.change(metric)), r.key))
    return DiffTable(name, TITLES[name], metrics, tuple(ordered))


def _syscall_groups(a: Side, b: Side, by_name: bool
                    ) -> tuple[dict[str, list[SyscallStats]], dict[str, list[SyscallStats]]]:
    """Each side's syscalls under the key shown: the name, labelled with its ABI where two
    ABIs have a call of that name (in either run); the name alone when matched by name."""
    if by_name:
        def named(side: Side) -> dict[str, list[SyscallStats]]:
            out: dict[str, list[SyscallStats]] = {}
            for (name, _), entries in side.syscalls.items():
                out.setdefault(name, []).extend(entries)
            return out

        return named(a), named(b)
    abis: dict[str, set[str]] = {}
    for side in (a, b):
        for name, abi in side.syscalls:
            abis.setdefault(name, set()).add(abi)

    def keyed(side: Side) -> dict[str, list[SyscallStats]]:
        return {(labelled(name, abi) if len(abis[name]) > 1 else name): entries
                for (name, abi), entries in side.syscalls.items()}

    return keyed(a), keyed(b)


def _machine(side: DiffSide) -> str:
    return f"{side.host or 'an unknown host'} (kernel {side.kernel or 'unknown'}, " \
        f"{side.arch or 'unknown architecture'})"


def compute(a: Side, b: Side) -> Diff:
    """The Diff of two sides (see the module)."""
    same_machine = (a.side.host, a.side.kernel, a.side.arch) == \
        (b.side.host, b.side.kernel, b.side.arch)
    by_name = not same_machine
    notes: list[str] = []
    if by_name:
        notes.append(f"different machines: A on {_machine(a.side)}, B on {_machine(b.side)}; "
                     "syscalls matched by name")
    if not (a.whole and b.whole):
        notes.append("files and TCP endpoints are compared for whole sessions only "
                     "(a session keeps their totals at its end)")
    timing = diff_timing_note(a.side.timing, b.side.timing)  # issue 18: sampled, off
    if timing:
        notes.append(timing)
    sys_a, sys_b = _syscall_groups(a, b, by_name)
    a_s, b_s = a.side.end_s - a.side.start_s, b.side.end_s - b.side.start_s
    tables = (
        _stat_table("syscalls", sys_a, sys_b, a_s, b_s),
        _stat_table("processes", a.processes, b.processes, a_s, b_s),
        _plain_table("files", FILE_METRICS, a.files, b.files),
        _plain_table("endpoints", ENDPOINT_METRICS, a.endpoints, b.endpoints),
    )
    return Diff(a.side, b.side, tables, by_name=by_name, notes=tuple(notes))


def diff_sessions(a: StoredSession, b: StoredSession | None, window_a: Span | None,
                  window_b: Span | None) -> Diff:
    """Two sessions (b given), or two windows of one (b None: both windows required).
    UserError (one line, exit 2) for a session compared with itself or a window outside."""
    if b is None:
        if window_a is None or window_b is None:
            raise UserError("to compare two stretches of one session give both --window-a "
                            "and --window-b; to compare two sessions give both")
        b = a
    if same_session(a, b):
        full = whole(a)
        wa = full if window_a is None else resolve_window(a, window_a, "a")
        wb = full if window_b is None else resolve_window(b, window_b, "b")
        if wa == wb:
            what = "the same session" if wa == full else "the same stretch of one session"
            raise UserError(f"{a.name} and {b.name} are {what}: compare two sessions, or two "
                            "stretches of one with --window-a and --window-b")
    return compute(load_side(a, window_a, "a"), load_side(b, window_b, "b"))


def _number(value: float) -> float | int:
    """JSON numbers: ints stay ints; rates rounded to what a rate means (and never NaN)."""
    if isinstance(value, int):
        return value
    return round(value, 6) if math.isfinite(value) else 0


def side_json(side: DiffSide) -> dict[str, object]:
    return {"label": side.label, "path": side.path, "start_s": round(side.start_s, 9),
            "end_s": round(side.end_s, 9), "duration_s": round(side.end_s - side.start_s, 9),
            "host": side.host, "kernel": side.kernel, "arch": side.arch,
            "timing": side.timing}


def row_json(table: DiffTable, row: DiffRow) -> dict[str, object]:
    doc: dict[str, object] = {KEY_NAMES[table.name]: row.key}
    for metric in table.metrics:
        for which, values in (("a", row.a), ("b", row.b)):
            doc[f"{metric}_{which}"] = None if values is None else _number(values[metric])
    doc["only_in"] = row.only_in
    return doc


def diff_json(diff: Diff) -> dict[str, object]:
    """The --json document (docs/diff.md): a missing side's values are null."""
    doc: dict[str, object] = {"a": side_json(diff.a), "b": side_json(diff.b),
                              "by_name": diff.by_name, "notes": list(diff.notes)}
    for table in diff.tables:
        doc[table.name] = [row_json(table, row) for row in table.rows]
    return doc


def open_pair(a_path: Path, b_path: Path | None, window_a: Span | None = None,
              window_b: Span | None = None) -> tuple[StoredSession, StoredSession | None]:
    """Both sessions read (each UserError names its file). One file named twice, or two
    equal windows of one, is refused before either is read: reading a large session takes
    long, only to say so (diff_sessions still catches a journal and its export)."""
    same_file = b_path is None or os.path.realpath(a_path) == os.path.realpath(b_path)
    if same_file and window_a == window_b and (b_path is not None or window_a is not None):
        what = "the same stretch of one session" if window_a else "the same session"
        raise UserError(f"{a_path.name} and {(b_path or a_path).name} are {what}: compare two "
                        "sessions, or two stretches of one with --window-a and --window-b")
    return open_session(a_path), None if b_path is None else open_session(b_path)
