"""The live view's rates, on the recorded replay: calls per second over the snapshots of the
last seconds while the target runs, none once it exited (issue 13, item 7)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tracing.model.stats import Snapshot
from tracing.sources import ReplaySource
from tui.app import SikteApp
from tui.columns import RowKey
from tui.live import LiveScreen
from tui.table import KeyedTable

from .conftest import NOW, until

SIZE = (160, 48)


class Stepped(ReplaySource):
    """The first snapshots at start, the others when the test pushes them."""

    def __init__(self, snapshots: list[Snapshot], first: int) -> None:
        super().__init__(snapshots)
        self.first = first

    def start(self, on_snapshot, on_output, on_failure=None) -> None:  # type: ignore[override]
        self._on_snapshot = on_snapshot
        for snapshot in self.snapshots[:self.first]:
            self._emit(snapshot)

    def push(self, snapshot: Snapshot) -> None:
        self._emit(snapshot)


def header(app: SikteApp) -> str:
    content = app.screen.query_one("#status", Static).content
    return content.plain if isinstance(content, Text) else Text.from_markup(content).plain


def rate_cells(app: SikteApp) -> dict[RowKey, str]:
    table = app.screen.query_one(KeyedTable)
    return {r.key: r.cells["rate"] for r in table.rows}


async def test_rates_cover_the_window_and_go_once_the_target_exits(snapshots):
    assert [s.state for s in snapshots] == ["tracing"] * 3 + ["exited"]
    source = Stepped(snapshots, first=3)
    app = SikteApp(source=source, clock=lambda: NOW)
    running = snapshots[:3]
    calls = sum(d.count for s in running for d in s.interval.values())
    span = sum(s.interval_s for s in running)
    shown = f"{round(calls / span)}/s"  # 7031 calls in 0.76 s: 9230/s, not the last tick's
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: shown in header(app))
        assert isinstance(app.screen, LiveScreen)
        assert all(cell not in ("", "-") for cell in rate_cells(app).values())
        source.push(snapshots[3])
        await until(pilot, lambda: "/s" not in header(app))
        await until(pilot, lambda: set(rate_cells(app).values()) == {"-"})
        assert "target exited (0)" in header(app)
