"""Enter on a hostile path in the Files view lists that path's events: the filter bar shows
(and so holds) a path's control characters as visible escapes, and the event log tests the
paths as shown, so a file named with an escape sequence, bytes that are not UTF-8 or a
newline cannot hide its events from the drill-down (issue 15's red team)."""

from __future__ import annotations

import dataclasses
import errno
from types import MappingProxyType

from tracing.model.files import FileKey, FileStats
from tracing.model.paths import PathTable
from tracing.model.stats import Snapshot
from tui.event_log import EventLogScreen
from tui.files import FilesScreen

from .conftest import until
from .events_fixture import APP, READ, _event, _open, _records
from .test_files_view import WIDE, app_on, decoded, keys, open_files  # noqa: F401

MISSING = b"/tmp/h\x1b]0;M\x07/missing\xff\nx"
SEEDED = b"/tmp/h\x1b]0;M\x07/\xe2\x80\xaeseed"


def hostile(snapshots: list[Snapshot]) -> list[Snapshot]:
    paths = PathTable()
    missing, seeded = paths.add(MISSING), paths.add(SEEDED)
    start = snapshots[0].start_ts_ns
    batch = [_open(start, 40, APP, MISSING, 0, -errno.ENOENT),
             _event(start, 41, APP, READ, 5, 1_000, (9, 0x7FFD0000, 64), b"", seeded)]
    files = MappingProxyType({FileKey(APP, missing): FileStats(open_errors=((errno.ENOENT, 1),)),
                              FileKey(APP, seeded): FileStats(calls=1, reads=1, bytes_read=5)})
    out = [dataclasses.replace(s, paths=paths, files=files, events=_records([]),
                               event_data=()) for s in snapshots]
    out[-1] = dataclasses.replace(out[-1], events=_records(batch),
                                  event_data=tuple(d for _, d in batch))
    return out


async def _drill(pilot, screen: FilesScreen, key: str) -> EventLogScreen:
    screen._table().move_cursor(keys(screen).index((key,)))
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(pilot.app.screen, EventLogScreen))
    log = pilot.app.screen
    assert isinstance(log, EventLogScreen)
    return log


async def test_enter_on_a_hostile_path_lists_its_events(decoded):  # noqa: F811
    async with app_on(hostile(decoded)).run_test(size=WIDE) as pilot:
        screen = await open_files(pilot)
        log = await _drill(pilot, screen, MISSING.decode("utf-8", "backslashreplace"))
        assert log.filter is not None
        assert log.filter.text == r"path=/tmp/h\x1b]0;M\x07/missing\xff\nx"
        await until(pilot, lambda: log._table().row_count == 1)
        await pilot.press("escape")
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(pilot.app.screen, FilesScreen))
        log = await _drill(pilot, screen, SEEDED.decode())
        await until(pilot, lambda: log._table().row_count == 1)  # the read on its fd


async def test_enter_on_a_hostile_directory_lists_its_files_events(decoded):  # noqa: F811
    async with app_on(hostile(decoded)).run_test(size=WIDE) as pilot:
        screen = await open_files(pilot)
        await pilot.press("g")
        await until(pilot, lambda: screen.grouped)
        log = await _drill(pilot, screen, "/tmp/h\x1b]0;M\x07/")
        await until(pilot, lambda: log._table().row_count == 2)  # the failed open, the read


def renamed(snapshots: list[Snapshot], pid: int, comm: str) -> list[Snapshot]:
    def rename(s: Snapshot) -> Snapshot:
        procs = dict(s.processes)
        procs[pid] = dataclasses.replace(procs[pid], comm=comm)
        return dataclasses.replace(s, processes=MappingProxyType(procs))
    return [rename(s) for s in snapshots]


async def test_a_comm_with_control_characters_is_filtered_as_shown(decoded):  # noqa: F811
    """The filter bar holds what the screen shows; the log compares the comm as shown."""
    from .events_fixture import CAT
    from .test_event_log import open_log, type_filter

    async with app_on(renamed(decoded, CAT, "c\x1b]0;x\x07at")).run_test(size=WIDE) as pilot:
        log = await open_log(pilot)
        await type_filter(pilot, log, r"comm=c\x1b]0;x\x07at")
        await until(pilot, lambda: log._table().row_count == 1)
