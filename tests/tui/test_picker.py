"""The process picker, driven by Pilot on a fixed process list (tests/tui/conftest.py).

Starting a trace is replaced by a recorder: these tests check what the picker asks for,
never trace for real (they run as root in CI, where Enter would really start a trace).
"""

from __future__ import annotations

import itertools
import os
import re

import pytest
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import Input, Static, Switch

from tests.tui.conftest import NOW, VANISHED_PID
from tracing.model.timing import Timing
from tracing.system.proclist import ProcessEntry
from tui.app import SikteApp
from tui.dialogs import RunCommand
from tui.picker import COLUMNS, PickerScreen
from tui.table import GAP, KeyedTable

from .conftest import until

SIZE = (160, 48)
SORTABLE = [c for c in COLUMNS if c.key != "selected"]



def table_of(app: SikteApp) -> KeyedTable:
    return app.screen.query_one(KeyedTable)


def pids(app: SikteApp) -> list[int]:
    return [int(r.key[0]) for r in table_of(app).rows]


def plain(widget: Static) -> str:
    content = widget.content
    return Text.from_markup(content).plain if isinstance(content, str) else str(content)


def title(app: SikteApp) -> str:
    return plain(app.screen.query_one("#picker-title", Static))


def sorted_ok(values: list[object], reverse: bool) -> bool:
    pairs = list(itertools.pairwise(values))
    return all(a >= b for a, b in pairs) if reverse else all(a <= b for a, b in pairs)



async def listed(pilot: Pilot) -> None:
    await until(pilot, lambda: table_of(pilot.app).row_count > 0)


def record_traces(app: SikteApp) -> list[dict]:
    """Replace app.start_trace with a recorder of its arguments."""
    calls: list[dict] = []

    def start_trace(pids: tuple[int, ...] = (), command: tuple[str, ...] = (),
                    follow: bool = True, timing: Timing | None = None) -> None:
        call = {"pids": pids, "command": command, "follow": follow}
        if timing is not None:  # the launch dialog's choice (issue 18)
            call["timing"] = timing
        calls.append(call)

    app.start_trace = start_trace  # type: ignore[method-assign]
    return calls


async def put_cursor_on(pilot: Pilot, pid: int) -> None:
    table = table_of(pilot.app)
    index = pids(pilot.app).index(pid)
    table.move_cursor(index + 1 if index == 0 else index - 1)
    await pilot.press("up" if index == 0 else "down")
    assert table.cursor_key == (pid,)


# -- the list --------------------------------------------------------------------------------


async def test_lists_the_processes(picker_app: SikteApp, processes: list[ProcessEntry]):
    async with picker_app.run_test(size=SIZE) as pilot:
        await listed(pilot)
        assert isinstance(picker_app.screen, PickerScreen)
        table = table_of(picker_app)
        assert table.has_focus
        assert sorted(pids(picker_app)) == sorted(p.pid for p in processes)
        # Most CPU first.
        assert (table.sort_column, table.sort_reverse) == ("cpu", True)
        assert pids(picker_app) == [p.pid for p in sorted(processes, key=lambda p: -p.cpu_pct)]
        rows = {int(r.key[0]): dict(r.cells) for r in table.rows}
        assert rss_bytes(rows[4567].pop("rss")) == pytest.approx(2 << 30, rel=0.05)
        assert rows[4567] == {"selected": " ", "pid": "4567", "user": "postgres",
                              "cpu": "33.5", "threads": "8", "started": "22:03",
                              "command": "postgres -D /var/lib/pg/data"}
        assert rows[1]["started"] == "Nov02"  # more than a day ago: the date
        assert rows[5678]["started"] == "22:11"  # today: the time (UTC, NOW is 22:13:20)
        assert "8 of 8 processes" in title(picker_app)
        assert "selected" not in title(picker_app)


_UNITS = {"B": 1, "k": 1 << 10, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def rss_bytes(cell: str) -> float:
    """The size an RSS cell says: one number and one unit (64 MiB is not "65.5kk")."""
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([BkKMG])", cell)
    assert m, f"not a size: {cell!r}"
    return float(m.group(1)) * _UNITS[m.group(2)]


async def test_rss_is_shown_in_one_unit(picker_app: SikteApp, processes: list[ProcessEntry]):
    async with picker_app.run_test(size=SIZE) as pilot:
        await listed(pilot)
        cells = {int(r.key[0]): r.cells["rss"] for r in table_of(picker_app).rows}
        for p in processes:
            assert rss_bytes(cells[p.pid]) == pytest.approx(p.rss, rel=0.05), (p.rss, cells[p.pid])


@pytest.mark.parametrize(("query", "expected"), [
    ("nginx", [3456]),  # by name
    ("http.se", [5678]),  # by command line
    ("alice", [1234, 2345]),  # by user
    ("4567", [4567]),  # by pid
])
async def test_fuzzy_filter(picker_app: SikteApp, query: str, expected: list[int]):
    async with picker_app.run_test(size=SIZE) as pilot:
        await listed(pilot)
        await pilot.press("slash", *query)
        await pilot.pause()
        assert sorted(pids(picker_app)) == expected
        assert f"{len(expected)} of 8 processes" in title(picker_app)
        await pilot.press("enter")  # back to the table, the filter stays
        assert table_of(picker_app).has_focus
        assert sorted(pids(picker_app)) == expected


async def test_escape_clears_the_picker_filter(picker_app: SikteApp):
    async with picker_app.run_test(size=SIZE) as pilot:
        await listed(pilot)
        await pilot.press("slash", *"vim")
        await pilot.pause()
        assert pids(picker_app) == [2345]
        await pilot.press("escape")
        await pilot.pause()
        assert picker_app.screen.query_one("#picker-filter", Input).value == ""
        assert table_of(picker_app).row_count == 8
        assert table_of(picker_app).has_focus
        assert picker_app.is_running


async def test_sort_keys_visit_every_column(picker_app: SikteApp,
                                            processes: list[ProcessEntry]):
    attr = {"pid": "pid", "user": "user", "cpu": "cpu_pct", "rss": "rss",
            "threads": "threads", "started": "create_time", "command": "cmdline"}
    keys = [c.key for c in SORTABLE]
    start = keys.index("cpu")
    async with picker_app.run_test(size=SIZE) as pilot:
        await listed(pilot)
        table = table_of(picker_app)
        for step in range(1, len(keys) + 1):
            await pilot.press(">")
            column = SORTABLE[(start + step) % len(keys)]
            assert table.sort_column == column.key
            assert table.sort_reverse is column.numeric
            values = [r.values[column.key] for r in table.rows]
            assert sorted_ok(values, column.numeric), column.key
            if column.key != "command":
                by = attr[column.key]
                # Ties (equal values) break by pid, in the same direction.
                assert pids(picker_app) == [p.pid for p in sorted(
                    processes, key=lambda p, by=by: (getattr(p, by), p.pid),
                    reverse=column.numeric)], column.key
        assert table.sort_column == "cpu"
        await pilot.press("<")
        assert table.sort_column == keys[start - 1]
        await pilot.press("i")
        assert table.sort_reverse is not SORTABLE[start - 1].numeric
        values = [r.values[keys[start - 1]] for r in table.rows]
        assert sorted_ok(values, not SORTABLE[start - 1].numeric)


def header_x(table: KeyedTable, column: str) -> int:
    index = [c.key for c in table.columns].index(column)
    return sum(table.widths[:index]) + GAP * index + 1


async def test_clicking_a_header_sorts(picker_app: SikteApp):
    async with picker_app.run_test(size=SIZE) as pilot:
        await listed(pilot)
        table = table_of(picker_app)
        for column in SORTABLE:
            if column.key == table.sort_column:
                continue
            assert await pilot.click(KeyedTable, offset=(header_x(table, column.key), 0))
            await pilot.pause()
            assert (table.sort_column, table.sort_reverse) == (column.key, column.numeric)
            assert sorted_ok([r.values[column.key] for r in table.rows], column.numeric)
        assert await pilot.click(KeyedTable, offset=(header_x(table, "user"), 0))
        assert await pilot.click(KeyedTable, offset=(header_x(table, "user"), 0))
        await pilot.pause()
        assert (table.sort_column, table.sort_reverse) == ("user", True)
        assert sorted_ok([r.values["user"] for r in table.rows], True)
        # The selection column is not a sort key.
        assert await pilot.click(KeyedTable, offset=(header_x(table, "selected"), 0))
        await pilot.pause()
        assert table.sort_column == "user"


# -- selecting and tracing -------------------------------------------------------------------


async def test_space_selects_several(picker_app: SikteApp):
    async with picker_app.run_test(size=SIZE) as pilot:
        await listed(pilot)
        table = table_of(picker_app)
        first, second, third = pids(picker_app)[:3]
        await pilot.press("space")  # selects and moves down
        assert table.cursor_key == (second,)
        await pilot.press("space")
        assert f"selected: {', '.join(map(str, sorted([first, second])))}" in title(picker_app)
        rows = {int(r.key[0]): r.cells["selected"] for r in table.rows}
        assert (rows[first], rows[second], rows[third]) == ("✓", "✓", " ")
        await pilot.press("up", "space")  # unselect the second
        assert title(picker_app).endswith(f"selected: {first}")
        # The selection survives a filter and a refresh of the list.
        await pilot.press("slash", *"vim", "enter", "f5")
        await pilot.pause(0.1)
        assert title(picker_app).endswith(f"selected: {first}")


async def test_enter_traces_the_selected_processes(processes: list[ProcessEntry]):
    me = ProcessEntry(os.getpid(), "tester", "pytest", ("pytest",), 0.0, 1 << 20, 1, NOW)
    app = SikteApp(lister=lambda: [*processes, me], clock=lambda: NOW)
    calls = record_traces(app)
    async with app.run_test(size=SIZE) as pilot:
        await listed(pilot)
        await put_cursor_on(pilot, 1)
        await pilot.press("space")
        await put_cursor_on(pilot, me.pid)
        await pilot.press("space")
        assert title(app).endswith(f"selected: {', '.join(map(str, sorted([1, me.pid])))}")
        await pilot.press("enter")
        await pilot.pause()
        assert calls == [{"pids": tuple(sorted((1, me.pid))), "command": (), "follow": True}]


async def test_enter_without_selection_traces_the_cursor_row(processes: list[ProcessEntry]):
    app = SikteApp(lister=lambda: list(processes), clock=lambda: NOW)
    calls = record_traces(app)
    async with app.run_test(size=SIZE) as pilot:
        await listed(pilot)
        await put_cursor_on(pilot, 1)
        await pilot.press("enter")
        await pilot.pause()
        assert calls == [{"pids": (1,), "command": (), "follow": True}]


async def test_a_vanished_pid_is_reported_inline(picker_app: SikteApp):
    assert not os.path.exists(f"/proc/{VANISHED_PID}")
    calls = record_traces(picker_app)
    async with picker_app.run_test(size=SIZE) as pilot:
        await listed(pilot)
        await put_cursor_on(pilot, 1)
        await pilot.press("space")
        await put_cursor_on(pilot, VANISHED_PID)
        await pilot.press("space", "enter")
        await pilot.pause()
        assert calls == []
        notice = picker_app.screen.query_one("#notice", Static)
        assert plain(notice).startswith(f"✗ no process with PID {VANISHED_PID}")
        assert notice.display and notice.region.height >= 1  # the user can see it
        assert picker_app.is_running
        assert isinstance(picker_app.screen, PickerScreen)
        # It left the selection; the other one stays.
        assert title(picker_app).endswith("selected: 1")


# -- launching a command ---------------------------------------------------------------------


async def test_run_command_dialog(picker_app: SikteApp):
    calls = record_traces(picker_app)
    async with picker_app.run_test(size=SIZE) as pilot:
        await listed(pilot)
        await pilot.press("n")
        await pilot.pause()
        dialog = picker_app.screen
        assert isinstance(dialog, RunCommand)
        assert dialog.query_one("#command", Input).has_focus
        assert dialog.query_one("#follow", Switch).value is True
        # A command that does not exist: an inline error, the dialog stays.
        await pilot.press(*"no-such", "enter")
        await pilot.pause()
        assert picker_app.screen is dialog
        assert plain(dialog.query_one("#command-error", Static)) == (
            "✗ no-such: command not found; check the name and PATH")
        assert calls == []
        # A bad command line: the same.
        dialog.query_one("#command", Input).value = "echo 'unclosed"
        await pilot.press("enter")
        await pilot.pause()
        assert picker_app.screen is dialog
        assert "cannot split the command line" in plain(dialog.query_one("#command-error"))
        # A valid one: the dialog closes and the trace starts.
        dialog.query_one("#command", Input).value = ""
        await pilot.press(*"true", "enter")
        await pilot.pause()
        assert isinstance(picker_app.screen, PickerScreen)
        assert calls == [{"pids": (), "command": ("true",), "follow": True,
                          "timing": Timing.EXACT}]


async def test_run_command_without_following_children(picker_app: SikteApp):
    calls = record_traces(picker_app)
    async with picker_app.run_test(size=SIZE) as pilot:
        await listed(pilot)
        await pilot.press("n")
        await pilot.pause()
        dialog = picker_app.screen
        await pilot.click("#follow")
        assert dialog.query_one("#follow", Switch).value is False
        dialog.query_one("#command", Input).value = "true --flag 'two words'"
        await pilot.click("#run")
        await pilot.pause()
        assert calls == [{"pids": (), "command": ("true", "--flag", "two words"),
                          "follow": False, "timing": Timing.EXACT}]


async def test_escape_cancels_the_dialog(picker_app: SikteApp):
    calls = record_traces(picker_app)
    async with picker_app.run_test(size=SIZE) as pilot:
        await listed(pilot)
        await pilot.press("n")
        await pilot.pause()
        await pilot.press(*"true", "escape")
        await pilot.pause()
        assert isinstance(picker_app.screen, PickerScreen)
        assert calls == []


async def test_q_quits(picker_app: SikteApp):
    async with picker_app.run_test(size=SIZE) as pilot:
        await listed(pilot)
        await pilot.press("q")
        await pilot.pause()
    assert picker_app.return_code == 0
