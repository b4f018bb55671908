"""The live view, driven by Pilot on the recorded replay fixture (no root).

Expectations come from the recording itself (tests/tui/make_fixture.py): getppid x7901,
openat failing with ENOENT (25 from the workload, 5 more from python), nanosleep, wait4 with
errors, a subshell that exits 3, a python with three threads.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import re
from collections.abc import Callable
from types import MappingProxyType

import pytest
from rich.text import Text
from textual.command import CommandList, CommandPalette
from textual.pilot import Pilot
from textual.widgets import Input, Static

from tracing.model.report import key_name
from tracing.model.stats import Snapshot, StatKey, SyscallStats, merge_stats
from tracing.sources import ReplaySource
from tui.app import SikteApp
from tui.columns import GROUPINGS, RowKey, columns
from tui.detail import DetailScreen
from tui.dialogs import HelpScreen
from tui.live import LiveScreen
from tui.messages import SnapshotReady
from tui.table import GAP, KeyedTable
from tui.widgets import ProcessTreePanel

from .conftest import until

SIZE = (160, 48)
SYSCALL = GROUPINGS[0]

# -- expectations from the recording, computed without the TUI's row code ------------------



def by_name(snapshot: Snapshot, keep: Callable[[StatKey], bool] = lambda k: True
            ) -> dict[str, SyscallStats]:
    """The recording's totals per syscall name, over the entries `keep` accepts."""
    groups: dict[str, list[SyscallStats]] = {}
    for key, stats in snapshot.stats.items():
        if keep(key):
            groups.setdefault(key_name(snapshot, key), []).append(stats)
    return {name: merge_stats(items) for name, items in groups.items()}


def pid_of(snapshot: Snapshot, comm: str, exit_code: int | None = None) -> int:
    pids = [p.pid for p in snapshot.processes.values()
            if p.comm == comm and (exit_code is None or (p.exit and p.exit.code == exit_code))]
    assert len(pids) == 1, (comm, exit_code, pids)
    return pids[0]


@pytest.fixture
def last(snapshots: list[Snapshot]) -> Snapshot:
    return snapshots[-1]


# -- driving the app -------------------------------------------------------------------------


def table_of(app: SikteApp) -> KeyedTable:
    return app.screen.query_one(KeyedTable)


def live(app: SikteApp) -> LiveScreen:
    assert isinstance(app.screen, LiveScreen), app.screen
    return app.screen


def names(app: SikteApp) -> list[str]:
    return [str(r.values["name"]) for r in table_of(app).rows]


def plain(widget: Static) -> str:
    """What a Static shows, as plain text (its content may be markup or a Text)."""
    content = widget.content
    return Text.from_markup(content).plain if isinstance(content, str) else str(content)


def header(app: SikteApp) -> str:
    return plain(app.screen.query_one("#status", Static))



async def loaded(pilot: Pilot) -> None:
    await until(pilot, lambda: table_of(pilot.app).row_count > 0)


async def settle(pilot: Pilot) -> None:
    """Let the next render tick (every 0.25 s) take what arrived: the messages posted so
    far are handled, then no snapshot is left waiting to be applied."""
    await pilot.pause()
    screen = live(pilot.app)
    await until(pilot, lambda: screen._pending is None)


async def debounced(pilot: Pilot) -> None:
    """Let a filter typed without Enter apply (debounced by 0.12 s)."""
    await pilot.pause(0.15)


async def type_filter(pilot: Pilot, text: str) -> None:
    """Type a filter key by key, then Enter."""
    await pilot.press("slash", *text, "enter")
    await pilot.pause()


async def apply_filter(pilot: Pilot, text: str) -> None:
    """Open the filter bar, paste a filter (keys cost ~0.1 s each under Pilot), Enter."""
    await pilot.press("slash")
    pilot.app.screen.query_one("#filter", Input).insert_text_at_cursor(text)
    await pilot.press("enter")
    await pilot.pause()


def sorted_ok(values: list[object], reverse: bool) -> bool:
    pairs = list(itertools.pairwise(values))
    return all(a >= b for a, b in pairs) if reverse else all(a <= b for a, b in pairs)


def column_values(app: SikteApp, column: str) -> list[object]:
    return [r.values[column] for r in table_of(app).rows]


async def move_to(pilot: Pilot, key: RowKey) -> None:
    """Put the cursor on the row `key`: the last step by a key, the rest directly (keys cost
    ~0.1 s each under Pilot)."""
    table = table_of(pilot.app)
    index = [r.key for r in table.rows].index(key)
    if index == 0:
        table.move_cursor(1)
        await pilot.press("up")
    else:
        table.move_cursor(index - 1)
        await pilot.press("down")
    assert table.cursor_key == key


# -- the table -------------------------------------------------------------------------------


async def test_by_syscall_shows_the_recorded_totals(replay_app: SikteApp, last: Snapshot):
    expected = by_name(last)
    async with replay_app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        table = table_of(replay_app)
        assert sorted(names(replay_app)) == sorted(expected)
        rows = {r.values["name"]: r for r in table.rows}
        assert rows["getppid"].values["count"] == 7901
        assert rows["getppid"].cells["count"] == "7,901"
        assert rows["getppid"].values["errors"] == 0
        assert (rows["openat"].values["count"], rows["openat"].values["errors"]) == (105, 30)
        assert rows["nanosleep"].values["count"] == expected["nanosleep"].count == 16
        assert rows["wait4"].values["errors"] == expected["wait4"].errors > 0
        for name, stats in expected.items():
            values = rows[name].values
            assert (values["count"], values["errors"], values["total_ns"], values["max_ns"]) \
                == (stats.count, stats.errors, stats.total_ns, stats.max_ns), name
            assert values["p99_ns"] == stats.quantile(0.99), name
        assert table.columns == columns(SYSCALL)
        text = header(replay_app)
        assert f"syscalls {last.total_count:,}" in text
        assert "target exited (0)" in text
        assert "by syscall · sort total ▼" in text


async def test_default_sort_is_total_time_descending(replay_app: SikteApp, last: Snapshot):
    expected = by_name(last)
    async with replay_app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        table = table_of(replay_app)
        assert (table.sort_column, table.sort_reverse) == ("total_ns", True)
        totals = column_values(replay_app, "total_ns")
        assert totals == sorted(totals, reverse=True)
        assert names(replay_app)[:2] == ["wait4", "nanosleep"]
        assert totals == sorted((s.total_ns for s in expected.values()), reverse=True)


async def test_sort_keys_visit_every_column_in_order(replay_app: SikteApp):
    keys = [c.key for c in columns(SYSCALL)]
    numeric = {c.key: c.numeric for c in columns(SYSCALL)}
    start = keys.index("total_ns")
    async with replay_app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        table = table_of(replay_app)
        for step in range(1, len(keys) + 1):
            await pilot.press(">")
            column = keys[(start + step) % len(keys)]
            assert table.sort_column == column
            # Numbers largest first, names alphabetically.
            assert table.sort_reverse is numeric[column]
            assert sorted_ok(column_values(replay_app, column), numeric[column]), column
            assert table.row_count == 44
        assert table.sort_column == "total_ns"
        for column in ("err_pct", "errors", "rate"):  # and back
            await pilot.press("<")
            assert table.sort_column == column
            assert sorted_ok(column_values(replay_app, column), numeric[column]), column
        # The other bindings of the same actions.
        await pilot.press("full_stop")
        assert table.sort_column == "errors"
        await pilot.press("comma")
        assert table.sort_column == "rate"


async def test_sort_by_name_is_alphabetical(replay_app: SikteApp, last: Snapshot):
    async with replay_app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        keys = [c.key for c in columns(SYSCALL)]
        # total_ns -> ... -> max_ns -> name
        await pilot.press(*[">"] * (len(keys) - keys.index("total_ns")))
        assert table_of(replay_app).sort_column == "name"
        assert names(replay_app) == sorted(by_name(last))
        assert "sort name ▲" in header(replay_app)


async def test_invert_reverses_the_order(replay_app: SikteApp):
    async with replay_app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        table = table_of(replay_app)
        before = column_values(replay_app, "total_ns")
        await pilot.press("i")
        assert (table.sort_column, table.sort_reverse) == ("total_ns", False)
        assert column_values(replay_app, "total_ns") == sorted(before)
        assert "sort total ▲" in header(replay_app)
        await pilot.press("i")
        assert table.sort_reverse is True
        assert column_values(replay_app, "total_ns") == before


def header_x(table: KeyedTable, column: str) -> int:
    index = [c.key for c in table.columns].index(column)
    return sum(table.widths[:index]) + GAP * index + 1


async def test_clicking_a_header_sorts_by_it(replay_app: SikteApp):
    async with replay_app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        table = table_of(replay_app)
        for column in columns(SYSCALL):
            if column.key == table.sort_column:
                continue
            assert await pilot.click(KeyedTable, offset=(header_x(table, column.key), 0))
            await pilot.pause()
            assert table.sort_column == column.key
            assert table.sort_reverse is column.numeric
            assert sorted_ok(column_values(replay_app, column.key), column.numeric), column.key
        # Clicking the sorted column again inverts it.
        assert await pilot.click(KeyedTable, offset=(header_x(table, "count"), 0))
        assert await pilot.click(KeyedTable, offset=(header_x(table, "count"), 0))
        await pilot.pause()
        assert (table.sort_column, table.sort_reverse) == ("count", False)
        assert sorted_ok(column_values(replay_app, "count"), False)
        # A click on a row moves the cursor and does not sort.
        assert await pilot.click(KeyedTable, offset=(header_x(table, "errors"), 3))
        assert (table.sort_column, table.cursor) == ("count", 2)


# -- filters ---------------------------------------------------------------------------------


FILTERS = {
    "open": lambda s: {n: v for n, v in by_name(s).items() if "open" in n},
    "name~^get": lambda s: {n: v for n, v in by_name(s).items() if n.startswith("get")},
    "comm=workload": lambda s: by_name(s, lambda k: s.processes[k.pid].comm == "workload"),
    "errors>0": lambda s: {n: v for n, v in by_name(s).items() if v.errors > 0},
    "p99>1ms": lambda s: {n: v for n, v in by_name(s).items() if v.quantile(0.99) > 1_000_000},
    "count>=100": lambda s: {n: v for n, v in by_name(s).items() if v.count >= 100},
    "!getppid": lambda s: {n: v for n, v in by_name(s).items() if n != "getppid"},
    "comm=workload errors>0": lambda s: {
        n: v for n, v in by_name(s, lambda k: s.processes[k.pid].comm == "workload").items()
        if v.errors > 0},
    "open errors>0": lambda s: {n: v for n, v in by_name(s).items()
                                if "open" in n and v.errors > 0},
}


@pytest.mark.parametrize("text", list(FILTERS))
async def test_filter(replay_app: SikteApp, last: Snapshot, text: str):
    expected = FILTERS[text](last)
    assert expected, "a filter case must keep some rows"
    async with replay_app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await apply_filter(pilot, text)
        rows = {r.values["name"]: r.values for r in table_of(replay_app).rows}
        assert sorted(rows) == sorted(expected)
        for name, stats in expected.items():  # the rows count only what the filter kept
            assert (rows[name]["count"], rows[name]["errors"]) == (stats.count, stats.errors)
        assert f"filter: {text}" in header(replay_app)
        assert not replay_app.screen.query_one("#filter-message").display
        assert table_of(replay_app).has_focus  # Enter hands the keys back to the table


async def test_bare_word_open_keeps_openat_only(replay_app: SikteApp):
    async with replay_app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await type_filter(pilot, "open")
        assert names(replay_app) == ["openat"]
        assert table_of(replay_app).rows[0].values["count"] == 105


async def test_filter_by_pid_counts_that_process_only(replay_app: SikteApp, last: Snapshot):
    # The workload that made the 25 failing openat calls.
    pid = next(k.pid for k, v in last.stats.items()
               if key_name(last, k) == "openat" and v.errors == 25)
    expected = by_name(last, lambda k: k.pid == pid)
    async with replay_app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await type_filter(pilot, f"pid={pid}")
        rows = {r.values["name"]: r.values for r in table_of(replay_app).rows}
        assert sorted(rows) == sorted(expected)
        assert (rows["openat"]["count"], rows["openat"]["errors"]) == (
            expected["openat"].count, 25)


async def test_filter_follows_typing_without_enter(replay_app: SikteApp):
    async with replay_app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("slash", *"getppid")
        await until(pilot, lambda: names(replay_app) == ["getppid"])
        assert replay_app.screen.query_one("#filter", Input).has_focus


async def test_invalid_filter_keeps_the_last_valid_one(replay_app: SikteApp, last: Snapshot):
    async with replay_app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await apply_filter(pilot, "count>=100")
        valid = names(replay_app)
        assert sorted(valid) == sorted(FILTERS["count>=100"](last))
        # Edit the filter into one that does not parse (as if pasted over it).
        await pilot.press("slash")
        bar = replay_app.screen.query_one("#filter", Input)
        bar.value = "count=>3"
        await debounced(pilot)
        message = replay_app.screen.query_one("#filter-message", Static)
        assert message.display
        assert plain(message).startswith("✗ bad operator '=>' for count at 0")
        assert names(replay_app) == valid
        assert "filter: count>=100" in header(replay_app)
        # Typed key by key, every prefix that parses is applied: "count" (a bare word) is the
        # last one that parses, and no syscall name contains it.
        bar.value = ""
        await pilot.press(*"count=>3")
        await until(pilot, lambda: table_of(replay_app).row_count == 0)
        await debounced(pilot)
        assert message.display
        assert "bad operator '=>' for count" in plain(message)
        assert table_of(replay_app).row_count == 0
        # Fixing it clears the message.
        await pilot.press("backspace", "backspace", "backspace", *">=3", "enter")
        assert not message.display
        assert all(r.values["count"] >= 3 for r in table_of(replay_app).rows)


async def test_escape_clears_the_filter(replay_app: SikteApp):
    async with replay_app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        # From the table...
        await apply_filter(pilot, "errors>0")
        assert table_of(replay_app).row_count < 44
        await pilot.press("escape")
        assert table_of(replay_app).row_count == 44
        assert replay_app.screen.query_one("#filter", Input).value == ""
        assert "filter:" not in header(replay_app)
        # ...and from the filter bar, while typing (also hides an error message).
        await pilot.press("slash", *"count=>")
        assert replay_app.screen.query_one("#filter-message").display
        await pilot.press("escape")
        await debounced(pilot)  # no typed prefix comes back
        assert table_of(replay_app).row_count == 44
        assert replay_app.screen.query_one("#filter", Input).value == ""
        assert not replay_app.screen.query_one("#filter-message").display
        assert table_of(replay_app).has_focus
        assert isinstance(replay_app.screen, LiveScreen)


async def test_e_toggles_errors_only(replay_app: SikteApp, last: Snapshot):
    failing = sorted(n for n, v in by_name(last).items() if v.errors)
    async with replay_app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("e")
        await until(pilot, lambda: sorted(names(replay_app)) == failing)
        # The recording's errors are all real ones (ENOENT...): none is left out.
        assert replay_app.screen.query_one("#filter", Input).value == "unexpected>0"
        await pilot.press("e")
        await until(pilot, lambda: table_of(replay_app).row_count == 44)
        assert replay_app.screen.query_one("#filter", Input).value == ""
        # Combined with another term, `e` adds and removes only its own.
        await apply_filter(pilot, "comm=workload")
        await pilot.press("e")
        expected = sorted(FILTERS["comm=workload errors>0"](last))
        await until(pilot, lambda: sorted(names(replay_app)) == expected)
        assert replay_app.screen.query_one("#filter", Input).value == (
            "comm=workload unexpected>0")
        await pilot.press("e")
        assert replay_app.screen.query_one("#filter", Input).value == "comm=workload"


# -- groupings -------------------------------------------------------------------------------


async def test_g_cycles_the_groupings(replay_app: SikteApp, last: Snapshot):
    python = pid_of(last, "python")
    subshell = pid_of(last, "sh", exit_code=3)
    async with replay_app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        table = table_of(replay_app)

        await pilot.press("g")
        assert table.columns == columns(GROUPINGS[1])
        rows = {r.values["pid"]: r.values for r in table.rows}
        assert sorted(rows) == sorted({k.pid for k in last.stats})
        assert {pid: v["comm"] for pid, v in rows.items()} == {
            pid: last.processes[pid].comm for pid in rows}
        assert rows[subshell]["comm"] == "sh"
        for pid, values in rows.items():
            mine = [s for k, s in last.stats.items() if k.pid == pid]
            assert values["count"] == sum(s.count for s in mine)
        assert sum(v["count"] for v in rows.values()) == last.total_count
        assert "by process" in header(replay_app)

        await pilot.press("g")
        assert table.columns == columns(GROUPINGS[2])
        threads = [(r.values["pid"], r.values["tid"]) for r in table.rows]
        assert sorted(threads) == sorted({(k.pid, k.tid) for k in last.stats})
        assert sorted(t for p, t in threads if p == python) == sorted(
            {python, *last.processes[python].threads})
        assert len([p for p, _ in threads if p == python]) == 4  # 3 threads and the main one
        assert "by thread" in header(replay_app)

        await pilot.press("g")
        assert table.columns == columns(GROUPINGS[3])
        pairs = {(r.values["pid"], r.values["name"]): r.values for r in table.rows}
        assert len(pairs) == len({(k.pid, key_name(last, k)) for k in last.stats})
        openat = pairs[(next(k.pid for k, v in last.stats.items()
                             if key_name(last, k) == "openat" and v.errors == 25), "openat")]
        assert openat["errors"] == 25 and openat["comm"] == "workload"
        assert "process × syscall" in header(replay_app)

        await pilot.press("g")
        assert table.columns == columns(GROUPINGS[4])
        commands = {r.values["comm"]: r.values for r in table.rows}
        assert sorted(commands) == sorted({last.processes[k.pid].comm for k in last.stats})
        assert sum(v["count"] for v in commands.values()) == last.total_count
        assert "by command" in header(replay_app)

        await pilot.press("g")
        assert table.columns == columns(SYSCALL)
        assert table.row_count == 44
        assert "by syscall" in header(replay_app)


async def test_grouping_keeps_a_metric_sort_and_resets_an_identity_one(replay_app: SikteApp):
    async with replay_app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        table = table_of(replay_app)
        await pilot.press(*[">"] * 8)  # total -> %time ... max -> name -> count
        assert table.sort_column == "count"
        await pilot.press("g")
        assert table.sort_column == "count"
        assert sorted_ok(column_values(replay_app, "count"), True)
        await pilot.press("<")  # count -> container
        assert (table.sort_column, table.sort_reverse) == ("container", False)
        await pilot.press("<")  # container -> comm
        assert (table.sort_column, table.sort_reverse) == ("comm", False)
        await pilot.press("g")  # by thread: has a comm column
        assert (table.sort_column, table.sort_reverse) == ("comm", False)
        assert sorted_ok(column_values(replay_app, "comm"), False)
        await pilot.press("g")  # process × syscall: has one too
        assert table.sort_column == "comm"
        await pilot.press("g")  # by command: its first column
        assert table.sort_column == "comm"
        await pilot.press("g")  # by syscall: no comm column, back to the default
        assert (table.sort_column, table.sort_reverse) == ("total_ns", True)
        assert sorted_ok(column_values(replay_app, "total_ns"), True)


# -- drill-downs -----------------------------------------------------------------------------


def datatable_rows(screen, selector: str) -> list[list[str]]:
    table = screen.query_one(selector, KeyedTable)
    return [[row.cells[c.key] for c in table.columns] for row in table.rows]


async def test_enter_on_openat_opens_its_details(replay_app: SikteApp, snapshots, last):
    openat_keys = {k for k in last.stats if key_name(last, k) == "openat"}
    events = [e for s in snapshots for e in s.events
              if StatKey(int(e["pid"]), int(e["tid"]), int(e["nr"])) in openat_keys]
    async with replay_app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await move_to(pilot, ("openat", 0))
        await pilot.press("enter")
        await pilot.pause()
        screen = replay_app.screen
        assert isinstance(screen, DetailScreen)
        assert (screen.syscall, screen.pid) == ("openat", None)
        title = plain(screen.query_one("#detail-title", Static))
        assert title.startswith("openat · all processes · calls 105 · errors 30")
        # Every failed call is sent as an event: all 30 are ENOENT.
        assert datatable_rows(screen, "#by-errno") == [["ENOENT", "30", "-"]]  # no paths captured
        processes = datatable_rows(screen, "#by-process")
        assert sorted(int(r[0]) for r in processes) == sorted({k.pid for k in openat_keys})
        assert sum(int(r[2]) for r in processes) == 105
        recent = datatable_rows(screen, "#events")
        assert len(recent) == len(events) == 31
        # Decoded (a session recorded before issue 15 captured no paths: raw pointers).
        assert sum(r[4].startswith("openat(") and r[4].endswith(
            " = -1 ENOENT (No such file or directory)") for r in recent) == 30
        assert f"recent events ({len(events)} of {len(events)} kept" in plain(
            screen.query_one("#events-title", Static))
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(replay_app.screen, LiveScreen)
        assert table_of(replay_app).cursor_key == ("openat", 0)


async def test_enter_on_a_process_syscall_row_scopes_the_details(replay_app, last):
    pid = next(k.pid for k, v in last.stats.items()
               if key_name(last, k) == "openat" and v.errors == 25)
    async with replay_app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("g", "g", "g")
        await move_to(pilot, (pid, "openat", 0))
        await pilot.press("enter")
        await pilot.pause()
        screen = replay_app.screen
        assert isinstance(screen, DetailScreen)
        assert (screen.syscall, screen.pid) == ("openat", pid)
        assert f"openat · pid {pid} · " in plain(screen.query_one("#detail-title", Static))
        assert datatable_rows(screen, "#by-errno") == [["ENOENT", "25", "-"]]
        assert [r[0] for r in datatable_rows(screen, "#by-process")] == [str(pid)]


async def test_enter_on_a_process_row_filters_to_its_pid(replay_app: SikteApp, last: Snapshot):
    subshell = pid_of(last, "sh", exit_code=3)
    expected = by_name(last, lambda k: k.pid == subshell)
    async with replay_app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("g")
        await move_to(pilot, (subshell,))
        await pilot.press("enter")
        await until(pilot, lambda: f"filter: pid={subshell}" in header(replay_app))
        assert isinstance(replay_app.screen, LiveScreen)
        assert live(replay_app).grouping.key == "syscall"
        assert replay_app.screen.query_one("#filter", Input).value == f"pid={subshell}"
        rows = {r.values["name"]: r.values["count"] for r in table_of(replay_app).rows}
        assert rows == {n: s.count for n, s in expected.items()}
        assert "by syscall" in header(replay_app)
        assert f"filter: pid={subshell}" in header(replay_app)


async def test_enter_on_a_thread_row_filters_to_its_tid(replay_app: SikteApp, last: Snapshot):
    python = pid_of(last, "python")
    tid = min(last.processes[python].threads)
    expected = by_name(last, lambda k: k.tid == tid)
    async with replay_app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("g", "g")
        await move_to(pilot, (python, tid))
        await pilot.press("enter")
        await until(pilot, lambda: f"filter: pid={python} tid={tid}" in header(replay_app))
        assert replay_app.screen.query_one("#filter", Input).value == f"pid={python} tid={tid}"
        rows = {r.values["name"]: r.values["count"] for r in table_of(replay_app).rows}
        assert rows == {n: s.count for n, s in expected.items()}


async def test_enter_on_a_process_row_sorted_by_pid(replay_app: SikteApp, last: Snapshot):
    """Drilling from a process row sorted by pid: the syscall rows have no pid column, so
    the sort must fall back (as `g` does) instead of failing."""
    subshell = pid_of(last, "sh", exit_code=3)
    async with replay_app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("g")
        await pilot.click(KeyedTable, offset=(header_x(table_of(replay_app), "pid"), 0))
        await pilot.pause()
        assert table_of(replay_app).sort_column == "pid"
        await move_to(pilot, (subshell,))
        await pilot.press("enter")
        await until(pilot, lambda: not replay_app.is_running
                    or f"filter: pid={subshell}" in header(replay_app))
        assert replay_app.is_running
        table = table_of(replay_app)
        assert table.sort_column in {c.key for c in columns(SYSCALL)}
        assert table.row_count == len(by_name(last, lambda k: k.pid == subshell))


# -- pause, reset ----------------------------------------------------------------------------


def count_of(app: SikteApp, key: RowKey) -> int:
    return next(int(r.values["count"]) for r in table_of(app).rows if r.key == key)


def grown(snapshot: Snapshot, name: str, extra: int) -> Snapshot:
    """The next snapshot: `extra` more calls of `name` by its first entry."""
    key = next(k for k in sorted(snapshot.stats) if key_name(snapshot, k) == name)
    old = snapshot.stats[key]
    new = dataclasses.replace(old, count=old.count + extra)
    stats = dict(snapshot.stats)
    stats[key] = new
    return dataclasses.replace(
        snapshot, seq=snapshot.seq + 1, ts_ns=snapshot.ts_ns + 250_000_000,
        stats=MappingProxyType(stats), interval=MappingProxyType({key: new - old}),
        interval_s=0.25, proc_events=())


async def test_pause_freezes_the_table_and_resume_catches_up(make_replay_app, snapshots):
    app = make_replay_app(snapshots[:3])  # still tracing
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        screen = live(app)
        assert "● tracing" in header(app)
        before = {r.key: r.values["count"] for r in table_of(app).rows}
        await pilot.press("p")
        assert "● paused" in header(app)
        screen.post_message(SnapshotReady(snapshots[3]))
        await settle(pilot)
        assert {r.key: r.values["count"] for r in table_of(app).rows} == before
        assert "syscalls 7,031" in header(app)
        await pilot.press("p")
        await until(pilot, lambda: "syscalls 9,076" in header(app))
        after = {r.key: r.values["count"] for r in table_of(app).rows}
        assert after == {(n, 0): s.count for n, s in by_name(snapshots[3]).items()}
        assert after[("getppid", 0)] == 7901
        assert "syscalls 9,076" in header(app)
        assert "paused" not in header(app)


async def test_snapshots_while_paused_all_count_on_resume(replay_app: SikteApp, last):
    async with replay_app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("p")
        first = grown(last, "getppid", 100)
        second = grown(first, "getppid", 50)
        live(replay_app).post_message(SnapshotReady(first))
        await settle(pilot)
        assert count_of(replay_app, ("getppid", 0)) == 7901
        live(replay_app).post_message(SnapshotReady(second))
        await pilot.press("p")
        await until(pilot, lambda: count_of(replay_app, ("getppid", 0)) == 7901 + 150)
        # and a snapshot after the resume adds its interval once
        live(replay_app).post_message(SnapshotReady(grown(second, "getppid", 7)))
        await until(pilot, lambda: count_of(replay_app, ("getppid", 0)) == 7901 + 157)
        await settle(pilot)
        assert count_of(replay_app, ("getppid", 0)) == 7901 + 157
        assert header(replay_app).count(f"syscalls {last.total_count + 157:,}") == 1


async def test_pause_is_shown_after_the_targets_exited(replay_app: SikteApp):
    """`p` must show that the view is paused, whatever the trace's state."""
    async with replay_app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        assert "target exited (0)" in header(replay_app)
        await pilot.press("p")
        await pilot.pause()
        assert "paused" in header(replay_app)


class SteppedReplay(ReplaySource):
    """The real replay source (and its reset), but later snapshots come when the test
    pushes them."""

    def __init__(self, snapshots: list[Snapshot], first: int) -> None:
        super().__init__(snapshots)
        self.first = first

    def start(self, on_snapshot, on_output, on_failure=None) -> None:
        self._on_snapshot = on_snapshot
        for snapshot in self.snapshots[:self.first]:
            self._emit(snapshot)

    def push(self, snapshot: Snapshot) -> None:
        self._emit(snapshot)


async def test_reset_empties_the_table(replay_app: SikteApp):
    async with replay_app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("R")
        await until(pilot, lambda: table_of(replay_app).row_count == 0)
        # Nothing was called since the reset: no rows, zero calls.
        assert "syscalls 0 " in header(replay_app)
        assert "counts reset to zero" in [n.message for n in replay_app._notifications]
        shown = live(replay_app).session.latest
        assert shown is not None and dict(shown.stats) == {}
        assert isinstance(replay_app.screen, LiveScreen) and replay_app.is_running


async def test_reset_zeroes_the_rate(replay_app: SikteApp):
    async with replay_app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        # The recording ends with its target exited: no rate stays on screen.
        assert "/s" not in header(replay_app)
        await pilot.press("R")
        await until(pilot, lambda: table_of(replay_app).row_count == 0)
        text = header(replay_app)
        assert re.search(r"syscalls 0 +dropped 0", text), text


async def test_reset_forgets_the_earlier_events(replay_app: SikteApp):
    async with replay_app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        screen = live(replay_app)
        assert len(screen.session.events) == 576
        await pilot.press("R")
        await until(pilot, lambda: table_of(replay_app).row_count == 0)
        await settle(pilot)
        assert len(screen.session.events) == 0


async def test_after_a_reset_calls_count_from_zero(snapshots: list[Snapshot]):
    source = SteppedReplay(snapshots, first=2)
    app = SikteApp(source=source)
    base, later = snapshots[1], snapshots[3]
    expected: dict[str, int] = {}
    for key, now in later.stats.items():
        count = now.count - (base.stats[key].count if key in base.stats else 0)
        if count:
            name = key_name(later, key)
            expected[name] = expected.get(name, 0) + count
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        assert f"syscalls {base.total_count:,}" in header(app)
        await pilot.press("R")
        await until(pilot, lambda: table_of(app).row_count == 0)
        source.push(later)
        await until(pilot, lambda: table_of(app).row_count > 0)
        counts = {r.values["name"]: r.values["count"] for r in table_of(app).rows}
        assert counts == expected
        assert counts["getppid"] == 7901 - by_name(base)["getppid"].count
        assert f"syscalls {sum(expected.values()):,}" in header(app)


# -- process tree, help, palette, quit --------------------------------------------------------


def tree_labels(tree: ProcessTreePanel) -> list[str]:
    labels: list[str] = []

    def walk(node) -> None:
        for child in node.children:
            labels.append(str(child.label))
            walk(child)

    walk(tree.root)
    return labels


async def test_t_shows_the_process_tree(replay_app: SikteApp, last: Snapshot):
    subshell = pid_of(last, "sh", exit_code=3)
    python = pid_of(last, "python")
    async with replay_app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        tree = replay_app.screen.query_one(ProcessTreePanel)
        assert not tree.display
        await pilot.press("t")
        await pilot.pause()
        assert tree.display
        labels = tree_labels(tree)
        assert len(labels) == len(last.processes)
        assert f"{subshell} sh exit 3" in labels
        assert f"{python} python (4 threads) exit 0" in labels
        # The subshell's child hangs under it.
        node = next(n for n in tree.root.children[0].children
                    if n.data == subshell)
        assert [c.data for c in node.children] == [
            p.pid for p in last.processes.values() if p.ppid == subshell]
        await pilot.press("t")
        assert not tree.display


async def test_help_lists_the_keys(replay_app: SikteApp):
    from tui.actions import ACTIONS

    async with replay_app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(replay_app.screen, HelpScreen)
        text = "\n".join(
            _plain(s.content) for s in replay_app.screen.query(Static))
        for action in ACTIONS:
            assert action.description in text, action.name
        for key in ("/", "?", "> or .", "< or ,", "Esc", "Enter", "Space", "F5", "Ctrl+P"):
            assert key in text
        assert "p99>1ms" in text  # the filter language
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(replay_app.screen, LiveScreen)


def _plain(content: object) -> str:
    """The text of a Static's content (a str, a Text or a rich Table of Texts)."""
    from rich.console import Console

    console = Console(width=200, file=io.StringIO())
    console.print(content)
    return console.file.getvalue()


async def test_command_palette_lists_registry_actions(replay_app: SikteApp):
    async with replay_app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(replay_app.screen, CommandPalette)
        await pilot.press(*"pause")
        palette = replay_app.screen
        options = palette.query_one(CommandList)
        await until(pilot, lambda: options.option_count > 0)
        prompts = [str(options.get_option_at_index(i).prompt)
                   for i in range(options.option_count)]
        assert any("pause: Pause the tables" in p for p in prompts), prompts
        # Running the hit runs the action on the live screen.
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(replay_app.screen, LiveScreen)
        assert live(replay_app).paused


async def test_q_quits_with_status_zero(replay_app: SikteApp):
    async with replay_app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        await pilot.press("q")
        await pilot.pause()
    assert replay_app.return_code == 0
    assert replay_app.return_value == 0


# -- the terminal's size ---------------------------------------------------------------------


async def test_a_small_terminal_warns_and_keeps_running(replay_app: SikteApp):
    async with replay_app.run_test(size=(70, 20)) as pilot:
        await loaded(pilot)
        notes = list(replay_app._notifications)
        assert any("the terminal is 70x20" in n.message and "needs 80x24" in n.message
                   and n.severity == "warning" for n in notes), [n.message for n in notes]
        assert replay_app.is_running
        await pilot.press("g")
        assert live(replay_app).grouping.key == "process"
        await pilot.resize_terminal(160, 48)
        await pilot.pause()
        assert replay_app.is_running


async def test_80x24_does_not_warn(replay_app: SikteApp):
    async with replay_app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        assert not any("the terminal is" in n.message for n in replay_app._notifications)
