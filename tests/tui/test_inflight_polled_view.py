"""The calls-in-flight view (I) of a --timing off trace: calls found by /proc reads, each
timed from the first read that saw it, so the title says the times are lower bounds and each
row's time is marked `>` and its entry `≤`."""

from __future__ import annotations

import dataclasses

from tracing.model.inflight import InFlight, InFlightRead, ordered
from tracing.model.stats import Snapshot
from tracing.model.units import format_duration
from tracing.sources import ReplaySource
from tui.app import SikteApp

from .conftest import NOW, until
from .test_inflight_view import WIDE, open_view, plain


def with_polled(snapshots: list[Snapshot]) -> list[Snapshot]:
    """The last snapshot with two calls found by /proc reads, read 0.5 s before it."""
    last = snapshots[-1]
    start = last.start_ts_ns
    read = InFlightRead(last.ts_ns - 500_000_000, ordered([
        InFlight(19953, 19954, 0, 0, start + 200_000_000, seen=True),  # read
        InFlight(19953, 19953, 230, 0, start + 400_000_000, seen=True),  # clock_nanosleep
    ]), threads=2, unread=0, polled=True)
    return [*snapshots[:-1], dataclasses.replace(last, inflight=read)]


async def test_polled_calls_are_lower_bounds(snapshots: list[Snapshot]) -> None:
    items = with_polled(snapshots)
    app = SikteApp(source=ReplaySource(items), clock=lambda: NOW)
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_view(pilot)
        await until(pilot, lambda: screen._table().row_count == 2)
        table = screen._table()
        assert [r.key for r in table.rows] == [(19953, 19954), (19953, 19953)]
        first, second = (dict(r.cells) for r in table.rows)
        elapsed = items[-1].ts_ns - 500_000_000 - items[-1].start_ts_ns
        assert first == {"pid": "19953", "tid": "19954", "comm": "python", "syscall": "read",
                         "elapsed_ns": ">" + format_duration(elapsed - 200_000_000),
                         "start_s": "≤0.2s"}
        assert second["syscall"] == "clock_nanosleep" and second["start_s"] == "≤0.4s"
        assert second["elapsed_ns"] == ">" + format_duration(elapsed - 400_000_000)
        assert plain(screen, "#inflight-title") == (
            "Calls in flight: 2 calls · as of 500ms ago · times at least (from /proc reads "
            "once a second: --timing off) · sort in flight ▼")
