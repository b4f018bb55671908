"""The Files view with 200,000 paths: the table holds the first MAX_ROWS rows of the sort and
the title says how many there are; an update recomputes the summaries of the paths (and
directories) whose entries changed, not all of them; the keys still move the cursor. The
incremental summaries agree with the ones computed whole (tui/file_rows.py)."""

from __future__ import annotations

import dataclasses

import pytest
from textual.pilot import Pilot

from tracing.model.files import FileKey, FileStats
from tracing.model.paths import PathTable
from tracing.model.persistent_map import PersistentMap
from tracing.model.stats import Snapshot
from tui import file_index
from tui.file_index import FileIndex, Ranking
from tui.file_rows import by_directory, path_summaries, sorted_summaries
from tui.files import MAX_ROWS, FilesScreen
from tui.live import LiveScreen
from tui.messages import SnapshotReady

from .conftest import until
from .test_files_view import WIDE, app_on, cells, decoded, keys, open_files, plain  # noqa: F401

PATHS = 200_000
DIRECTORIES = 100


def flood(n: int = PATHS) -> tuple[PathTable, PersistentMap[FileKey, FileStats]]:
    """n paths in DIRECTORIES directories, one process each; path i spent i ns in I/O."""
    table = PathTable(max_paths=n + 10)
    files = {FileKey(1000 + i % 7, table.add(b"/flood/d%d/f%d" % (i % DIRECTORIES, i))):
             FileStats(opens=1, calls=1, reads=1, bytes_read=i, io_ns=i) for i in range(n)}
    return table, PersistentMap(files)


@pytest.fixture  # each test's own: versions made from one map by two tests would branch
def flooded() -> tuple[PathTable, PersistentMap[FileKey, FileStats]]:
    return flood()


def key_of(table: PathTable, i: int) -> FileKey:
    path_id = table.id_of(b"/flood/d%d/f%d" % (i % DIRECTORIES, i))
    assert path_id is not None
    return FileKey(1000 + i % 7, path_id)


async def test_a_flood_of_paths_shows_the_top_rows_and_updates_what_changed(
        decoded, flooded):  # noqa: F811
    table, files = flooded
    items = [dataclasses.replace(s, paths=table, files=files) for s in decoded]
    async with app_on(items).run_test(size=WIDE) as pilot:
        screen = await open_files(pilot)
        assert screen._table().row_count == MAX_ROWS
        assert keys(screen)[:2] == [("/flood/d99/f199999",), ("/flood/d98/f199998",)]
        assert plain(screen, "#files-title") == (
            "Files: showing 2,000 of 200,000 paths; g to group by directory · "
            "sort I/O time ▼")

        # Three entries change (two paths of d5, one of d7) and one is new (in d7).
        new_id = table.add(b"/flood/d7/new")
        changes = {key_of(table, 5): FileStats(opens=2, io_ns=10**9),
                   key_of(table, 105): FileStats(opens=1, io_ns=105, writes=1),
                   key_of(table, 7): FileStats(opens=1, io_ns=8),
                   FileKey(4242, new_id): FileStats(opens=1, io_ns=10**8)}
        await send(pilot, screen, items[-1], files.updated(changes))
        assert screen._index.recomputed == 4 + 2  # the paths, and their two directories
        assert keys(screen)[:3] == [("/flood/d5/f5",), ("/flood/d7/new",),
                                    ("/flood/d99/f199999",)]
        assert cells(screen)[("/flood/d5/f5",)]["opens"] == "2"
        assert plain(screen, "#files-title").startswith("Files: showing 2,000 of 200,001 ")

        # Keys are answered: the cursor moves, the line under the table follows.
        assert screen._table().cursor == 2  # it followed its row, two new ones above it
        await pilot.press("up")
        await until(pilot, lambda: screen._table().cursor == 1)
        assert plain(screen, "#file-selected").startswith("path /flood/d7/new · 1 process")


async def send(pilot: Pilot, screen: FilesScreen, last: Snapshot,
               files: PersistentMap[FileKey, FileStats]) -> None:
    live = pilot.app.screen_stack[1]
    assert isinstance(live, LiveScreen)
    seq = last.seq + 1
    live.post_message(SnapshotReady(dataclasses.replace(last, seq=seq, files=files)))
    await until(pilot, lambda: screen._drawn is not None and screen._drawn[0] == seq,
                seen=lambda: (screen._drawn, screen.session.latest and screen.session.latest.seq,
                              live._pending))


async def test_grouped_a_flood_shows_every_directory(decoded, flooded):  # noqa: F811
    table, files = flooded
    items = [dataclasses.replace(s, paths=table, files=files) for s in decoded]
    async with app_on(items).run_test(size=(80, 24)) as pilot:
        screen = await open_files(pilot)
        await pilot.press("g")
        await until(pilot, lambda: screen._table().row_count == DIRECTORIES)
        assert keys(screen)[0] == ("/flood/d99/",)
        assert cells(screen)[("/flood/d99/",)]["opens"] == "2000"
        assert plain(screen, "#files-title") == (
            "Files: 200,000 paths · by directory (100) · sort I/O time ▼")
        await send(pilot, screen, items[-1], files.updated(
            {key_of(table, 3): FileStats(opens=1, io_ns=10**12)}))
        assert screen._index.recomputed == 2
        assert keys(screen)[0] == ("/flood/d3/",)


# -- the index against the whole computation -----------------------------------------------

def small_flood(n: int) -> tuple[PathTable, dict[FileKey, FileStats]]:
    table = PathTable()
    files = {}
    for i in range(n):
        path_id = table.add(b"/s/d%d/f%d" % (i % 3, i % 11))
        files[FileKey(100 + i % 5, path_id)] = FileStats(
            opens=i % 4, open_errors=((2, i % 3),) if i % 3 else (), calls=i, reads=i % 5,
            bytes_read=7 * i, writes=i % 2, bytes_written=3 * i, io_ns=i % 6)
    return table, files


@pytest.mark.parametrize("move_at_most", [64, 0])  # names moved one by one, or merged
@pytest.mark.parametrize("grouped", [False, True])
@pytest.mark.parametrize(("sort", "reverse"), [
    ("io_ns", True), ("io_ns", False), ("path", False), ("path", True), ("failed", True),
    ("procs", True),
])
def test_the_index_and_its_order_agree_with_the_whole_computation(
        sort: str, reverse: bool, grouped: bool, move_at_most: int,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(file_index, "MOVE_AT_MOST", move_at_most)
    table, start = small_flood(40)
    current = PersistentMap(start)
    index = FileIndex()
    index.update(current, table)
    ranking = Ranking(index.level(grouped), sort, reverse)
    for step in range(1, 6):
        _, more = small_flood(40 + 9 * step)
        changes = {k: dataclasses.replace(v, io_ns=v.io_ns + step * (k.path_id % 3))
                   for k, v in list(more.items())[::3]}
        current = current.updated(changes)
        index.update(current, table)
        ranking.sync()
        whole = path_summaries(current, table)
        whole = by_directory(whole) if grouped else whole
        assert ranking.top(1000) == sorted_summaries(whole, sort, reverse)
        assert ranking.top(3) == sorted_summaries(whole, sort, reverse)[:3]


def test_another_mapping_is_read_whole_and_the_same_one_costs_nothing() -> None:
    table, files = small_flood(30)
    index = FileIndex()
    index.update(files, table)
    assert index.recomputed == len(index.paths) + len(index.directories)
    index.update(files, table)
    assert index.recomputed == 0
    fewer = dict(list(files.items())[:5])
    index.update(fewer, table)  # not a PersistentMap: read whole, the others gone
    assert [index.paths.summary(n) for n in index.paths.sums] == path_summaries(fewer, table)
