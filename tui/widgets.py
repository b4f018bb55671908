"""Widgets of the live and detail views: the status header, the latency histogram chart, the
process tree and the command output panel. They render what they are given."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Input, RichLog, Static, Tree
from textual.widgets.tree import TreeNode

from tracing.boundary.display_text import sanitize
from tracing.model.report import drop_parts
from tracing.model.stats import Hist, ProcessInfo, Snapshot, bucket_bounds
from tracing.model.timing import Timing, timing_of
from tracing.model.units import (
    format_count,
    format_duration,
    format_elapsed,
    format_exact_count,
    format_rate,
)
from tracing.sources import SnapshotSource
from tui.messages import SourceFailed
from tui.text import error_line
from tui.text import line as text_line

TITLE_LIMIT = 500  # the header line is cut to the screen anyway
COMM_LIMIT = 64  # a comm is 15 bytes from the kernel; more only from a crafted session file
MAX_OUTPUT_LINE = 8192  # characters of one line of the command's output that are kept


class StatusHeader(Static):
    """Targets, state, elapsed time, rates, drops and the tracer's own CPU cost."""

    def show(self, title: str, snapshot: Snapshot | None, state: str, calls: int,
             rate: float | None,
             tracer_cpu_pct: float | None, view: str, samples: int = 0,
             alert: Text | None = None, window: str | None = None,
             bpf: tuple[str, str] | None = None) -> None:
        """`alert`: what went wrong and what to do (a failed tracer, a journal kept in
        memory), a third line the person cannot miss; the header grows to hold it.
        `window`: the live window shown ("last 5 s"), None since the start."""
        # State and time first: a long command line is what gets cut, never the state.
        line1 = self._state_text(state)
        if snapshot is not None:
            line1.append(f"  {format_elapsed(snapshot.elapsed_s)}", style="bold")
        if window is not None:  # beside the time: the counts below are the window's
            line1.append(f"  window: {window}", style="bold reverse yellow")
        if snapshot is not None:
            line1.append_text(timing_text(snapshot.timing))
        if snapshot is not None and snapshot.sample_hz:
            line1.append(f"  samples {samples:,} @{snapshot.sample_hz} Hz")
        line1.append("  sikte-tui ▸ ", style="dim")
        line1.append(sanitize(title, TITLE_LIMIT), style="bold cyan")  # targets, a file name
        line2 = Text()
        line2.append(f"syscalls {format_exact_count(calls)}  ")
        if rate is not None:  # None: the targets are gone, nothing is called any more
            line2.append(f"{format_rate(rate)}/s  ")
        lost = drop_parts(snapshot.drops) if snapshot else []
        # Each cause on its own: lost stacks are not lost syscall events.
        line2.append(f"dropped {', '.join(lost)}" if lost else "dropped 0",
                     style="bold red" if lost else "")
        if tracer_cpu_pct is not None:
            line2.append(f"  tracer CPU {tracer_cpu_pct:.1f}%")
        if bpf is not None:  # issue 18: "BPF 85 ns/call · 2.1% CPU" (tracing/model/bpf_cost.py)
            # The short form where the long one would be cut (80 columns).
            fits = not self.size.width or line2.cell_len + 2 + len(bpf[0]) < self.size.width
            line2.append(f"  {bpf[0] if fits else bpf[1]}")
        line2.append(f"   {sanitize(view)}", style="dim")  # it quotes the typed filter
        lines = [line1, line2] if alert is None else [line1, line2, alert]
        for line in lines:
            line.no_wrap, line.overflow = True, "ellipsis"
        self.styles.height = len(lines)
        self.update(Text("\n").join(lines))

    @staticmethod
    def _state_text(state: str) -> Text:
        style = {"tracing": "bold green", "paused": "bold yellow", "starting": "yellow",
                 "failed": "bold red"}.get(state.split(" ")[0], "bold magenta")
        return Text(f"● {state}", style=style)


def timing_text(timing: str) -> Text:
    """The header's timing mode: plain when exact; when sampled or off, what the marks in
    the tables mean ("~" estimates, "-" not measured), where the eye goes first."""
    mode = timing_of(timing)
    if mode is Timing.EXACT:
        return Text("  timing exact", style="dim")
    if mode is Timing.SAMPLED:
        return Text("  timing sampled: ~ estimates", style="bold yellow")
    return Text("  timing off: counts only", style="bold yellow")


def alert_line(failure: SourceFailed | None, source: SnapshotSource) -> Text | None:
    """The header's third line: why tracing failed, or that the journal is only in memory,
    each with what to do; None when all is well."""
    if failure is not None:
        hint = ("the counts until then stay on screen and in the session: x exports it, "
                "q quits") if failure.started else "q quits"
        return error_line(f"{failure.reason} · {hint}")  # it may quote a path or a name
    journal = source.journal_line()
    if journal and source.journal_failed():
        return text_line(("⚠ ", "bold yellow"),
                         (f"{journal}: x exports it (quitting offers to)", "bold yellow"))
    return None


def _coarse(hist: Hist) -> list[tuple[int, int, int]]:
    """Merge the fine buckets into one bar per power of two: (low_ns, high_ns, count)."""
    bars: dict[int, list[int]] = {}
    for bucket, count in hist:
        lo, _hi = bucket_bounds(bucket)
        power = max(lo, 1).bit_length() - 1
        bar = bars.setdefault(power, [1 << power, 1 << (power + 1), 0])
        bar[2] += count
    return [(low, high, n) for low, high, n in (bars[p] for p in sorted(bars))]


class HistogramChart(Static):
    """A horizontal bar chart of latencies, one bar per power of two."""

    def show(self, hist: Hist, marks: dict[str, int], width: int = 40) -> None:
        bars = _coarse(hist)
        if not bars:
            self.update(Text("no calls yet", style="dim"))
            return
        peak = max(c for _, _, c in bars)
        table = Table.grid(padding=(0, 1))
        table.add_column(justify="right", style="dim")
        table.add_column()
        table.add_column(justify="right")
        table.add_column(style="yellow")
        for lo, hi, count in bars:
            filled = count * width / peak
            bar = "█" * int(filled) + ("▌" if filled - int(filled) >= 0.5 else "")
            labels = " ".join(name for name, v in marks.items() if lo <= v < hi)
            table.add_row(f"{format_duration(lo)}–{format_duration(hi)}",
                          Text(bar or "▏", style="cyan"), format_count(count), labels)
        self.update(table)


def thread_label(p: ProcessInfo) -> str:
    """How many threads a process has: those running and, apart, every one seen ("3 threads,
    621 total"); of an ended process, every one seen. "" for one thread only."""
    total = p.thread_total
    if total <= 1:
        return ""
    live = p.live_thread_count
    if not p.alive or live == total:
        text = f"{total:,} threads"
    else:
        text = f"{live:,} thread{'' if live == 1 else 's'}, {total:,} total"
    if p.thread_names_dropped:
        text += f", {p.thread_names_dropped:,} unnamed"
    return text


class ProcessTreePanel(Tree[int]):
    """The traced processes as a tree (fork), with exec'd names and exit status."""

    def show(self, processes: dict[int, ProcessInfo]) -> None:
        children: dict[int, list[ProcessInfo]] = {}
        for p in processes.values():
            parent = p.ppid if p.ppid in processes else 0
            children.setdefault(parent, []).append(p)
        self.clear()
        self.root.expand()
        self._add(self.root, 0, children)

    def _add(self, node: TreeNode[int], pid: int,
             children: dict[int, list[ProcessInfo]]) -> None:
        for p in sorted(children.get(pid, []), key=lambda p: p.pid):
            label = Text(f"{p.pid} ", style="bold")
            label.append(sanitize(p.comm, COMM_LIMIT) if p.comm else "?")
            threads = thread_label(p)
            if threads:
                label.append(f" ({threads})", style="dim")
            if p.exit is not None:
                label.append(f" exit {p.exit}", style="magenta")
            child = node.add(label, data=p.pid, expand=True)
            self._add(child, p.pid, children)
            if not children.get(p.pid):
                child.allow_expand = False


class DataInput(Input):
    """An input field whose text is shown as typed, except control and format characters
    (a paste may hold any): they become their visible escapes (tracing.boundary.display_text), and a
    tab a space, so a pasted filter or command line keeps its words apart."""

    def validate_value(self, value: str) -> str:
        return _typed(value)

    def replace(self, text: str, start: int, end: int) -> None:
        # Sanitized before Input places the cursor after it (by the inserted length).
        super().replace(_typed(text), start, end)


def _typed(text: str) -> str:
    return sanitize(text.replace("\t", " "))


class OutputPanel(RichLog):
    """What the launched command writes, kept scrollable, never drawn over the screen."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(max_lines=5000, wrap=True, markup=False, highlight=False,
                         **kwargs)  # type: ignore[arg-type]
        self._partial = ""
        self._explained = False  # the panel shows why it is empty (until output comes)

    def explain_empty(self, source: SnapshotSource) -> None:
        """Say why the panel stays empty: only a command sikte-tui launches has its output
        here (it owns that terminal); a traced PID writes where it always did."""
        if source.capabilities.output:
            return
        why = ("no output: sikte-tui did not launch this process (its output goes where it "
               "always did; sikte-tui -- COMMAND shows a command's output here)"
               if source.capabilities.live
               else "no output: a saved session keeps no command output")
        self.write(Text(why, style="dim italic"))
        self._explained = True

    def feed(self, text: str) -> None:
        if self._explained:
            self.clear()
            self._explained = False
        text = self._partial + text
        *lines, self._partial = text.split("\n")
        if len(self._partial) > MAX_OUTPUT_LINE:  # a command that never writes a newline
            lines.append(self._partial)
            self._partial = ""
        for line in lines:
            # The command's own escape sequences are shown, not run: they would draw over
            # the screen (or retitle the terminal) from inside the panel.
            self.write(Text(sanitize(line, MAX_OUTPUT_LINE, keep="\t")))
