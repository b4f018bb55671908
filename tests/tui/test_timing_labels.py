"""Issue 18: the live view and the drill-down say how the calls were timed. Sampled: the
header says "~ estimates" and every time cell carries "~", counts untouched; off: every time
cell is "-" (never 0), the histogram says there are no latencies. The launch dialog offers
the three modes and hands the chosen one to the trace."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

import pytest
from textual.widgets import RadioButton, Static

from tracing.model.stats import Snapshot, SyscallStats
from tracing.model.timing import Timing
from tracing.model.units import format_duration, format_exact_count
from tui.app import SikteApp
from tui.detail import DetailScreen
from tui.dialogs import RunCommand
from tui.picker import PickerScreen
from tui.timing_choice import HINTS, TimingChoice
from tui.widgets import HistogramChart

from .conftest import until
from .test_live import SIZE, by_name, datatable_rows, header, loaded, move_to, plain, table_of
from .test_picker import listed, record_traces

TIME_CELLS = ("total_ns", "avg_ns", "p50_ns", "p95_ns", "p99_ns", "max_ns")


def timed(snapshots: list[Snapshot], timing: str) -> list[Snapshot]:
    """The recording as a trace in `timing` would give it: off keeps counts and errors
    only (every time figure 0, as the kernel leaves them)."""
    def untimed(stats: object) -> MappingProxyType:
        return MappingProxyType({k: SyscallStats(s.count, s.errors)
                                 for k, s in stats.items()})  # type: ignore[attr-defined]

    out = []
    for s in snapshots:
        if timing == Timing.OFF:
            s = dataclasses.replace(s, stats=untimed(s.stats), interval=untimed(s.interval),
                                    since_start=None if s.since_start is None
                                    else untimed(s.since_start))
        out.append(dataclasses.replace(s, timing=timing))
    return out


def cells(app: SikteApp, name: str) -> dict[str, str]:
    row = next(r for r in table_of(app).rows if r.values["name"] == name)
    return dict(row.cells)


async def test_exact_shows_plain_times(make_replay_app, snapshots: list[Snapshot]):
    app = make_replay_app(snapshots)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await until(pilot, lambda: "timing exact" in header(app), seen=lambda: header(app))
        getppid = by_name(snapshots[-1])["getppid"]
        await until(pilot, lambda: cells(app, "getppid")["count"] == f"{getppid.count:,}")
        assert cells(app, "getppid")["total_ns"] == format_duration(getppid.total_ns)


async def test_sampled_marks_every_time_as_an_estimate(make_replay_app,
                                                       snapshots: list[Snapshot]):
    app = make_replay_app(timed(snapshots, Timing.SAMPLED))
    want = by_name(snapshots[-1])["getppid"]
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await until(pilot, lambda: "timing sampled: ~ estimates" in header(app),
                    seen=lambda: header(app))
        await until(pilot, lambda: cells(app, "getppid")["count"] == f"{want.count:,}",
                    seen=lambda: cells(app, "getppid"))
        row = cells(app, "getppid")
        assert row["total_ns"] == "~" + format_duration(want.total_ns)
        assert row["max_ns"] == "~" + format_duration(want.max_ns)
        assert all(row[c].startswith("~") for c in TIME_CELLS)
        assert not row["count"].startswith("~") and not row["errors"].startswith("~")

        await move_to(pilot, ("getppid", 0))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        await until(pilot, lambda: "estimates" in plain(
            app.screen.query_one("#detail-title", Static)))
        title = plain(app.screen.query_one("#detail-title", Static))
        assert f"calls {format_exact_count(want.count)} · errors 0 · total ~" in title
        assert title.endswith(" · ~ estimates (timing sampled)")
        by_process = datatable_rows(app.screen, "#by-process")
        assert by_process and all(r[4].startswith("~") for r in by_process)  # total


async def test_off_shows_no_time_figures(make_replay_app, snapshots: list[Snapshot]):
    app = make_replay_app(timed(snapshots, Timing.OFF))
    want = by_name(snapshots[-1])
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await until(pilot, lambda: "timing off: counts only" in header(app),
                    seen=lambda: header(app))
        await until(pilot, lambda: cells(app, "openat")["count"]
                    == f"{want['openat'].count:,}", seen=lambda: cells(app, "openat"))
        row = cells(app, "openat")
        assert [row[c] for c in (*TIME_CELLS, "time_pct")] == ["-"] * 7
        assert row["errors"] == f"{want['openat'].errors:,}"
        # Sorted by total (the default), which is 0 everywhere: the busiest rows first.
        counts = [int(r.values["count"]) for r in table_of(app).rows]  # type: ignore[call-overload]
        assert counts == sorted(counts, reverse=True) and counts[0] == want["getppid"].count
        assert "sort count ▼" in header(app)  # what the rows are sorted by, not "total"

        await move_to(pilot, ("openat", 0))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        screen = app.screen
        await until(pilot, lambda: "no latencies" in plain(screen.query_one("#detail-title")))
        title = plain(screen.query_one("#detail-title", Static))
        assert title.endswith(f"errors {want['openat'].errors:,} · timing off: no latencies")
        assert plain(screen.query_one(HistogramChart)) == (
            "no latencies: timing off (counts and errors only)")
        assert all(r[4:] == ["-"] * 4 for r in datatable_rows(screen, "#by-process"))


# -- the launch dialog -----------------------------------------------------------------------


@pytest.mark.parametrize("choice", [Timing.SAMPLED, Timing.OFF])
async def test_the_launch_dialog_hands_over_the_chosen_timing(picker_app: SikteApp,
                                                              choice: Timing):
    calls = record_traces(picker_app)
    async with picker_app.run_test(size=SIZE) as pilot:
        await listed(pilot)
        await pilot.press("n")
        await until(pilot, lambda: isinstance(picker_app.screen, RunCommand))
        dialog = picker_app.screen
        chooser = dialog.query_one(TimingChoice)
        assert chooser.value is Timing.EXACT  # the command line's default
        assert dialog.query_one("#timing-exact", RadioButton).value is True
        assert plain(dialog.query_one("#timing-hint", Static)) == HINTS[Timing.EXACT]
        await pilot.click(f"#timing-{choice.value}")
        await until(pilot, lambda: chooser.value is choice)
        assert plain(dialog.query_one("#timing-hint", Static)) == HINTS[choice]
        dialog.query_one("#command").value = "true"  # type: ignore[attr-defined]
        await pilot.click("#run")
        await until(pilot, lambda: isinstance(picker_app.screen, PickerScreen))
        assert calls == [{"pids": (), "command": ("true",), "follow": True,
                          "timing": choice}]


async def test_the_dialog_starts_on_the_command_lines_timing(picker_app: SikteApp):
    picker_app.trace_defaults = dataclasses.replace(picker_app.trace_defaults,
                                                    timing=Timing.OFF)
    async with picker_app.run_test(size=SIZE) as pilot:
        await listed(pilot)
        await pilot.press("n")
        await until(pilot, lambda: isinstance(picker_app.screen, RunCommand))
        dialog = picker_app.screen
        assert dialog.query_one(TimingChoice).value is Timing.OFF
        assert dialog.query_one("#timing-off", RadioButton).value is True
