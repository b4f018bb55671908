"""The picker on a busy machine's list: 2,000 processes with 4 KB command lines, matched off
the UI thread on a bounded prefix, ranked, with prepared processes reused across refreshes.
No assertion on time (make bench measures it): these check what ends on screen."""

from __future__ import annotations

import dataclasses
import re

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from tests.tui.conftest import NOW
from tracing.query import fuzzy
from tracing.system.proclist import ProcessEntry
from tui import picker
from tui.app import SikteApp
from tui.picker import PickerScreen
from tui.picker_rows import COMMAND_MATCH, Catalog, match_all
from tui.table import KeyedTable

from .conftest import until

N = 2000
PAYLOAD = 4096


def busy_list() -> list[ProcessEntry]:
    """N processes, command lines of 4 KB: an id, then a payload of "x" (no letter of the
    queries below), and past the matched prefix a word nobody can find."""
    entries = []
    for i in range(N):
        head = f"--id={i:04d}"
        argv = ("/opt/svc/bin/worker", head,
                "--payload=" + "x" * 3000 + "needle" + "x" * (PAYLOAD - 3006))
        if i == 7:
            argv = ("/opt/svc/bin/worker", "--id=0007\n--evil", argv[2])
        entries.append(ProcessEntry(10_000 + i, "app", "worker", argv, float(i % 97), 1 << 20,
                                    1, NOW - 600))
    return entries


def oracle(query: str, entries: list[ProcessEntry]) -> set[int]:
    """Who matches, by another route: the letters in order within one field as shown."""
    pattern = re.compile(".*".join(map(re.escape, query.lower())))
    found = set()
    for e in entries:
        command = " ".join(e.cmdline).replace("\n", "\\n")[:COMMAND_MATCH - 1]
        if any(pattern.search(f.lower()) for f in (command, e.user, str(e.pid), e.name)):
            found.add(e.pid)
    return found


@pytest.fixture(scope="module")
def entries() -> list[ProcessEntry]:
    return busy_list()


def shown(app: SikteApp) -> list[int]:
    return [int(r.key[0]) for r in app.screen.query_one(KeyedTable).rows]


async def type_query(pilot: Pilot, query: str) -> None:
    screen = pilot.app.screen
    await pilot.press("slash", *query)
    # Applied: the screen holds this query's matches (the worker's result arrived).
    await until(pilot, lambda: screen.matches is not None and screen.matches.query == query
                and screen.query_one(Input).value == query, 30)


async def test_typing_ends_with_exactly_the_matching_rows(entries: list[ProcessEntry]):
    app = SikteApp(lister=lambda: list(entries), clock=lambda: NOW)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.screen.query_one(KeyedTable).row_count == N, 30)
        screen = app.screen
        assert isinstance(screen, PickerScreen)

        await type_query(pilot, "id=0042")
        assert shown(app) == [10042]

        await pilot.press(*["backspace"] * 7, *"042")
        await until(pilot, lambda: screen.matches is not None and screen.matches.query == "042"
                    and screen.query_one(Input).value == "042", 30)
        rows = shown(app)
        assert set(rows) == oracle("042", entries)
        assert len(rows) == len(set(rows))
        # "042" whole at a word start ("--id=0420".."--id=0429") ranks first; among equals
        # the CPU order stays (most first, then pid).
        best = sorted(range(10_420, 10_430), key=lambda pid: (-((pid - 10_000) % 97), pid))
        assert rows[:10] == best
        table = screen.query_one(KeyedTable)
        command = table.rows[0].cells["command"]
        start = command.index("--id=") + len("--id=")
        assert command[start:start + 4] == f"{best[0] - 10_000:04d}"
        hit = table.matches[(best[0],)]
        assert fuzzy.positions_in(hit[2], 0) == (start, start + 1, start + 2)
        assert "\x1b" not in table.rows[0].cells["command"]


async def test_only_a_bounded_prefix_is_matched_and_newlines_stay_on_one_line(
        entries: list[ProcessEntry]):
    app = SikteApp(lister=lambda: list(entries), clock=lambda: NOW)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.screen.query_one(KeyedTable).row_count == N, 30)
        await type_query(pilot, "needle")  # at character 3,000 of every command line
        assert shown(app) == []
        assert oracle("needle", entries) == set()
        await pilot.press(*["backspace"] * 6, *"0007")
        await until(pilot, lambda: app.screen.matches.query == "0007", 30)
        assert shown(app) == [10007]
        command = app.screen.query_one(KeyedTable).rows[0].cells["command"]
        assert command.startswith("/opt/svc/bin/worker --id=0007\\n--evil --payload=xxx")
        assert "\n" not in command and len(command) == COMMAND_MATCH


# -- the work is done once per process, and only the newest query is shown -------------------


def test_a_refresh_reuses_prepared_processes_and_forgets_the_gone(
        entries: list[ProcessEntry]):
    catalog = Catalog(set(), lambda: NOW)
    first = {item.candidate.key: item for item in catalog.prepare(entries[:100])}
    # Listed again: 50 as they were (new objects, equal), 25 with new figures, 25 new ones.
    again = [dataclasses.replace(e, cmdline=tuple(e.cmdline)) for e in entries[50:75]]
    again += [dataclasses.replace(e, cpu_pct=e.cpu_pct + 1) for e in entries[75:100]]
    again += entries[100:125]
    listed = catalog.prepare(again)
    same = [item for item in listed if first.get(item.candidate.key) is item]
    kept = [item for item in listed if item.candidate.key in first
            and first[item.candidate.key].candidate is item.candidate]
    assert len(same) == 25  # the unchanged keep their rows
    assert len(kept) == 50  # and those with new figures their prepared text
    assert [item.row.values["cpu"] for item in listed[25:50]] == [
        e.cpu_pct + 1 for e in entries[75:100]]
    assert len(catalog._known) == 75  # the 50 gone are forgotten
    # An exec keeps the pid and the start time: the new command line is prepared again.
    execd = dataclasses.replace(entries[60], name="sh", cmdline=("sh", "-c", "true"))
    (item,) = catalog.prepare([execd])
    assert item.candidate.command == "sh -c true"


def test_matching_reuses_the_last_result(entries: list[ProcessEntry],
                                         monkeypatch: pytest.MonkeyPatch):
    listed = Catalog(set(), lambda: NOW).prepare(entries[:200])
    calls = []
    real = fuzzy.match

    def counting(terms: tuple[fuzzy.Term, ...], fields: tuple[fuzzy.Field, ...],
                 shown: int | None = None) -> fuzzy.Match | None:
        calls.append(fields[2].text)
        return real(terms, fields, shown)

    monkeypatch.setattr(picker.fuzzy, "match", counting)
    first = match_all("01", listed, None)
    assert first is not None and len(calls) == 200
    matched = {str(pid) for (pid,) in first.hits}  # the hits are keyed by (pid,)
    calls.clear()
    # A longer query: only those that matched the shorter one are matched again.
    second = match_all("015", listed, first)
    assert second is not None and sorted(calls) == sorted(matched)
    calls.clear()
    # The same query on a new listing of the same processes: nothing is matched again.
    assert match_all("015", listed[:150], second) is not None and calls == []
    # A superseded search stops.
    assert match_all("9", listed, None, cancelled=lambda: True) is None


async def test_an_older_query_never_replaces_a_newer_one(picker_app: SikteApp):
    async with picker_app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: picker_app.screen.query_one(KeyedTable).row_count == 8)
        screen = picker_app.screen
        await type_query(pilot, "vim")
        stale = match_all("v", screen.listed, None)
        assert stale is not None and len(stale.hits) > 1
        screen.post_message(picker.Matched(stale))
        await pilot.pause()
        assert shown(picker_app) == [2345]
        assert screen.matches.query == "vim"


# -- 80 columns: the command column takes the room left ------------------------------------


@pytest.mark.parametrize(("size", "columns", "command_width"), [
    ((80, 24), ["selected", "pid", "user", "cpu", "command"], 42),
    ((160, 48), ["selected", "pid", "user", "cpu", "rss", "threads", "started", "command"],
     95),
])
async def test_columns_fit_the_width_by_priority(picker_app: SikteApp, size: tuple[int, int],
                                                 columns: list[str], command_width: int):
    async with picker_app.run_test(size=size) as pilot:
        await until(pilot, lambda: picker_app.screen.query_one(KeyedTable).row_count == 8)
        table = picker_app.screen.query_one(KeyedTable)
        assert [c.key for c in table.shown_columns] == columns
        command = next(c for c in table.shown_columns if c.key == "command")
        assert command.width == command_width
        # Sorting by a column that was left out brings it back (the sort column stays).
        if "threads" not in columns:
            while table.sort_column != "threads":
                await pilot.press(">")
            assert "threads" in [c.key for c in table.shown_columns]
            assert next(c for c in table.shown_columns if c.key == "command").width >= 30


def test_filtered_picker_at_80x24(snap_compare, picker_app: SikteApp):
    async def typed(pilot: Pilot) -> None:
        await until(pilot, lambda: pilot.app.screen.query_one(KeyedTable).row_count == 8)
        await type_query(pilot, "http")
        await pilot.press("enter")
        await pilot.pause()

    assert snap_compare(picker_app, terminal_size=(80, 24), run_before=typed)
