"""The Connections view on a replay source (no root): the recorded fixture with synthetic
connections (tests/tui/connections_fixture.py lists them). Exact rows, sorting, every filter
form, the per-remote summary, the drill-downs from the live view, Escape, live updates and
the empty states."""

from __future__ import annotations

import dataclasses

import pytest
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import Input, Static

from tracing.model.stats import Snapshot
from tracing.sources import ReplaySource
from tui.app import SikteApp
from tui.columns import RowKey
from tui.connection_rows import ConnectionScope, scope_of_row
from tui.connections import ConnectionsHelp, ConnectionsScreen
from tui.detail import DetailScreen
from tui.live import LiveScreen
from tui.table import GAP, KeyedTable

from .conftest import NOW, until
from .connections_fixture import CURL, NGINX, PYTHON, with_connections

WIDE = (160, 48)
NEWEST_FIRST = [(8,), (7,), (6,), (5,), (4,), (3,), (2,), (1,)]


@pytest.fixture
def connected(snapshots: list[Snapshot]) -> list[Snapshot]:
    return with_connections(snapshots)


def app_on(items: list[Snapshot]) -> SikteApp:
    return SikteApp(source=ReplaySource(items), clock=lambda: NOW)



def live_table(app: SikteApp) -> KeyedTable:
    return app.screen_stack[1].query_one(KeyedTable)


async def loaded(pilot: Pilot, connections: int = 8) -> LiveScreen:
    await until(pilot, lambda: isinstance(pilot.app.screen, LiveScreen)
                and pilot.app.screen.query_one(KeyedTable).row_count > 0)
    screen = pilot.app.screen
    await until(pilot, lambda: len(screen.session.connections) == connections)
    await until(pilot, lambda: screen._pending is None)  # a tick applied the last snapshot
    return screen  # type: ignore[return-value]


async def open_connections(pilot: Pilot, connections: int = 8) -> ConnectionsScreen:
    live = await loaded(pilot, connections)
    live.query_one(KeyedTable).move_cursor(0)
    await pilot.press("c")
    await until(pilot, lambda: isinstance(pilot.app.screen, ConnectionsScreen))
    await pilot.pause(0.1)
    return pilot.app.screen  # type: ignore[return-value]


def table(screen: ConnectionsScreen) -> KeyedTable:
    return screen.query_one("#remotes" if screen.mode == "summary" else "#connections",
                            KeyedTable)


def keys(screen: ConnectionsScreen) -> list[RowKey]:
    return [r.key for r in table(screen).rows]


def cells(screen: ConnectionsScreen) -> dict[RowKey, dict[str, str]]:
    return {r.key: dict(r.cells) for r in table(screen).rows}


def plain(screen: ConnectionsScreen, selector: str) -> str:
    content = screen.query_one(selector, Static).content
    return Text.from_markup(content).plain if isinstance(content, str) else str(content)


def title(screen: ConnectionsScreen) -> str:
    return plain(screen, "#connections-title")


async def move_live_cursor(pilot: Pilot, live: LiveScreen, key: RowKey) -> None:
    live_keys = [r.key for r in live.query_one(KeyedTable).rows]
    live.query_one(KeyedTable).move_cursor(live_keys.index(key))
    await pilot.pause()


def header_x(tbl: KeyedTable, column: str) -> int:
    x = 0
    for c, width in zip(tbl.columns, tbl.widths, strict=True):
        if c.key == column:
            return x + 1
        x += width + GAP
    raise AssertionError(column)


# -- the table ---------------------------------------------------------------------------------


async def test_every_connection_newest_first_with_exact_cells(connected):
    app = app_on(connected)
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_connections(pilot)
        assert screen.scope.is_all
        assert keys(screen) == NEWEST_FIRST
        assert [c.key for c in table(screen).columns] == [
            "time", "pid", "comm", "container", "dir", "local", "remote", "state", "duration",
            "result"]
        rows = cells(screen)
        # Wall clock: the trace started at 1795316312.359963 (UTC), these 10 and 20 ms later.
        assert rows[(1,)] == {
            "time": "02:58:32.369", "pid": str(CURL), "comm": "curl", "container": "-",
            "dir": "out", "local": "10.0.0.5:41000", "remote": "93.184.216.34:443",
            "state": "CLOSE", "duration": "490ms", "result": "ok"}
        assert rows[(2,)]["result"] == "refused ECONNREFUSED"
        assert rows[(2,)]["duration"] == "1ms"
        assert rows[(4,)] | {} == {
            "time": "02:58:32.389", "pid": str(PYTHON), "comm": "python3",
            "container": "8d1e0c7b6a5f", "dir": "out", "local": "[::1]:40404",
            "remote": "[::1]:8080", "state": "CLOSE", "duration": "200ms",
            "result": "timeout ETIMEDOUT"}
        assert rows[(3,)]["container"] == "web"
        assert rows[(3,)]["dir"] == "in"
        # Open ones have lived until the newest snapshot (25 ms in -> 1010.9 ms).
        assert (rows[(3,)]["state"], rows[(3,)]["duration"], rows[(3,)]["result"]) == (
            "ESTABLISHED", "986ms", "-")
        assert rows[(7,)]["result"] == "unreachable EHOSTUNREACH"
        assert rows[(8,)]["result"] == "reset ECONNRESET"
        assert title(screen) == ("TCP connections: 8 · 4 failed · 2 open · all processes · "
                                 "sort time ▼")


async def test_the_line_under_the_table_describes_the_selected_connection(connected):
    app = app_on(connected)
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_connections(pilot)
        assert plain(screen, "#connection-selected") == (
            "172.17.0.2:80 ← 10.1.2.3:40000 · CLOSE · reset ECONNRESET · started "
            "02:58:32.969 · lived 40ms · pid 5151 nginx · container web (docker)")
        await pilot.press("down", "down")  # connection 6, still open
        assert table(screen).cursor_key == (6,)
        assert plain(screen, "#connection-selected") == (
            "10.0.0.5:41010 → 93.184.216.34:443 · ESTABLISHED · open · started "
            "02:58:32.869 · open for 501ms · pid 6161 python3 · container 8d1e0c7b6a5f "
            "(containerd)")


async def test_narrow_terminal_keeps_the_essential_columns(connected):
    app = app_on(connected)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_connections(pilot)
        tbl = table(screen)
        assert [c.key for c in tbl.columns] == [
            "pid", "comm", "dir", "remote", "state", "duration", "result"]
        assert sum(tbl.widths) + GAP * len(tbl.widths) <= 78  # beside the scrollbar
        rows = cells(screen)
        assert (rows[(2,)]["dir"], rows[(2,)]["result"]) == ("→", "refused")
        assert rows[(8,)]["dir"] == "←"
        # What the columns leave out is in the line under the table.
        assert "reset ECONNRESET · started 02:58:32.969" in plain(
            screen, "#connection-selected")


# -- sorting -----------------------------------------------------------------------------------


async def test_sort_keys_step_and_invert(connected):
    app = app_on(connected)
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_connections(pilot)
        await pilot.press("full_stop")  # time -> pid, largest first; ties newest first
        assert (screen.sort_column, screen.sort_reverse) == ("pid", True)
        assert keys(screen) == [(6,), (4,), (8,), (5,), (3,), (7,), (2,), (1,)]
        assert "sort pid ▼" in title(screen)
        await pilot.press("i")
        assert keys(screen) == [(7,), (2,), (1,), (8,), (5,), (3,), (6,), (4,)]
        await pilot.press("comma")  # back to time, newest first
        assert (screen.sort_column, screen.sort_reverse) == ("time", True)
        assert keys(screen) == NEWEST_FIRST
        await pilot.press("i")
        assert keys(screen) == NEWEST_FIRST[::-1]
        await pilot.press("comma")  # wraps around to result, A to Z
        assert (screen.sort_column, screen.sort_reverse) == ("result", False)
        assert [cells(screen)[k]["result"] for k in keys(screen)] == [
            "-", "-", "ok", "ok", "refused ECONNREFUSED", "reset ECONNRESET",
            "timeout ETIMEDOUT", "unreachable EHOSTUNREACH"]


async def test_clicking_headers_sorts(connected):
    app = app_on(connected)
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_connections(pilot)
        tbl = table(screen)
        assert await pilot.click("#connections", offset=(header_x(tbl, "remote"), 0))
        await pilot.pause()
        # Addresses as numbers (10.0.0.9 before 10.0.0.10), IPv4 before IPv6.
        assert keys(screen) == [(2,), (7,), (8,), (6,), (1,), (3,), (5,), (4,)]
        assert await pilot.click("#connections", offset=(header_x(tbl, "duration"), 0))
        await pilot.pause()
        assert (screen.sort_column, screen.sort_reverse) == ("duration", True)
        assert keys(screen) == [(3,), (6,), (1,), (5,), (4,), (8,), (7,), (2,)]
        assert await pilot.click("#connections", offset=(header_x(tbl, "duration"), 0))
        await pilot.pause()
        assert keys(screen) == [(2,), (7,), (8,), (4,), (5,), (1,), (6,), (3,)]


# -- filters -----------------------------------------------------------------------------------


FILTERS = {
    "port=443": [(6,), (1,)],
    "sport=80": [(8,), (5,), (3,)],
    "dport=5432": [(2,)],
    "port<1024": [(8,), (6,), (5,), (3,), (1,)],
    "port!=443": [(8,), (7,), (5,), (4,), (3,), (2,)],
    "addr=10.0.0.0/8": [(8,), (7,), (6,), (2,), (1,)],
    "addr=::1": [(4,)],
    "addr=10.0.0.9": [(2,)],
    r"addr~^192\.168": [(5,), (3,)],
    "container=web": [(8,), (5,), (3,)],
    "container=8d1e": [(6,), (4,)],
    "container~^web$": [(8,), (5,), (3,)],
    "!container~.": [(7,), (2,), (1,)],
    "state=established": [(6,), (3,)],
    "state~close": [(8,), (7,), (5,), (4,), (2,), (1,)],
    "dir=in": [(8,), (5,), (3,)],
    "dir=out": [(7,), (6,), (4,), (2,), (1,)],
    "!dir=in": [(7,), (6,), (4,), (2,), (1,)],
    "result=refused": [(2,)],
    "result=failed": [(8,), (7,), (4,), (2,)],
    "result=ok": [(5,), (1,)],
    "result=ETIMEDOUT": [(4,)],
    f"pid={CURL}": [(7,), (2,), (1,)],
    "comm=nginx": [(8,), (5,), (3,)],
    "comm~^py": [(6,), (4,)],
    "duration>400ms": [(6,), (3,), (1,)],
    "curl": [(7,), (2,), (1,)],
    "93.184": [(6,), (1,)],
    ":8080": [(4,)],
    "dir=out result=failed": [(7,), (4,), (2,)],
}


async def type_filter(pilot: Pilot, text: str) -> None:
    await pilot.press("slash", *text, "enter")
    await pilot.pause()


async def paste_filter(pilot: Pilot, text: str) -> None:
    """Open the filter bar, paste a filter in place of the old one (keys cost ~0.1 s each
    under Pilot), Enter."""
    await pilot.press("slash")
    field = pilot.app.screen.query_one("#connections-filter", Input)
    field.value = ""
    field.insert_text_at_cursor(text)
    await pilot.press("enter")
    await pilot.pause()


async def test_every_filter_form(connected):
    app = app_on(connected)
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_connections(pilot)
        shown, titles = {}, {}
        for text in FILTERS:
            await paste_filter(pilot, text)
            shown[text] = keys(screen)
            titles[text] = title(screen)
        assert shown == FILTERS
        for text, expected in FILTERS.items():
            assert f"filtered: {len(expected)} of 8" in titles[text], text


async def test_a_filter_typed_key_by_key(connected):
    app = app_on(connected)
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_connections(pilot)
        await type_filter(pilot, "!port=443")
        assert keys(screen) == [(8,), (7,), (5,), (4,), (3,), (2,)]
        assert title(screen).startswith("TCP connections: filtered: 6 of 8 · 4 failed · 1 open")
        assert isinstance(screen.focused, KeyedTable)  # Enter: back to the table's keys


async def test_a_bad_filter_says_why_and_keeps_the_last_good_one(connected):
    app = app_on(connected)
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_connections(pilot)
        await type_filter(pilot, "dir=in")
        await pilot.press("slash", "end")
        # Pasted at once: each keystroke's text on the way would be a filter of its own.
        screen.query_one("#connections-filter", Input).insert_text_at_cursor(" port=9x")
        await pilot.pause()
        assert keys(screen) == [(8,), (5,), (3,)]
        assert plain(screen, "#connections-filter-message") == (
            "✗ bad port '9x' for port at 7: use a number from 0 to 65535, e.g. port=443")
        await pilot.press("backspace", "enter")
        assert keys(screen) == []  # port=9: none
        assert not screen.query_one("#connections-filter-message").display
        assert plain(screen, "#connections-empty") == (
            "No connection matches the filter.  Esc clears it.")


async def test_escape_in_the_filter_bar_clears_it_and_stays(connected):
    app = app_on(connected)
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_connections(pilot)
        await pilot.press("slash", *"curl")  # drawn once typing pauses
        await until(pilot, lambda: keys(screen) == [(7,), (2,), (1,)], seen=lambda: keys(screen))
        await pilot.press("escape")
        assert app.screen is screen
        assert keys(screen) == NEWEST_FIRST
        assert screen.query_one("#connections-filter", Input).value == ""


async def test_escape_clears_the_filter_then_goes_back(connected):
    app = app_on(connected)
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_connections(pilot)
        await type_filter(pilot, "dir=in")
        await pilot.press("escape")
        assert app.screen is screen and keys(screen) == NEWEST_FIRST
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, LiveScreen))


async def test_e_toggles_failures_only(connected):
    app = app_on(connected)
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_connections(pilot)
        await type_filter(pilot, "dir=out")
        await pilot.press("e")
        assert screen.query_one("#connections-filter", Input).value == "dir=out result=failed"
        assert keys(screen) == [(7,), (4,), (2,)]
        await pilot.press("e")
        assert keys(screen) == [(7,), (6,), (4,), (2,), (1,)]


# -- the summary per remote endpoint -----------------------------------------------------------


async def test_g_shows_the_summary_per_remote_endpoint(connected):
    app = app_on(connected)
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_connections(pilot)
        await pilot.press("g")
        assert screen.mode == "summary"
        assert keys(screen) == [
            ("192.168.1.50", "in"), ("93.184.216.34:443", "out"), ("10.0.0.10:6379", "out"),
            ("10.0.0.9:5432", "out"), ("10.1.2.3", "in"), ("[::1]:8080", "out")]
        rows = cells(screen)
        assert rows[("93.184.216.34:443", "out")] == {
            "remote": "93.184.216.34:443", "dir": "out", "connections": "2", "failures": "0",
            "open": "1", "avg_ns": "490ms"}  # only the ended one counts in the average
        assert rows[("192.168.1.50", "in")] == {
            "remote": "192.168.1.50", "dir": "in", "connections": "2", "failures": "0",
            "open": "1", "avg_ns": "300ms"}
        assert rows[("10.0.0.9:5432", "out")]["failures"] == "1"
        assert title(screen).startswith(
            "TCP connections: 8 · 4 failed · 2 open · by remote endpoint (6)")
        assert plain(screen, "#connection-selected") == (
            "inbound from 192.168.1.50 · 2 connections · 0 failed · 1 open · Enter lists them")
        # The filter applies to the summary too.
        await type_filter(pilot, "result=failed")
        assert keys(screen) == [("10.0.0.10:6379", "out"), ("10.0.0.9:5432", "out"),
                                ("10.1.2.3", "in"), ("[::1]:8080", "out")]
        await pilot.press("g")
        assert screen.mode == "list" and keys(screen) == [(8,), (7,), (4,), (2,)]


async def test_summary_sorts_by_its_own_columns(connected):
    app = app_on(connected)
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_connections(pilot)
        await pilot.press("g", "full_stop")  # connections -> failures
        assert (screen.sort_column, screen.sort_reverse) == ("failures", True)
        assert keys(screen)[:4] == [("10.0.0.10:6379", "out"), ("10.0.0.9:5432", "out"),
                                    ("10.1.2.3", "in"), ("[::1]:8080", "out")]
        await pilot.press("g")  # the list keeps its own sort
        assert (screen.sort_column, screen.sort_reverse) == ("time", True)


async def test_enter_on_an_endpoint_lists_its_connections_and_escape_comes_back(connected):
    app = app_on(connected)
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_connections(pilot)
        await pilot.press("g", "down", "enter")  # 93.184.216.34:443, outbound
        assert screen.mode == "list"
        assert keys(screen) == [(6,), (1,)]
        assert screen.query_one("#connections-filter", Input).value == (
            "dir=out addr=93.184.216.34 dport=443")
        await pilot.press("escape")
        assert screen.mode == "summary"
        assert table(screen).cursor_key == ("93.184.216.34:443", "out")
        assert screen.query_one("#connections-filter", Input).value == ""
        await pilot.press("up", "enter")  # inbound from 192.168.1.50: by address
        assert keys(screen) == [(5,), (3,)]
        await pilot.press("escape", "escape")
        await until(pilot, lambda: isinstance(app.screen, LiveScreen))


# -- drilling down from the live view ----------------------------------------------------------


async def test_from_a_process_row(connected):
    app = app_on(connected)
    async with app.run_test(size=WIDE) as pilot:
        live = await loaded(pilot)
        await pilot.press("g")  # by process
        await pilot.pause(0.1)
        await move_live_cursor(pilot, live, (NGINX,))
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConnectionsScreen))
        screen = app.screen
        assert screen.scope == ConnectionScope(pid=NGINX)
        assert keys(screen) == [(8,), (5,), (3,)]
        assert title(screen) == (f"TCP connections: 3 · 1 failed · 1 open · pid {NGINX} nginx"
                                 " · sort time ▼")
        await pilot.press("a")  # every connection
        assert keys(screen) == NEWEST_FIRST
        assert "all processes" in title(screen)


async def test_from_a_thread_row(connected):
    app = app_on(connected)
    async with app.run_test(size=WIDE) as pilot:
        live = await loaded(pilot)
        await pilot.press("g", "g")  # by thread
        await pilot.pause(0.1)
        await move_live_cursor(pilot, live, (PYTHON, PYTHON))
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConnectionsScreen))
        assert keys(app.screen) == [(6,), (4,)]


@pytest.mark.parametrize(("syscall", "expected", "label"), [
    ("connect", [(7,), (6,), (4,), (2,), (1,)], "outbound (connect)"),
    ("accept4", [(8,), (5,), (3,)], "inbound (accept4)"),
])
async def test_from_a_syscall_row(connected, syscall: str, expected: list[str], label: str):
    app = app_on(connected)
    async with app.run_test(size=WIDE) as pilot:
        live = await loaded(pilot)
        await move_live_cursor(pilot, live, (syscall, 0))
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConnectionsScreen))
        screen = app.screen
        assert keys(screen) == expected
        assert f" · {label} · " in title(screen)
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is live)
        # Enter keeps its meaning: the syscall's details.
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        assert app.screen.syscall == syscall


async def test_from_a_process_syscall_row(connected):
    app = app_on(connected)
    async with app.run_test(size=WIDE) as pilot:
        live = await loaded(pilot)
        await pilot.press("g", "g", "g")  # process × syscall
        await pilot.pause(0.1)
        await move_live_cursor(pilot, live, (CURL, "connect", 0))
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConnectionsScreen))
        screen = app.screen
        assert keys(screen) == [(7,), (2,), (1,)]
        assert f"pid {CURL} curl · outbound (connect)" in title(screen)


@pytest.mark.parametrize(("grouping", "row", "scope"), [
    ("syscall", None, ConnectionScope()),
    ("syscall", ("read",), ConnectionScope()),
    ("syscall", ("connect",), ConnectionScope(None, "out", "connect")),
    ("syscall", ("accept",), ConnectionScope(None, "in", "accept")),
    ("syscall", ("accept4",), ConnectionScope(None, "in", "accept4")),
    ("process", (42,), ConnectionScope(42)),
    ("thread", (42, 43), ConnectionScope(42)),
    ("pid_syscall", (42, "connect"), ConnectionScope(42, "out", "connect")),
    ("pid_syscall", (42, "read"), ConnectionScope(42)),
])
def test_scope_of_row(grouping: str, row: RowKey | None, scope: ConnectionScope):
    assert scope_of_row(grouping, row) == scope


# -- live updates and empty states -------------------------------------------------------------


async def test_a_connection_moves_on_as_snapshots_come(connected):
    source = ReplaySource(connected[:1])
    app = SikteApp(source=source, clock=lambda: NOW)
    async with app.run_test(size=WIDE) as pilot:
        screen = await open_connections(pilot, connections=3)
        assert keys(screen) == [(3,), (2,), (1,)]
        first = cells(screen)[(1,)]
        assert (first["state"], first["duration"], first["result"]) == ("SYN_SENT", "255ms",
                                                                         "-")
        source._emit(connected[1])
        await until(pilot, lambda: cells(screen)[(1,)]["state"] == "ESTABLISHED")
        assert cells(screen)[(1,)]["duration"] == "500ms"  # still open: it grows
        assert keys(screen) == [(5,), (4,), (3,), (2,), (1,)]
        source._emit(connected[2])
        await until(pilot, lambda: cells(screen)[(1,)]["state"] == "CLOSE")
        first = cells(screen)[(1,)]
        assert (first["duration"], first["result"]) == ("490ms", "ok")
        assert title(screen).startswith("TCP connections: 6 · 2 failed · 2 open")


async def test_no_connections_yet(snapshots):
    app = app_on(snapshots)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_connections(pilot, connections=0)
        assert keys(screen) == []
        assert plain(screen, "#connections-empty") == "No TCP connections yet."
        assert not table(screen).display
        assert title(screen) == "TCP connections: 0 · 0 failed · 0 open · all processes · " \
                                "sort time ▼"


async def test_tcp_monitoring_off_says_so(snapshots):
    app = app_on([dataclasses.replace(s, tcp_monitored=False) for s in snapshots])
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, connections=0)
        app.push_screen(ConnectionsScreen(app.session))
        await until(pilot, lambda: isinstance(app.screen, ConnectionsScreen))
        await pilot.pause(0.1)
        assert plain(app.screen, "#connections-empty") == (
            "TCP monitoring is off for this trace (--disable-tcp-mon, or a kernel without the "
            "sock:inet_sock_set_state tracepoint): no connections are recorded.")
        assert "TCP monitoring off" in title(app.screen)


async def test_a_scope_with_no_connections_offers_all(connected):
    app = app_on(connected)
    async with app.run_test(size=WIDE) as pilot:
        await loaded(pilot)
        app.push_screen(ConnectionsScreen(app.session, ConnectionScope(pid=1)))
        await until(pilot, lambda: isinstance(app.screen, ConnectionsScreen))
        await pilot.pause(0.1)
        screen = app.screen
        assert plain(screen, "#connections-empty") == (
            "No TCP connections yet for pid 1.  a shows every connection.")
        await pilot.press("a")
        assert keys(screen) == NEWEST_FIRST
        assert table(screen).display


async def test_help_shows_the_connection_filter_language(connected):
    app = app_on(connected)
    async with app.run_test(size=WIDE) as pilot:
        await open_connections(pilot)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, ConnectionsHelp))
        texts = " ".join(str(s.content) for s in app.screen.query(Static))
        assert "container=web" in texts and "result=failed" in texts
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ConnectionsScreen))
