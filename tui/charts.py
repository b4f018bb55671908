"""Charts of the session over time: the live view's two-line strip of calls/s and errors/s
(Textual's Sparkline), and a syscall's rate and p50/p99 over time in its drill-down
(textual-plotext), the shown window marked.

Their data is the session's slots (tracing.model.timeseries): live, SessionView.series,
grown from every snapshot; a saved session's from its timeline, read once when first drawn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Sparkline, Static
from textual_plotext import PlotextPlot
from textual_plotext.plot import Plot

from tracing.model.report import key_name
from tracing.model.stats import Snapshot, StatKey
from tracing.model.timeseries import RatePoint, SessionSeries, SyscallId, SyscallPoint
from tracing.model.units import format_duration, format_rate
from tracing.session.series import stored_series
from tracing.session.window import Window, whole
from tracing.sources import SavedSessionView, SnapshotSource
from tui.session import SessionView

STRIP_MIN_HEIGHT = 20  # below this many lines the table needs the strip's two
HEADROOM = 1.2  # the plots' highest value under their top, as a factor
# The lines' colours, named alike in plotext and Rich: the legend is in the title above the
# plots (plotext's own legend fails at some widths).
LINES = (("calls/s", "cyan"), ("errors/s", "red"), ("p50", "green"), ("p99", "magenta"))
LATENCY_TICKS = 6  # labels on the latency axis, at most
RATE_TICKS = 6  # labels on the rate axis, at most
MINUTES_PAST_S = 600.0  # a longer session's time axis reads in minutes
STRIP_MIN_WIDTH = 8  # sparkline cells, or the strip says nothing worth its lines
WINDOW_COLOR = "yellow"  # the window's marks in the detail plots


# -- which slots ------------------------------------------------------------------------------


def session_series(session: SessionView, source: SnapshotSource | None) -> SessionSeries:
    """The session's slots: a saved session's from its timeline (read once, then kept in
    the SessionView, which lives as long as that session is shown)."""
    saved = source.capabilities.saved if source is not None else None
    if saved is not None and not session.series.closed:
        session.series = stored_series(saved.session)
    return session.series


def shown_window(session: SessionView, saved: SavedSessionView | None
                 ) -> tuple[int, int] | None:
    """The stretch shown, [start, end] ns on the session's clock; None: the whole session."""
    if saved is not None:
        window: Window = saved.window
        if window == whole(saved.session):
            return None
        return window.start_ns, window.end_ns
    cutoff = session.window.cutoff_ns
    newest = session.newest
    if cutoff is None or newest is None:
        return None
    return cutoff, newest.ts_ns


def strip_points(session: SessionView, source: SnapshotSource | None) -> list[RatePoint]:
    """The strip's slots: the live window's (the recent fine slots), a saved session's
    chosen stretch, or the whole session."""
    series = session_series(session, source)
    saved = source.capabilities.saved if source is not None else None
    window = shown_window(session, saved)
    if window is None:
        return series.rates()
    if saved is None and series.start_ns is not None:
        return series.recent.rates(window[0], series.start_ns)
    return series.rates(window[0], window[1])


def columns(points: Sequence[RatePoint], n: int, errors: bool = False) -> list[float]:
    """The rates in `n` columns: several slots in one column are summed (calls over the
    seconds they cover), fewer slots than columns are each stretched over several."""
    if not points or n <= 0:
        return []
    out = []
    step = Fraction(len(points), n)
    for i in range(n):
        lo = int(step * i)
        hi = max(int(step * (i + 1)), lo + 1)
        group = points[lo:hi]
        seconds = sum(p.seconds for p in group)
        made = sum(p.errors if errors else p.calls for p in group)
        out.append(made / seconds if seconds > 0 else 0.0)
    return out


# -- the live view's strip ------------------------------------------------------------------


class RateStrip(Vertical):
    """Two lines under the header: calls/s and errors/s over the session (or the window),
    each with its newest and highest value. Hidden on terminals under STRIP_MIN_HEIGHT
    lines. The leftmost cell of each line is a zero: a Sparkline spans its lowest to its
    highest value, and a rate read from a baseline that is not zero misleads."""

    def compose(self) -> ComposeResult:
        for metric in ("calls", "errors"):
            with Horizontal(classes="rate-row"):
                yield Static(f"{metric}/s", classes="rate-label")
                yield Sparkline([], id=f"{metric}-spark", classes=f"rate-{metric}")
                yield Static("", id=f"{metric}-value", classes="rate-value")

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._points: list[RatePoint] = []

    def show(self, session: SessionView, source: SnapshotSource | None) -> None:
        self._points = strip_points(session, source)
        self._draw()

    def on_mount(self) -> None:
        # A hidden strip gets no resize of its own: the screen's layout says when the
        # terminal grew back.
        self.screen.screen_layout_refresh_signal.subscribe(self, lambda _screen: self._fit())
        self._fit()

    def on_resize(self) -> None:
        self._draw()

    def _fit(self) -> None:
        shown = self.app.size.height >= STRIP_MIN_HEIGHT
        if self.display != shown:  # only a change: setting it lays the screen out again
            self.display = shown

    def _draw(self) -> None:
        self._fit()
        points = self._points
        for metric in ("calls", "errors"):
            spark = self.query_one(f"#{metric}-spark", Sparkline)
            cells = max(spark.size.width - 1, STRIP_MIN_WIDTH)
            values = columns(points, cells, errors=metric == "errors")
            spark.data = [0.0, *values] if values else []
            self.query_one(f"#{metric}-value", Static).update(
                value_text(points, errors=metric == "errors"))


def value_text(points: Sequence[RatePoint], errors: bool) -> Text:
    """`now 812 · peak 1.2k`: the newest slot's rate and the highest."""
    if not points:
        return Text("no calls yet", style="dim")
    rates = [p.errors_per_s if errors else p.calls_per_s for p in points]
    text = Text("now ", style="dim")
    text.append(format_rate(rates[-1]), style="bold red" if errors and rates[-1] else "bold")
    text.append(" · peak ", style="dim")
    text.append(format_rate(max(rates)))
    return text


# -- a syscall's plots ------------------------------------------------------------------------


def syscall_ids(series: SessionSeries, snapshot: Snapshot, name: str, abi: int | None
                ) -> set[SyscallId]:
    """The (number, ABI) pairs the series holds under this name (one ABI's when given)."""
    return {(nr, code) for nr, code in series.syscall_ids()
            if (abi is None or code == abi) and key_name(snapshot, StatKey(0, 0, nr, code)) == name}


def latency_ticks(low: float, high: float) -> list[float]:
    """Ticks of a logarithmic latency axis, in ns: 1, 2 and 5 of each power of ten between
    low and high, only the powers of ten when those are too many, the ends when none fall
    inside."""
    low, high = max(low, 1.0), max(high, 1.0)
    ticks = [m * 10.0 ** e for e in range(0, 13) for m in (1, 2, 5)
             if low <= m * 10.0 ** e <= high]
    if len(ticks) > LATENCY_TICKS:
        ticks = [t for t in ticks if str(int(t)).startswith("1")]
    if len(ticks) > LATENCY_TICKS:  # a span of many powers of ten: every other one
        ticks = ticks[::2]
    return ticks if len(ticks) >= 2 else sorted({low, high})


class SyscallPlots(Horizontal):
    """A syscall's calls/s (and errors/s) and its p50/p99 over the session, side by side;
    the window shown (a live window, a saved session's stretch) between two yellow lines."""

    def compose(self) -> ComposeResult:
        yield PlotextPlot(id="rate-plot")
        yield PlotextPlot(id="latency-plot")

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._drawn: object = None

    def show(self, points: Sequence[SyscallPoint], window: tuple[float, float] | None,
             timing: str = "exact") -> None:
        """`window`: its start and end in seconds from the session's start; `timing`: the
        snapshots' mode (sampled latencies are estimates; off: none were measured)."""
        key = (len(points), points[-1] if points else None, window, timing)
        if key == self._drawn:  # nothing new: plotting is not free at four times a second
            return
        self._drawn = key
        self._plot_rates(points, window)
        self._plot_latency(points, window, timing)

    def _plot_rates(self, points: Sequence[SyscallPoint],
                    window: tuple[float, float] | None) -> None:
        widget = self.query_one("#rate-plot", PlotextPlot)
        plt = widget.plt
        plt.clear_figure()
        plt.title("rate")
        if points:
            x = _times(points)
            plt.plot(x, [p.calls_per_s for p in points], marker="braille", color="cyan")
            if any(p.stats.errors for p in points):
                plt.plot(x, [p.stats.errors / p.seconds for p in points], marker="braille",
                         color="red")
            top = max(max(p.calls_per_s for p in points), 1.0)
            plt.ylim(0, top * HEADROOM)
            ticks = rate_ticks(top)
            plt.yticks(ticks, [format_rate(t) for t in ticks])
        _frame(plt, points, window)
        widget.refresh()

    def _plot_latency(self, points: Sequence[SyscallPoint],
                      window: tuple[float, float] | None, timing: str = "exact") -> None:
        widget = self.query_one("#latency-plot", PlotextPlot)
        plt = widget.plt
        plt.clear_figure()
        if timing == "off":  # every latency is 0: a flat line at 1 ns would be a claim
            plt.title("latency: not measured (timing off)")
            _frame(plt, points, window)
            widget.refresh()
            return
        called = [p for p in points if p.stats.count]
        # A 0 ns bucket has no logarithm: drawn at 1 ns.
        p50 = [max(p.quantile_ns(0.5), 1) for p in called]
        p99 = [max(p.quantile_ns(0.99), 1) for p in called]
        # Latencies span powers of ten (a cache hit and a disk read): a logarithmic axis.
        plt.title("~latency (log scale, estimates)" if timing == "sampled"
                  else "latency (log scale)")
        if called:
            # The logarithms are plotted on a linear axis labelled in durations: plotext's
            # own logarithmic axis takes the logarithm again at each redraw (a resize).
            x = _times(called)
            plt.plot(x, [math.log10(v) for v in p99], marker="braille", color="magenta")
            plt.plot(x, [math.log10(v) for v in p50], marker="braille", color="green")
            low, high = min(p50), max(p99)
            ticks = latency_ticks(low, high)
            plt.ylim(math.log10(min(low, ticks[0]) / HEADROOM),
                     math.log10(max(high, ticks[-1]) * HEADROOM))
            plt.yticks([math.log10(t) for t in ticks], [format_duration(t) for t in ticks])
        _frame(plt, points, window)
        widget.refresh()


def rate_ticks(top: float) -> list[float]:
    """0 and every step up to top, the step 1, 2 or 5 of a power of ten, at most five."""
    step = 1.0
    while top / step > RATE_TICKS - 1:
        for m in (2.0, 2.5, 2.0):  # 1 -> 2 -> 5 -> 10
            step *= m
            if top / step <= RATE_TICKS - 1:
                break
    return [i * step for i in range(int(top / step) + 1)]


def time_unit(end_s: float) -> tuple[float, str]:
    """Seconds, or minutes for a long session (their numbers stay short)."""
    return (60.0, "min") if end_s > MINUTES_PAST_S else (1.0, "s")


def _times(points: Sequence[SyscallPoint]) -> list[float]:
    """Each slot at its end, in the unit of the whole session's axis."""
    scale, _unit = time_unit(points[-1].end_s)
    return [p.end_s / scale for p in points]


def _frame(plt: Plot, points: Sequence[SyscallPoint],
           window: tuple[float, float] | None) -> None:
    """The x axis (time from the start, the session's whole length) and the window."""
    end = points[-1].end_s if points else 1.0
    scale, unit = time_unit(end)
    plt.xlim(0, end / scale)
    plt.xlabel(unit)
    if window is not None:
        for edge in window:
            if 0.0 < edge < end:  # at an end of the axis the frame marks it already
                plt.vline(edge / scale, WINDOW_COLOR)


def plot_title(points: Sequence[SyscallPoint], window: tuple[float, float] | None,
               pid: int | None) -> Text:
    """Above the plots: their slots' width, the lines' colours, the window (every process's
    calls: the slots are per syscall). Short enough for one line at 80 columns."""
    width = points[0].end_s - points[0].start_s if points else 0.0
    text = Text(f"every {format_duration(width * 1e9)}" if points else "over time",
                style="bold")
    for label, color in LINES:
        text.append(" ━ ", style=color)
        text.append(label)
    if window is not None:
        text.append(f"  │ window {window[0]:.1f}–{window[1]:.1f} s", style=WINDOW_COLOR)
    if pid is not None:
        text.append(" · all processes' calls", style="dim")
    return text
