"""Text from outside is shown as data on every screen (issue 12, item 4): process names,
command lines, containers, paths, frame names and typed filters that hold terminal control
sequences, Textual markup or a bidi override never reach the terminal as such, never crash the
app, and show in their escaped form (tracing.boundary.display_text).

What is checked is what the terminal would receive: the text of every segment the screen's
compositor renders (styles aside), with the hostile fixture (tests/tui/hostile_fixture.py)."""

from __future__ import annotations

import pytest
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Input, Static

from tracing.boundary.display_text import sanitize
from tracing.model.stats import Snapshot
from tracing.sources import ReplaySource
from tui.app import SikteApp
from tui.columns import GROUPINGS
from tui.connections import ConnectionsHelp, ConnectionsScreen
from tui.detail import DetailScreen
from tui.dialogs import HelpScreen, RunCommand
from tui.live import LiveScreen
from tui.messages import CommandOutput, SourceFailed
from tui.picker import PickerScreen
from tui.samples import FlameScreen, NeighboursScreen, SamplesScreen
from tui.table import KeyedTable
from tui.widgets import OutputPanel, ProcessTreePanel

from .conftest import NOW, until
from .hostile_fixture import (
    BIDI_SHOWN,
    COMM,
    ESC,
    ESC_SHOWN,
    FRAME,
    MARKUP,
    MARKUP_NAMED,
    PROBE,
    TITLE,
    hostile,
    hostile_processes,
)

SIZE = (160, 48)
BAD_FILTERS = ("p99>[/b]", "[red]", "[/b]x[red", "comm=" + ESC, "\u202e[")


def screen_text(app: App) -> str:
    """The characters the terminal would get for the current screen, styles left out."""
    update = app.screen._compositor.render_update(
        full=True, screen_stack=app._background_screens)
    lines = []
    for line in update.strips:
        strips = [line] if hasattr(line, "_segments") else line
        lines.append("".join(seg.text for strip in strips for seg in strip
                             if not seg.control))
    return "\n".join(lines)


def assert_shown_as_data(app: App, *expected: str) -> str:
    """No control or format character on screen, and each of `expected` is."""
    text = screen_text(app)
    raw = sorted({c for c in text.replace("\n", "") if sanitize(c) != c})
    assert raw == [], f"raw control/format characters reached the screen: {raw!r}"
    for part in expected:
        assert part in text, f"{part!r} not on the screen"
    return text


def plain(widget: Static) -> str:
    return str(widget.render())


@pytest.fixture
def hostile_snapshots(snapshots: list[Snapshot]) -> list[Snapshot]:
    return hostile(snapshots)


def app_on(items: list[Snapshot]) -> SikteApp:
    return SikteApp(source=ReplaySource(items, title=TITLE), clock=lambda: NOW)


async def loaded(pilot: Pilot) -> LiveScreen:
    await until(pilot, lambda: isinstance(pilot.app.screen, LiveScreen)
                and pilot.app.screen.query_one(KeyedTable).row_count > 0)
    screen = pilot.app.screen
    await until(pilot, lambda: screen.session.samples.total > 0
                and len(screen.session.connections) == 8)
    await until(pilot, lambda: screen._pending is None)  # a tick applied the last snapshot
    return screen  # type: ignore[return-value]


async def type_filters(pilot: Pilot, field: Input, message: Static) -> None:
    """Each bad filter: the app survives, and the error line (if any) is one line of data."""
    for text in BAD_FILTERS:
        field.value = ""
        await pilot.press("slash")
        await pilot.press(*[k for k in text[:3] if k.isalnum()])  # typed keys, then the rest
        field.value = text
        await pilot.pause(0.2)
        shown = plain(message)
        assert "\n" not in shown
        if message.display:
            assert shown.startswith("✗ ")
        assert_shown_as_data(pilot.app)
        await pilot.press("escape")
        await pilot.pause(0.05)


async def test_live_view_groupings_tree_and_header(hostile_snapshots):
    app = app_on(hostile_snapshots)
    async with app.run_test(size=SIZE) as pilot:
        live = await loaded(pilot)
        # The title (the session's targets) and the probe's name (syscall column)
        assert_shown_as_data(app, ESC_SHOWN, "[/b]x[red", BIDI_SHOWN)
        for grouping in GROUPINGS[1:]:
            await pilot.press("g")
            await until(pilot, lambda g=grouping: live.grouping == g)
            await pilot.pause(0.1)
            assert_shown_as_data(app, "\\x1b[2J")  # the comm column
        await pilot.press("g")  # back to by syscall
        await pilot.press("t")
        tree = live.query_one(ProcessTreePanel)
        await until(pilot, lambda: tree.display and len(tree.root.children) > 0)
        await pilot.pause(0.1)
        text = assert_shown_as_data(app, "\\x1b[2J\\x1b]0;X\\x07")
        assert "19949 [/b]x[red" in text and "19953 [/b]x[red (4 threads)" in text


async def test_live_view_container_column_and_comm_filter(hostile_snapshots):
    app = app_on(hostile_snapshots)
    async with app.run_test(size=SIZE) as pilot:
        live = await loaded(pilot)
        await pilot.press("g")  # by process: pid, comm, container
        await until(pilot, lambda: live.grouping.key == "process")
        await pilot.pause(0.1)
        assert_shown_as_data(app, "[/b]x[red\\x1b")
        table = live.query_one(KeyedTable)
        everyone = {r.key for r in table.rows}
        # What is shown is what a filter matches: the escaped name, as the user types it
        live.query_one("#filter", Input).value = f"comm={ESC_SHOWN}"
        await until(pilot, lambda: {r.key for r in table.rows} != everyone)
        assert {r.key for r in table.rows} == everyone - {(p,) for p in MARKUP_NAMED}
        live.query_one("#filter", Input).value = f"comm={MARKUP}"
        await until(pilot, lambda: {r.key for r in table.rows} == {
            (p,) for p in MARKUP_NAMED})


async def test_details_of_a_probe_with_a_hostile_name(hostile_snapshots):
    app = app_on(hostile_snapshots)
    async with app.run_test(size=SIZE) as pilot:
        live = await loaded(pilot)
        table = live.query_one(KeyedTable)
        index = next(i for i, r in enumerate(table.rows) if r.key == (PROBE, 0))
        table.move_cursor(index)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        await pilot.pause(0.2)
        text = assert_shown_as_data(app, sanitize(PROBE), "\\x1b[2J")  # title; comm cell
        assert "calls 5" in text


async def test_connections_list_and_summary(hostile_snapshots):
    app = app_on(hostile_snapshots)
    async with app.run_test(size=SIZE) as pilot:
        live = await loaded(pilot)
        await pilot.press("g")  # by process, so c opens one process's connections
        await until(pilot, lambda: live.grouping.key == "process")
        await pilot.pause(0.1)
        table = live.query_one(KeyedTable)
        table.move_cursor(next(i for i, r in enumerate(table.rows) if r.key == (4242,)))
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConnectionsScreen))
        await pilot.pause(0.2)
        screen = app.screen
        # title: "pid 4242 <comm>"; rows: comm and container; the line under: both
        assert_shown_as_data(app, f"pid 4242 {ESC_SHOWN}", "\\x1b[2J", "[/b]x[red\\x1b[2")
        selected = plain(screen.query_one("#connection-selected", Static))
        assert selected.endswith(f"pid 4242 {ESC_SHOWN} · container [/b]x[red{ESC_SHOWN}")
        await pilot.press("a", "g")
        await until(pilot, lambda: screen.mode == "summary")
        await pilot.pause(0.1)
        assert_shown_as_data(app, "by remote endpoint")
        await pilot.press("enter")
        await until(pilot, lambda: screen.mode == "list")
        await pilot.pause(0.1)
        assert_shown_as_data(app, "\\x1b[2J")
        await type_filters(pilot, screen.query_one("#connections-filter", Input),
                           screen.query_one("#connections-filter-message", Static))
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, ConnectionsHelp))
        assert_shown_as_data(app)


async def test_samples_callers_and_flame(hostile_snapshots):
    app = app_on(hostile_snapshots)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, SamplesScreen))
        await pilot.pause(0.2)
        samples = app.screen
        assert_shown_as_data(app, "[/b]x[red\\x1b[2J", BIDI_SHOWN)  # frames, modules
        for scope in ("process", "thread"):
            await pilot.press("g")
            await until(pilot, lambda s=scope: samples.scope == s)
            await pilot.pause(0.1)
            assert_shown_as_data(app, "\\x1b[2J")  # the comm column
        await pilot.press("g")
        table = samples.query_one(KeyedTable)
        await until(pilot, lambda: any(r.key == (FRAME,) for r in table.rows))
        table.move_cursor(next(i for i, r in enumerate(table.rows) if r.key == (FRAME,)))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, NeighboursScreen))
        await pilot.pause(0.2)
        assert_shown_as_data(app, sanitize(FRAME), BIDI_SHOWN)  # title; callee
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is samples)
        await pilot.press("f")
        await until(pilot, lambda: isinstance(app.screen, FlameScreen))
        await pilot.pause(0.2)
        flame = app.screen
        assert_shown_as_data(app, "\\x1b[2J\\x1b]0;X\\x07", "[/b]x[red\\x1b[2J")  # comm, frame
        flame._select((COMM, "main", FRAME))
        await pilot.press("enter")  # zoom into it: the trail in the title has it too
        await pilot.pause(0.2)
        text = assert_shown_as_data(app, f"zoom: all ▸ {ESC_SHOWN} ▸ main ▸ {sanitize(FRAME)}")
        lines = [ln.strip() for ln in text.splitlines()]
        assert f"{sanitize(FRAME)} · 40 samples (50.0% of all) · self 0" in lines


async def test_filters_help_output_and_failure(hostile_snapshots):
    app = app_on(hostile_snapshots)
    async with app.run_test(size=SIZE) as pilot:
        live = await loaded(pilot)
        await type_filters(pilot, live.query_one("#filter", Input),
                           live.query_one("#filter-message", Static))
        live.query_one("#filter", Input).value = "p99>[/b]"
        await pilot.pause(0.2)
        assert plain(live.query_one("#filter-message", Static)) == (
            "✗ bad duration '[/b]' for p99 at 0: use a number with ns, us, ms or s, e.g. p99>1ms")
        await pilot.press("escape")
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.pause(0.1)
        assert_shown_as_data(app, "Show or hide the process tree")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is live)
        live.post_message(CommandOutput(f"out {ESC} {MARKUP}\n\tindented\n"))
        await pilot.press("o")
        panel = live.query_one(OutputPanel)
        await until(pilot, lambda: panel.display and len(panel.lines) == 2)
        await pilot.pause(0.1)
        assert_shown_as_data(app, f"out {ESC_SHOWN} {MARKUP}", "indented")
        live.post_message(SourceFailed(f"cannot read {MARKUP} {ESC}"))
        await until(pilot, lambda: live.state == "failed")
        await pilot.pause(0.1)
        assert_shown_as_data(app, f"✗ cannot read {MARKUP} {ESC_SHOWN}")


async def test_picker_with_hostile_processes():
    entries = hostile_processes(NOW)
    app = SikteApp(lister=lambda: list(entries), clock=lambda: NOW)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, PickerScreen)
                    and app.screen.query_one(KeyedTable).row_count == 3)
        await pilot.pause(0.1)
        # users, the command lines (as one line), a process without one as [name]
        assert_shown_as_data(app, "[/b]x[red", f"/tmp/[/b]x[red {ESC_SHOWN} {BIDI_SHOWN}",
                             "\\x1b[2J", "[[/b]x[red]", f"{BIDI_SHOWN} --x")
        field = app.screen.query_one("#picker-filter", Input)
        for text in BAD_FILTERS:
            field.value = text
            await pilot.pause(0.1)
            assert_shown_as_data(app)
        field.value = ""
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, RunCommand))
        field = app.screen.query_one("#command", Input)
        field.value = f"/nonexistent/{MARKUP}{ESC}"
        assert field.value == f"/nonexistent/{MARKUP}{ESC_SHOWN}"  # a paste: shown as data
        await pilot.press("enter")
        await pilot.pause(0.2)
        error = plain(app.screen.query_one("#command-error", Static))
        # shlex took the backslashes as quoting: the name tried has none left
        assert error == ("✗ /nonexistent/[/b]x[redx1b[2Jx1b]0;Xx07: command not found; check "
                         "the name and PATH")
        assert_shown_as_data(app)
