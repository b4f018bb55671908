"""A Diff made by hand for the diff TUI's tests: two runs of 10 s and 12.5 s on one machine
(or, with `other_machine`, two machines), differing by known numbers of calls, failures and
time. Built from tracing/model/diff.py's plain data, as tracing/session/diff.py makes it.
"""

from __future__ import annotations

from collections.abc import Sequence

from tracing.model.diff import Diff, DiffRow, DiffSide, DiffTable
from tracing.model.stats import Hist, bucket_bounds, bucket_of, percentile

A = DiffSide("run-a", "/tmp/sessions/run-a.journal", 0.0, 10.0, "devbox", "6.1.0-18",
             "x86_64")
B = DiffSide("run-b", "/tmp/sessions/run-b", 0.0, 12.5, "devbox", "6.1.0-18", "x86_64")
SYSCALL_METRICS = ("count", "calls_per_s", "errors", "errors_per_s", "total_ns", "p50_ns",
                   "p95_ns", "p99_ns")


def hist(*groups: tuple[int, int]) -> Hist:
    """(calls, each lasting ns) groups as a histogram."""
    counts: dict[int, int] = {}
    for calls, ns in groups:
        counts[bucket_of(ns)] = counts.get(bucket_of(ns), 0) + calls
    return tuple(sorted(counts.items()))


def metrics(side: DiffSide, h: Hist, errors: int) -> dict[str, float]:
    count = sum(c for _, c in h)
    total = sum(c * bucket_bounds(b)[0] for b, c in h)  # every call at its bucket's low end
    return {"count": count, "calls_per_s": count / side.duration_s, "errors": errors,
            "errors_per_s": errors / side.duration_s, "total_ns": total,
            "p50_ns": percentile(h, 0.5), "p95_ns": percentile(h, 0.95),
            "p99_ns": percentile(h, 0.99)}


def row(key: str, a: tuple[Hist, int] | None, b: tuple[Hist, int] | None) -> DiffRow:
    return DiffRow(key, metrics(A, *a) if a else None, metrics(B, *b) if b else None,
                   a[0] if a else (), b[0] if b else ())


def by_total(rows: Sequence[DiffRow]) -> tuple[DiffRow, ...]:
    return tuple(sorted(rows, key=lambda r: (-abs(r.change("total_ns")), r.key)))


SYSCALLS = by_total([
    # 1000 -> 1500 calls, no failures
    row("getppid", (hist((1000, 512)), 0), (hist((1500, 512)), 0)),
    # 40 -> 55 calls, 10 -> 25 failures, slower in B
    row("openat", (hist((30, 4096), (10, 2048)), 10), (hist((30, 4096), (25, 16384)), 25)),
    # the same in both
    row("read", (hist((200, 8192)), 0), (hist((200, 8192)), 0)),
    # only in B
    row("connect", None, (hist((2, 1 << 20), (1, 1 << 16)), 1)),
    # only in A
    row("mmap", (hist((12, 1024)), 0), None),
])
PROCESSES = by_total([
    row("python3", (hist((1000, 512), (40, 4096)), 10),
        (hist((1500, 512), (55, 16384)), 25)),
    row("bash", (hist((212, 1024)), 0), None),
])
FILES = (
    DiffRow("/etc/passwd", {"opens": 10, "failed_opens": 0, "bytes_read": 40960,
                            "bytes_written": 0, "io_ns": 200_000},
            {"opens": 12, "failed_opens": 2, "bytes_read": 49152, "bytes_written": 0,
             "io_ns": 260_000}),
)
ENDPOINTS = (
    DiffRow("10.0.0.7:443 out", None, {"connections": 3, "failed": 1, "avg_ns": 1_500_000}),
)


def make_diff(other_machine: bool = False, syscalls: Sequence[DiffRow] = SYSCALLS) -> Diff:
    b = B
    notes: tuple[str, ...] = ()
    if other_machine:
        b = DiffSide(B.label, B.path, B.start_s, B.end_s, "buildhost", "6.8.0-31", "aarch64")
        notes = ("different machines: A devbox 6.1.0-18 x86_64, B buildhost 6.8.0-31 "
                 "aarch64; syscalls matched by name",)
    return Diff(A, b, (
        DiffTable("syscalls", "by syscall", SYSCALL_METRICS, tuple(syscalls)),
        DiffTable("processes", "by command name", SYSCALL_METRICS, PROCESSES),
        DiffTable("files", "by file", ("opens", "failed_opens", "bytes_read", "bytes_written",
                                       "io_ns"), FILES),
        DiffTable("endpoints", "by remote endpoint", ("connections", "failed", "avg_ns"),
                  ENDPOINTS),
    ), by_name=other_machine, notes=notes)
