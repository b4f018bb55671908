"""The charts (tui/charts.py): the live view's calls/s and errors/s strip and a syscall's
plots over time, on a made-up phased session (charts_fixture.py) with exact rates; live, with
a live window, and from a saved session (the same numbers from its timeline). Snapshot tests
at 80x24 and 160x48; after a deliberate change of the charts, look at the new screens and
accept them with `--snapshot-update`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Sparkline, Static

from tracing.model.stats import bucket_bounds, bucket_of
from tracing.session.journal import Journal
from tracing.session.stored import open_session
from tracing.session.window import Window
from tracing.sources import ReplaySource, StoredSource
from tui.app import SikteApp
from tui.charts import RateStrip, SyscallPlots, strip_points
from tui.detail import DetailScreen
from tui.live import LiveScreen
from tui.table import KeyedTable

from .charts_fixture import START_NS, phased_snapshots
from .conftest import NOW, SIZES, until

SnapCompare = Callable[..., bool]  # pytest-textual-snapshot's fixture

# Per tick of 0.25 s: phase 1 2020 calls, phase 2 320 (100 failed), phase 3 1050 (10 failed).
PHASE_RATES = [8080.0] * 10 + [1280.0] * 10 + [4200.0] * 10
PHASE_ERRORS = [0.0] * 10 + [400.0] * 10 + [40.0] * 10


def live_app() -> SikteApp:
    return SikteApp(source=ReplaySource(phased_snapshots()), clock=lambda: NOW)


def saved_app(tmp_path: Path) -> SikteApp:
    path = tmp_path / "phases.sikte.db"
    journal = Journal(path, {"targets": ["phases"]})
    for snapshot in phased_snapshots():
        journal.put(snapshot)
    journal.close()
    return SikteApp(source=StoredSource(open_session(path)), clock=lambda: NOW)


def middle(bounds: tuple[int, int]) -> int:
    return (bounds[0] + bounds[1] - 1) // 2


def strip_text(app: App[Any], metric: str) -> str:
    return str(app.screen.query_one(f"#{metric}-value", Static).render())


async def strip_drawn(pilot: Pilot[Any]) -> None:
    await until(pilot, lambda: "peak" in strip_text(pilot.app, "calls"),
                seen=lambda: strip_text(pilot.app, "calls"))
    await pilot.pause(0.3)  # a render tick after: nothing left to change


async def open_syscall(pilot: Pilot[Any], name: str) -> DetailScreen:
    await strip_drawn(pilot)
    table = pilot.app.screen.query_one(KeyedTable)
    table.move_cursor([r.key[0] for r in table.rows].index(name))
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(pilot.app.screen, DetailScreen))
    screen = pilot.app.screen
    assert isinstance(screen, DetailScreen)
    await until(pilot, lambda: "every" in str(screen.query_one("#over-time-title",
                                                                Static).render()))
    return screen


async def live_window(pilot: Pilot[Any], key: str) -> None:
    """Choose a live window with the `w` menu: 1 the last 5 s, 0 since the start."""
    screen = pilot.app.screen
    assert isinstance(screen, LiveScreen)
    window = screen.session.window
    await pilot.press("w")
    await until(pilot, lambda: pilot.app.screen is not screen)
    await pilot.press(key)
    wanted = 5.0 if key == "1" else None
    await until(pilot, lambda: pilot.app.screen is screen and window.span_s == wanted)



async def test_the_strip_shows_each_phase_rate_exactly() -> None:
    app = live_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await strip_drawn(pilot)
        screen = app.screen
        assert isinstance(screen, LiveScreen)
        points = strip_points(screen.session, screen.source)
        assert [p.calls_per_s for p in points] == PHASE_RATES
        assert [p.errors_per_s for p in points] == PHASE_ERRORS
        assert strip_text(app, "calls") == "now 4200 · peak 8080"
        assert strip_text(app, "errors") == "now 40 · peak 400"
        spark = screen.query_one("#calls-spark", Sparkline)
        data = list(spark.data or ())
        # A zero first (the baseline), then one value per remaining cell.
        assert data[0] == 0.0 and len(data) == spark.size.width
        assert max(data) == 8080.0 and data[-1] == 4200.0

        # The last 5 s: phase 3 only, from the fine recent slots.
        await live_window(pilot, "1")
        points = strip_points(screen.session, screen.source)
        assert [p.start_s for p in points] == [10 + k / 2 for k in range(10)]
        assert {p.calls_per_s for p in points} == {4200.0}
        assert strip_text(app, "calls") == "now 4200 · peak 4200"
        await live_window(pilot, "0")
        assert len(strip_points(screen.session, screen.source)) == 30


async def test_a_syscall_plots_its_rate_and_latency_with_the_window_marked() -> None:
    app = live_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await strip_drawn(pilot)
        await live_window(pilot, "1")
        screen = await open_syscall(pilot, "openat")
        title = str(screen.query_one("#over-time-title", Static).render())
        assert title.startswith("every 500ms") and "window 10.0–15.0 s" in title
        series = screen.session.series
        points = series.syscall({(257, 0)})
        assert [p.calls_per_s for p in points] == [0.0] * 10 + [1200.0] * 10 + [200.0] * 10
        # Every call of a phase lasts alike: p50 and p99 are that bucket's middle.
        fast, slow = (middle(bucket_bounds(bucket_of(ns))) for ns in (20_000, 400_000))
        assert [(p.quantile_ns(0.5), p.quantile_ns(0.99)) for p in points[10:]] == \
            [(fast, fast)] * 10 + [(slow, slow)] * 10


async def test_a_saved_session_shows_the_same_rates_and_its_stretch(tmp_path: Path) -> None:
    app = saved_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await strip_drawn(pilot)
        screen = app.screen
        assert isinstance(screen, LiveScreen)
        points = strip_points(screen.session, screen.source)
        assert [p.calls_per_s for p in points] == PHASE_RATES
        assert [p.errors_per_s for p in points] == PHASE_ERRORS
        saved = screen.source.capabilities.saved
        assert saved is not None
        saved.set_window(Window(START_NS + 5_000_000_000, START_NS + 10_000_000_000))
        await until(pilot, lambda: strip_text(app, "calls") == "now 1280 · peak 1280",
                    seen=lambda: strip_text(app, "calls"))
        assert [p.start_s for p in strip_points(screen.session, screen.source)] == [
            k / 2 for k in range(10, 20)]
        detail = await open_syscall(pilot, "openat")
        title = str(detail.query_one("#over-time-title", Static).render())
        assert "window 5.0–10.0 s" in title
        assert [p.stats.count for p in detail.session.series.syscall({(257, 0)})] == \
            [0] * 10 + [600] * 10 + [100] * 10


# -- snapshots ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_live_strip(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    assert snap_compare(live_app(), terminal_size=size, run_before=strip_drawn)


@pytest.mark.parametrize("size", SIZES)
def test_live_strip_in_a_window(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    async def windowed(pilot: Pilot[Any]) -> None:
        await strip_drawn(pilot)
        await live_window(pilot, "1")
        await pilot.pause(0.3)

    assert snap_compare(live_app(), terminal_size=size, run_before=windowed)


@pytest.mark.parametrize("size", SIZES)
def test_syscall_plots(snap_compare: SnapCompare, size: tuple[int, int]) -> None:
    async def plotted(pilot: Pilot[Any]) -> None:
        await strip_drawn(pilot)
        await live_window(pilot, "1")
        screen = await open_syscall(pilot, "openat")
        screen.query_one(SyscallPlots).scroll_visible(animate=False)  # below, at 80x24
        await pilot.pause(0.3)

    assert snap_compare(live_app(), terminal_size=size, run_before=plotted)


async def test_the_strip_gives_its_lines_to_the_table_on_a_short_terminal() -> None:
    app = live_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await strip_drawn(pilot)
        strip = app.screen.query_one(RateStrip)
        assert strip.display and strip.region.height == 2
        await pilot.resize_terminal(80, 18)
        await until(pilot, lambda: not strip.display)
        await pilot.resize_terminal(80, 24)
        await until(pilot, lambda: strip.display and strip.region.height == 2)
