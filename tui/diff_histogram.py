"""Enter on a row of the diff: the latency histograms of A and B overlaid, on the same
buckets (one per power of two, as the detail view's chart), in two colours; `s` shows each
run's shares of its own calls instead of counts, so runs of different lengths compare.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from tracing.model.diff import DiffRow
from tracing.model.stats import Hist, bucket_bounds, percentile
from tracing.model.units import format_duration, format_exact_count
from tui.actions import bindings_for
from tui.diff_rows import shown_key
from tui.footer import KeyFooter
from tui.screens import DrillDown
from tui.text import line

A_STYLE = "bold cyan"
B_STYLE = "bold magenta"
MARKS = (("p50", 0.5, "p50_ns"), ("p95", 0.95, "p95_ns"), ("p99", 0.99, "p99_ns"))
LABELS_WIDTH = 42  # range, side, value and marks beside the bars
BAR_WIDTH = 80  # the longest bar: longer ones are no easier to compare


@dataclass(frozen=True)
class Bucket:
    low_ns: int
    high_ns: int
    a: int
    b: int


def overlaid(hist_a: Hist, hist_b: Hist) -> list[Bucket]:
    """Both histograms on the same buckets, one per power of two from the lowest to the
    highest either run reached (the empty ones between included: the gaps are the shape)."""
    counts: dict[int, list[int]] = {}
    for side, hist in enumerate((hist_a, hist_b)):
        for bucket, count in hist:
            low, _high = bucket_bounds(bucket)
            power = max(low, 1).bit_length() - 1
            counts.setdefault(power, [0, 0])[side] += count
    if not counts:
        return []
    return [Bucket(1 << p, 1 << (p + 1), *counts.get(p, (0, 0)))
            for p in range(min(counts), max(counts) + 1)]


def marks(row: DiffRow, side: str) -> dict[str, int]:
    """p50, p95 and p99 of one run: as the table shows them, else from its histogram."""
    values = row.a if side == "a" else row.b
    hist = row.hist_a if side == "a" else row.hist_b
    if values is None:
        return {}
    return {name: int(values[metric]) if metric in values else percentile(hist, q)
            for name, q, metric in MARKS}


def _bar(part: float, width: int) -> str:
    filled = part * width
    return "█" * int(filled) + ("▌" if filled - int(filled) >= 0.5 else "")


def chart(row: DiffRow, shares: bool, width: int) -> Table | Text:
    """Two bars per bucket, A over B, scaled to the largest bar of either."""
    buckets = overlaid(row.hist_a, row.hist_b)
    if not buckets:
        return Text("no latency histogram in either run for this row", style="dim")
    totals = (sum(b.a for b in buckets) or 1, sum(b.b for b in buckets) or 1)

    def amount(count: int, side: int) -> float:
        return count / totals[side] if shares else count

    peak = max(max(amount(b.a, 0), amount(b.b, 1)) for b in buckets) or 1
    mark_a, mark_b = marks(row, "a"), marks(row, "b")
    grid = Table.grid(padding=(0, 1))
    grid.add_column(justify="right", style="dim")
    grid.add_column()
    grid.add_column()
    grid.add_column(justify="right")
    grid.add_column(style="yellow")
    for b in buckets:
        for side, count, style, found in ((0, b.a, A_STYLE, mark_a), (1, b.b, B_STYLE, mark_b)):
            value = amount(count, side)
            shown = f"{value * 100:.1f}%" if shares else format_exact_count(count)
            names = " ".join(n for n, v in found.items() if b.low_ns <= v < b.high_ns)
            grid.add_row(f"{format_duration(b.low_ns)}–{format_duration(b.high_ns)}"
                         if side == 0 else "",
                         Text("AB"[side], style=style),
                         Text(_bar(value / peak, width) or ("▏" if count else ""),
                              style=style.split()[-1]),
                         shown, names)
    return grid


def side_summary(row: DiffRow, side: str) -> Text:
    values = row.a if side == "a" else row.b
    style = A_STYLE if side == "a" else B_STYLE
    if values is None:
        return line((side.upper(), style), ("  not in this run", "dim"))
    found = marks(row, side)
    calls = format_exact_count(int(values.get("count", 0)))
    return line((side.upper(), style), f"  calls {calls} · " + " · ".join(
        f"{name} {format_duration(v)}" for name, v in found.items()))


class DiffHistogramScreen(DrillDown):
    ACTION_SCREEN = "diff-hist"
    BINDINGS = bindings_for("diff-hist")
    DEFAULT_CSS = """
    DiffHistogramScreen #diff-hist-title { height: auto; padding: 0 1; background: $panel; }
    DiffHistogramScreen #diff-hist-body { height: 1fr; }
    DiffHistogramScreen #diff-hist-chart { padding: 1 1 0 1; height: auto; }
    """

    def __init__(self, row: DiffRow, what: str) -> None:
        super().__init__()
        self.row = row
        self.what = what  # "syscall", "command": what the row's key names
        self.shares = False

    def compose(self) -> ComposeResult:
        yield Static(id="diff-hist-title")
        with VerticalScroll(id="diff-hist-body"):
            yield Static(id="diff-hist-chart")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#diff-hist-body").focus()
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        scale = "shares of each run's calls (s: counts)" if self.shares \
            else "calls (s: shares of each run's calls)"
        title = line((shown_key(self.row), "bold"), f" · {self.what} latency, A and B · {scale}")
        self.query_one("#diff-hist-title", Static).update(Text("\n").join(
            [title, side_summary(self.row, "a"), side_summary(self.row, "b")]))
        width = min(max(self.app.size.width - LABELS_WIDTH, 10), BAR_WIDTH)
        self.query_one("#diff-hist-chart", Static).update(chart(self.row, self.shares, width))

    def action_toggle_shares(self) -> None:
        self.shares = not self.shares
        self._draw()

