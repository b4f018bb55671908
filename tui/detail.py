"""The drill-down of one syscall: latency histogram, its rate and p50/p99 over the session
with the shown window marked (tui/charts.py), per-process and per-errno breakdowns
(with the paths or addresses most often behind each errno), and its recent individual events
decoded as strace shows them (tui/event_rows.py).

The tables keep their selected row by key. New events join the events list without moving
its cursor: on the newest event (the top) the list follows the stream; on an older one, that
event stays where it is on screen. `p` pauses the list."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Static

from syscall_tables import ABI_NATIVE, abi_table, errno_name
from tracing.model.report import key_name, labelled
from tracing.model.stats import Snapshot, StatKey, SyscallStats, key_numbers, merge_stats
from tracing.model.timing import ESTIMATE_MARK, Timing, format_time, timing_of
from tracing.model.units import format_count, format_duration, format_exact_count
from tui.actions import bindings_for
from tui.charts import SyscallPlots, plot_title, session_series, shown_window, syscall_ids
from tui.columns import Column, Row, RowKey
from tui.event_rows import EventStore, LogEvent, duration_cell, errno_causes
from tui.footer import KeyFooter
from tui.screens import DrillDown
from tui.session import SessionView
from tui.table import KeyedTable
from tui.text import line
from tui.widgets import HistogramChart

RECENT_SHOWN = 1000  # the table draws only the lines on screen
FAILED_KEPT = 2000  # the failed events whose paths and addresses explain the errnos
ERRNO_MIN_WIDTH = 24  # errno and events, a gap and a scrollbar (sikte.tcss)
PROCESSES_WIDTH = 84  # every column of the processes table, its gaps and scrollbar
PLOTS_BESIDE_WIDTH = 120  # the histogram beside the plots, which need 50 columns
LATENCY_BOX_WIDTH = 76  # the histogram's ranges, 40 columns of bars, counts and marks

PROCESS_COLUMNS = (
    Column("pid", "pid"), Column("comm", "comm", False, 15), Column("count", "calls"),
    Column("errors", "errors", priority=1), Column("total_ns", "total"),
    Column("avg_ns", "avg", priority=3), Column("p99_ns", "p99"),
    Column("max_ns", "max", priority=2))
ERRNO_COLUMNS = (Column("errno", "errno", False, 12), Column("events", "events"),
                 Column("behind", "most often behind", False, 1, priority=1))
EVENT_COLUMNS = (
    Column("time", "time", True, 10), Column("pid", "pid"), Column("tid", "tid"),
    Column("duration", "duration", True, 8), Column("call", "call", False, 120))


class DetailScreen(DrillDown):
    ACTION_SCREEN = "detail"
    BINDINGS = bindings_for("detail")

    def __init__(self, session: SessionView, name: str, pid: int | None,
                 abi: int | None = None) -> None:
        super().__init__()
        self.session = session
        self.syscall = name
        self.pid = pid
        self.abi = abi  # the ABI code of the calls shown; None: every ABI's of that name
        self.events_paused = False
        self._events_shown: tuple[int, RowKey | None] = (0, None)  # (matched, newest key)
        # This syscall's events, by event_codes() of its entries.
        self._wanted = np.empty(0, dtype=np.uint64)
        self._recent = EventStore(RECENT_SHOWN, self._mine)
        self._failed = EventStore(FAILED_KEPT, self._mine_failed)
        self._resets = session.resets

    def compose(self) -> ComposeResult:
        yield Static(id="detail-title")
        with VerticalScroll(id="detail-body"):
            with Horizontal(id="detail-top"):
                with Vertical(id="latency-box"):
                    yield Static("latency", classes="section")
                    yield HistogramChart(id="histogram")
                with Vertical(id="over-time"):
                    yield Static(id="over-time-title", classes="section")
                    yield SyscallPlots(id="plots")
            with Horizontal(id="breakdowns"):
                yield KeyedTable(id="by-process")
                yield KeyedTable(id="by-errno")
            yield Static("recent events", classes="section", id="events-title")
            yield KeyedTable(id="events")
        yield KeyFooter()

    def on_mount(self) -> None:
        for name, columns in (("by-process", PROCESS_COLUMNS), ("events", EVENT_COLUMNS)):
            self.query_one(f"#{name}", KeyedTable).set_columns(columns)
        self.query_one("#by-process", KeyedTable).set_sort("total_ns", True)
        self.query_one("#events", KeyedTable).focus(scroll_visible=False)
        self._fit_breakdowns()
        self.session_updated()

    def on_resize(self) -> None:
        self._fit_breakdowns()
        self.session_updated()  # new columns come without rows

    def _fit_breakdowns(self) -> None:
        """The errno table takes what the processes table leaves past its columns (the
        paths behind each errno need room); at 80 columns it keeps errno and events only."""
        width = max(ERRNO_MIN_WIDTH, self.app.size.width - PROCESSES_WIDTH)
        errnos = self.query_one("#by-errno", KeyedTable)
        errnos.styles.width = width
        behind = dataclasses.replace(ERRNO_COLUMNS[-1], width=max(width - ERRNO_MIN_WIDTH, 1))
        errnos.set_columns((*ERRNO_COLUMNS[:-1], behind))
        # The plots go beside the histogram where there is room, under it where not.
        wide = self.app.size.width >= PLOTS_BESIDE_WIDTH
        self.query_one("#detail-top").styles.layout = "horizontal" if wide else "vertical"
        self.query_one("#latency-box").styles.width = LATENCY_BOX_WIDTH if wide else "1fr"

    def _matches(self, key: StatKey) -> bool:
        snapshot = self.session.latest
        assert snapshot is not None
        return (self.pid is None or key.pid == self.pid) \
            and (self.abi is None or key.abi == self.abi) \
            and key_name(snapshot, key) == self.syscall

    def session_updated(self) -> None:
        snapshot = self.session.latest
        if snapshot is None:
            return
        entries = {k: s for k, s in snapshot.stats.items() if self._matches(k)}
        stats = merge_stats(entries.values()) if entries else None
        self._render_title(stats, snapshot.timing)
        timing = timing_of(snapshot.timing)
        if timing is Timing.OFF:  # an empty histogram is not "no calls"
            self.query_one(HistogramChart).update(
                Text("no latencies: timing off (counts and errors only)", style="dim"))
        elif stats is not None:
            # Sampled: the bars are weighted estimates, and so are the marks.
            mark = ESTIMATE_MARK if timing is Timing.SAMPLED else ""
            marks = {f"{mark}p50": stats.quantile(0.5), f"{mark}p95": stats.quantile(0.95),
                     f"{mark}p99": stats.quantile(0.99)}
            self.query_one(HistogramChart).show(stats.hist, marks)
        self._render_processes(entries)
        self._render_plots(snapshot)
        self._wanted = np.array(sorted({_code(k.pid, k.abi, k.nr) for k in entries}),
                                dtype=np.uint64)
        if self.session.resets != self._resets:  # R, or another stretch of a saved session
            self._resets = self.session.resets
            self._recent.clear()
            self._failed.clear()
        batches = self.session.event_batches
        self._failed.update(batches)
        mine = self.session.events
        mine = mine[self._mine(mine)]
        self._render_errnos(mine)
        if not self.events_paused:
            self._recent.update(batches)
            self._render_events(len(mine))

    def _render_plots(self, snapshot: Snapshot) -> None:
        """The syscall's rate and p50/p99 over the session, the shown window marked."""
        source = getattr(self.app, "source", None)
        series = session_series(self.session, source)
        ids = syscall_ids(series, snapshot, self.syscall, self.abi)
        points = series.syscall(ids) if series.start_ns is not None else []
        saved = source.capabilities.saved if source is not None else None
        stretch = shown_window(self.session, saved)
        window = None if stretch is None or series.start_ns is None else (
            series.offset_s(stretch[0]), series.offset_s(stretch[1]))
        self.query_one("#over-time-title", Static).update(plot_title(points, window, self.pid))
        self.query_one(SyscallPlots).show(points, window, snapshot.timing)

    def _mine(self, batch: np.ndarray) -> np.ndarray:
        """A mask of this syscall's events in `batch`."""
        return np.isin(event_codes(batch), self._wanted)

    def _mine_failed(self, batch: np.ndarray) -> np.ndarray:
        ret = batch["ret"]
        return self._mine(batch) & (ret < 0) & (ret >= -4095)

    def _shown_name(self) -> str:
        """The name, labelled with its ABI when it is not the host's own (`getppid (i386)`)."""
        snapshot = self.session.latest
        if self.abi is None or self.abi == ABI_NATIVE or snapshot is None:
            return self.syscall
        return labelled(self.syscall, abi_table(snapshot.arch, self.abi))

    def _render_title(self, stats: SyscallStats | None, timing: str = Timing.EXACT) -> None:
        # The name may be a function probe's, which names a binary and a function.
        scope = f"pid {self.pid}" if self.pid is not None else "all processes"
        title = self.query_one("#detail-title", Static)
        if stats is None:
            title.update(line(self._shown_name(), f" · {scope} · no calls"))
            return
        counts = (f" · {scope} · calls {format_exact_count(stats.count)} · errors "
                  f"{format_exact_count(stats.errors)}")
        mode = timing_of(timing)
        if mode is Timing.OFF:
            title.update(line((self._shown_name(), "bold"), counts,
                              (" · timing off: no latencies", "yellow")))
            return

        def time(ns: float) -> str:
            return format_time(format_duration(ns), mode)

        title.update(line(
            (self._shown_name(), "bold"),
            f"{counts} · total {time(stats.total_ns)} · avg {time(stats.avg_ns)} · p50 "
            f"{time(stats.quantile(0.5))} · p95 {time(stats.quantile(0.95))} · p99 "
            f"{time(stats.quantile(0.99))} · max {time(stats.max_ns)}",
            (" · ~ estimates (timing sampled)", "yellow") if mode is Timing.SAMPLED else ""))

    def _render_processes(self, entries: Mapping[StatKey, SyscallStats]) -> None:
        snapshot = self.session.latest
        by_pid: dict[int, list[SyscallStats]] = {}
        for key, s in entries.items():
            by_pid.setdefault(key.pid, []).append(s)
        rows = sorted(((pid, merge_stats(v)) for pid, v in by_pid.items()),
                      key=lambda item: (-item[1].total_ns, item[0]))
        timing = snapshot.timing if snapshot else Timing.EXACT

        def time(ns: float) -> str:
            return format_time(format_duration(ns), timing)

        out = []
        for pid, s in rows:
            info = snapshot.processes.get(pid) if snapshot else None
            # The table draws cells as plain segments, sanitized: a comm is only data.
            out.append(Row((pid,), {"pid": pid}, {
                "pid": str(pid), "comm": info.comm if info else "?",
                "count": format_count(s.count), "errors": format_count(s.errors),
                "total_ns": time(s.total_ns), "avg_ns": time(s.avg_ns),
                "p99_ns": time(s.quantile(0.99)), "max_ns": time(s.max_ns)}))
        self.query_one("#by-process", KeyedTable).update_rows(out)

    def _render_errnos(self, batch: np.ndarray) -> None:
        ret = batch["ret"]
        failed = -ret[(ret < 0) & (ret >= -4095)]
        causes = errno_causes(self._failed.events)
        rows = [Row((errno_name(errno),), {"events": n},
                    {"errno": errno_name(errno), "events": format_count(n),
                     "behind": causes.get(errno, "-")})
                for errno, n in Counter(failed.tolist()).most_common()]
        self.query_one("#by-errno", KeyedTable).update_rows(rows)

    def _render_events(self, matched: int) -> None:
        """Newest first. Only when events arrived; the cursor stays on its event."""
        events: Sequence[LogEvent] = self._recent.events
        newest = event_key(events[-1]) if events else None
        if (matched, newest) == self._events_shown:
            return
        self._events_shown = (matched, newest)
        snapshot = self.session.latest
        start = snapshot.start_ts_ns if snapshot else 0
        table = self.query_one("#events", KeyedTable)
        following = table.cursor == 0
        table.update_rows([event_row(e, start) for e in reversed(events)], anchor=not following)
        if following:
            table.move_cursor(0)
        self._render_events_title(len(events), matched)

    def _render_events_title(self, shown: int, matched: int) -> None:
        held = self.query_one("#events", KeyedTable).cursor > 0
        state = ("paused: p resumes" if self.events_paused
                 else "held on the selected event: Home follows the newest" if held
                 else "newest first")
        self.query_one("#events-title", Static).update(
            f"recent events ({shown} of {matched} kept; the kernel sends failed calls, and "
            f"slow or sampled ones when asked) · {state}")

    def action_pause_events(self) -> None:
        self.events_paused = not self.events_paused
        if self.events_paused:
            table = self.query_one("#events", KeyedTable)
            self._render_events_title(table.row_count, self._events_shown[0])
        else:
            self.session_updated()
            shown = self.query_one("#events", KeyedTable).row_count
            self._render_events_title(shown, self._events_shown[0])


def _code(pid: int, abi: int, nr: int) -> int:
    """One number for a (pid, ABI, syscall number): pids stay below 2**22, ABI codes below
    4, syscall numbers below 2**32."""
    return (pid << 34) | ((abi & 3) << 32) | (nr & 0xFFFFFFFF)


def event_codes(batch: np.ndarray) -> np.ndarray:
    """_code of each event, its number as its aggregate key carries it (x32 without the bit)."""
    codes: np.ndarray = ((batch["pid"].astype(np.uint64) << np.uint64(34))
                         | ((batch["abi"].astype(np.uint64) & np.uint64(3)) << np.uint64(32))
                         | (key_numbers(batch) & np.uint64(0xFFFFFFFF)))
    return codes


def event_key(e: LogEvent) -> RowKey:
    """A thread makes one syscall at a time: its id and the time name the event."""
    return (e.tid, e.ts_ns, e.nr)


def event_row(e: LogEvent, start_ns: int) -> Row:
    def cells() -> dict[str, str]:  # made (and decoded) only for the rows on screen
        return {"time": f"{(e.ts_ns - start_ns) / 1e9:.6f}", "pid": str(e.pid),
                "tid": str(e.tid), "duration": duration_cell(e.duration_ns),
                "call": e.call}
    return Row(event_key(e), {"ts": e.ts_ns}, cells)
