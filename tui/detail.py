"""The drill-down of one syscall: latency histogram, per-process and per-errno breakdowns,
and its recent individual events with arguments and return values."""

from __future__ import annotations

from collections import Counter

import numpy as np
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Footer, Static

from syscall_tables import errno_name
from tracing.model import StatKey, SyscallEvent, event_objects, merge_stats
from tracing.report import key_name
from tracing.units import format_count, format_duration
from tui.actions import bindings_for
from tui.screens import DrillDown
from tui.session import SessionView
from tui.text import data, line
from tui.widgets import HistogramChart

RECENT_SHOWN = 200


def format_ret(event: SyscallEvent) -> str:
    if event.failed:
        return f"-1 {errno_name(event.errno)}"
    return str(event.ret) if abs(event.ret) < 1 << 20 else hex(event.ret)


def format_args(args: tuple[int, ...]) -> str:
    return ", ".join(hex(a) if a > 0xFFFF else str(a) for a in args)


class DetailScreen(DrillDown):
    ACTION_SCREEN = "detail"
    BINDINGS = bindings_for("detail")

    def __init__(self, session: SessionView, name: str, pid: int | None) -> None:
        super().__init__()
        self.session = session
        self.syscall = name
        self.pid = pid

    def compose(self) -> ComposeResult:
        yield Static(id="detail-title")
        with VerticalScroll(id="detail-body"):
            yield Static("latency", classes="section")
            yield HistogramChart(id="histogram")
            with Horizontal(id="breakdowns"):
                yield DataTable(id="by-process", cursor_type="row", zebra_stripes=True)
                yield DataTable(id="by-errno", cursor_type="row", zebra_stripes=True)
            yield Static("recent events", classes="section", id="events-title")
            yield DataTable(id="events", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#by-process", DataTable).add_columns(
            "pid", "comm", "calls", "errors", "total", "avg", "p99", "max")
        self.query_one("#by-errno", DataTable).add_columns("errno", "events")
        self.query_one("#events", DataTable).add_columns(
            "time", "pid", "tid", "duration", "return", "arguments")
        self.session_updated()

    def _matches(self, key: StatKey) -> bool:
        snapshot = self.session.latest
        assert snapshot is not None
        return (self.pid is None or key.pid == self.pid) and key_name(snapshot, key) == self.syscall

    def session_updated(self) -> None:
        snapshot = self.session.latest
        if snapshot is None:
            return
        entries = {k: s for k, s in snapshot.stats.items() if self._matches(k)}
        stats = merge_stats(entries.values()) if entries else None
        self._render_title(stats)
        if stats is not None:
            marks = {"p50": stats.quantile(0.5), "p95": stats.quantile(0.95),
                     "p99": stats.quantile(0.99)}
            self.query_one(HistogramChart).show(stats.hist, marks)
        self._render_processes(entries)
        batch = self.session.events
        # The entries' (pid, nr) pairs pick this syscall's events, whatever each ABI calls it.
        wanted = np.array(sorted({(k.pid << 32) | k.nr for k in entries}), dtype=np.uint64)
        mask = np.isin((batch["pid"].astype(np.uint64) << 32) | batch["nr"], wanted)
        mine = batch[mask]
        self._render_errnos(mine)
        self._render_events(event_objects(mine[-RECENT_SHOWN:]), len(mine))

    def _render_title(self, stats) -> None:
        # The name may be a function probe's, which names a binary and a function.
        scope = f"pid {self.pid}" if self.pid is not None else "all processes"
        title = self.query_one("#detail-title", Static)
        if stats is None:
            title.update(line(self.syscall, f" · {scope} · no calls"))
            return
        title.update(line(
            (self.syscall, "bold"),
            f" · {scope} · calls {format_count(stats.count)} · errors "
            f"{format_count(stats.errors)} · total {format_duration(stats.total_ns)} · avg "
            f"{format_duration(stats.avg_ns)} · p50 {format_duration(stats.quantile(0.5))} · "
            f"p95 {format_duration(stats.quantile(0.95))} · p99 "
            f"{format_duration(stats.quantile(0.99))} · max {format_duration(stats.max_ns)}"))

    def _render_processes(self, entries) -> None:
        snapshot = self.session.latest
        by_pid: dict[int, list] = {}
        for key, s in entries.items():
            by_pid.setdefault(key.pid, []).append(s)
        table = self.query_one("#by-process", DataTable)
        table.clear()
        rows = sorted(((pid, merge_stats(v)) for pid, v in by_pid.items()),
                      key=lambda item: -item[1].total_ns)
        for pid, s in rows:
            info = snapshot.processes.get(pid) if snapshot else None
            # A str cell would be parsed as markup: the comm goes in as Text.
            table.add_row(pid, data(info.comm if info else "?"), format_count(s.count),
                          format_count(s.errors), format_duration(s.total_ns),
                          format_duration(s.avg_ns), format_duration(s.quantile(0.99)),
                          format_duration(s.max_ns))

    def _render_errnos(self, batch: np.ndarray) -> None:
        table = self.query_one("#by-errno", DataTable)
        table.clear()
        ret = batch["ret"]
        failed = -ret[(ret < 0) & (ret >= -4095)]
        for errno, n in Counter(failed.tolist()).most_common():
            table.add_row(errno_name(errno), format_count(n))

    def _render_events(self, events: list[SyscallEvent], matched: int) -> None:
        snapshot = self.session.latest
        start = snapshot.start_ts_ns if snapshot else 0
        table = self.query_one("#events", DataTable)
        table.clear()
        for e in reversed(events):
            table.add_row(f"{(e.ts_ns - start) / 1e9:.6f}", e.pid, e.tid,
                          format_duration(e.duration_ns), format_ret(e), format_args(e.args))
        self.query_one("#events-title", Static).update(
            f"recent events ({len(events)} of {matched} kept; the kernel sends failed calls, "
            "and slow or sampled ones when asked)")
