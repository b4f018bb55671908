"""The calls-in-flight view (I) on the replay fixture with calls in flight added: exact rows
(name in the call's own ABI, how long, when entered), longest first, the title's count and
age, Enter back to the live view filtered on the thread, a session without them, and a live
trace asked to read them only while the view is open."""

from __future__ import annotations

import dataclasses

from rich.text import Text
from textual.widgets import Input, Static

from tracing.model.inflight import InFlight, InFlightRead, ordered
from tracing.model.stats import Snapshot, TraceState
from tracing.sources import Capabilities, ReplaySource
from tui.app import SikteApp
from tui.inflight import InFlightScreen
from tui.live import LiveScreen
from tui.table import KeyedTable

from .conftest import NOW, until

WIDE = (160, 48)


def with_inflight(snapshots: list[Snapshot]) -> list[Snapshot]:
    """The last snapshot with three calls in flight, read 0.25 s before it."""
    last = snapshots[-1]
    start = last.start_ts_ns
    read = InFlightRead(last.ts_ns - 250_000_000, ordered([
        InFlight(19953, 19954, 0, 0, start + 100_000_000),  # read
        InFlight(19953, 19953, 202, 0, start + 900_000_000),  # futex
        InFlight(19949, 19949, 142, 1, start, before_trace=True),  # i386, before the trace
    ]), threads=6, unread=0)
    return [*snapshots[:-1], dataclasses.replace(last, inflight=read)]


def plain(screen: InFlightScreen, selector: str) -> str:
    content = screen.query_one(selector, Static).content
    return Text.from_markup(content).plain if isinstance(content, str) else str(content)


async def open_view(pilot, seq: int = 4) -> InFlightScreen:
    await until(pilot, lambda: isinstance(pilot.app.screen, LiveScreen)
                and pilot.app.screen.session.latest is not None
                and pilot.app.screen.session.latest.seq == seq)
    await pilot.press("I")
    await until(pilot, lambda: isinstance(pilot.app.screen, InFlightScreen))
    screen = pilot.app.screen
    assert isinstance(screen, InFlightScreen)
    return screen


async def test_rows_longest_first_with_names_and_durations(snapshots):
    items = with_inflight(snapshots)
    read = items[-1].inflight
    assert read is not None
    app = SikteApp(source=ReplaySource(items), clock=lambda: NOW)
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_view(pilot)
        await until(pilot, lambda: screen._table().row_count == 3)
        table = screen._table()
        assert [r.key for r in table.rows] == [(19949, 19949), (19953, 19954), (19953, 19953)]
        assert [c.key for c in table.columns] == ["pid", "tid", "comm", "syscall", "elapsed_ns",
                                                  "start_s"]
        first, second, third = (dict(r.cells) for r in table.rows)
        elapsed = items[-1].ts_ns - 250_000_000 - items[-1].start_ts_ns
        assert first["syscall"] == "_newselect (i386)" and first["comm"] == "workload"
        assert first["start_s"] == "before"  # entered before the trace began: a lower bound
        assert first["elapsed_ns"] == ">" + format_ns(elapsed)
        assert second == {"pid": "19953", "tid": "19954", "comm": "python", "syscall": "read",
                          "elapsed_ns": format_ns(elapsed - 100_000_000),
                          "start_s": "0.1s"}
        assert third["syscall"] == "futex" and third["start_s"] == "0.9s"
        assert plain(screen, "#inflight-title") == (
            "Calls in flight: 3 calls · as of 250ms ago · sort in flight ▼")
        # `i` inverts the order: shortest first.
        await pilot.press("i")
        await until(pilot, lambda: screen._table().rows[0].key == (19953, 19953))
        # Enter: back to the live view, filtered on the selected thread (the cursor stayed
        # on its row through the new order).
        assert screen._table().cursor_key == (19949, 19949)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, LiveScreen))
        assert pilot.app.screen.query_one("#filter", Input).value == "pid=19949 tid=19949"


async def test_a_session_without_them_says_so(snapshots):
    app = SikteApp(source=ReplaySource(snapshots), clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_view(pilot)
        await until(pilot, lambda: "not read" in plain(screen, "#inflight-title"))
        assert not screen._table().display
        assert plain(screen, "#inflight-empty") == "Calls in flight: not known."
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(pilot.app.screen, LiveScreen))
        assert pilot.app.screen.query_one(KeyedTable).row_count > 0


class WatchedSource(ReplaySource):
    """A live trace that has not read its calls in flight yet: says what it is asked."""

    capabilities = Capabilities(live=True)

    def __init__(self, snapshots: list[Snapshot]) -> None:
        super().__init__(snapshots)
        self.asked: list[bool] = []

    def watch_inflight(self, on: bool) -> None:
        self.asked.append(on)


async def test_a_live_trace_reads_them_while_the_view_is_open(snapshots):
    source = WatchedSource([dataclasses.replace(s, state=TraceState.TRACING) for s in snapshots])
    app = SikteApp(source=source, clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_view(pilot)
        assert source.asked == [True]
        await until(pilot, lambda: "reading" in plain(screen, "#inflight-title"))
        assert plain(screen, "#inflight-title").startswith(
            "Calls in flight: reading the traced threads…")
        assert plain(screen, "#inflight-empty") == "Calls in flight: reading…"
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(pilot.app.screen, LiveScreen))
        await until(pilot, lambda: source.asked == [True, False])


async def test_a_live_trace_that_ended_unread_says_not_read(snapshots):
    assert snapshots[-1].state != TraceState.TRACING  # the fixture's trace ended
    app = SikteApp(source=WatchedSource(snapshots), clock=lambda: NOW)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_view(pilot)
        await until(pilot, lambda: "not read" in plain(screen, "#inflight-title"))
        assert plain(screen, "#inflight-empty") == "Calls in flight: not known."


def format_ns(ns: int) -> str:
    from tracing.model.units import format_duration

    return format_duration(ns)
