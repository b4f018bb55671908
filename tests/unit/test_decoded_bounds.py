"""Bounds an unprivileged user cannot push past (issue 15's red team): the path table holds at
most so many bytes of names as well as so many names, and the per-(process, path) accounting
keeps at most so many pairs apart, whatever a fork loop of short processes opens; per-path
totals stay exact past the bound."""

from __future__ import annotations

import errno

from tracing.model.captures import IoTotals
from tracing.model.files import ALL_PROCESSES, FileAccounts, FileKey, merge_files
from tracing.model.paths import MAX_PATH_BYTES, OTHER_ID, PathTable

LONG = 4000  # a path near PATH_MAX, as failed opens of long names give


def test_the_path_table_bounds_the_bytes_of_its_names() -> None:
    table = PathTable(max_bytes=10 * LONG)
    ids = [table.add(b"/%d" % i + b"a" * (LONG - 8)) for i in range(25)]
    assert len(set(ids[:10])) == 10 and OTHER_ID not in ids[:10]
    assert ids[10:] == [OTHER_ID] * 15
    assert table.overflow == 15
    assert table.bytes <= 10 * LONG
    assert len(table) == 12  # unknown, (other), the ten that fit
    # A short name still fits the room left; a name seen before keeps its id.
    assert table.add(b"/x") not in (OTHER_ID, 0)
    assert table.add(b"/0" + b"a" * (LONG - 8)) == ids[0]


def test_the_default_bound_holds_a_flood_of_the_longest_paths() -> None:
    table = PathTable()
    for i in range(MAX_PATH_BYTES // 4095 + 500):
        table.add(b"%08d" % i + b"b" * 4087)
    assert table.bytes <= MAX_PATH_BYTES
    assert table.overflow == 500


def test_pairs_past_the_bound_count_for_all_processes_and_per_path_totals_stay_exact() -> None:
    accounts = FileAccounts(max_files=3)
    for pid in range(100, 110):  # ten short processes, each failing on the same two paths
        accounts.open_failed(FileKey(pid, 7), errno.ENOENT)
        accounts.open_failed(FileKey(pid, 8), errno.EACCES, 2)
    totals = accounts.totals()
    assert len(totals) == 5  # three pairs kept apart, then one per path for the rest
    assert set(totals) == {FileKey(100, 7), FileKey(100, 8), FileKey(101, 7),
                           FileKey(ALL_PROCESSES, 7), FileKey(ALL_PROCESSES, 8)}
    assert totals[FileKey(ALL_PROCESSES, 7)].open_errors == ((errno.ENOENT, 8),)
    assert totals[FileKey(ALL_PROCESSES, 8)].open_errors == ((errno.EACCES, 18),)
    per_path = merge_files(totals)
    assert per_path[7].open_errors == ((errno.ENOENT, 10),)
    assert per_path[8].open_errors == ((errno.EACCES, 20),)
    assert accounts.folded == 17


def test_live_and_closed_totals_past_the_bound_add_up_per_path() -> None:
    accounts = FileAccounts(max_files=1)
    accounts.opened(FileKey(1, 5))
    accounts.closed(FileKey(2, 5), IoTotals(calls=1, writes=1, bytes_written=10))
    accounts.set_live({FileKey(3, 5): IoTotals(calls=2, reads=2, bytes_read=7),
                       FileKey(4, 5): IoTotals(calls=1, reads=1, bytes_read=1)})
    totals = accounts.totals()
    assert set(totals) == {FileKey(1, 5), FileKey(ALL_PROCESSES, 5)}
    folded = totals[FileKey(ALL_PROCESSES, 5)]
    assert (folded.calls, folded.reads, folded.bytes_read, folded.writes,
            folded.bytes_written) == (4, 3, 8, 1, 10)
    # The live totals are replaced each tick, not added, past the bound as below it.
    accounts.set_live({FileKey(3, 5): IoTotals(calls=2, reads=2, bytes_read=7)})
    assert accounts.totals()[FileKey(ALL_PROCESSES, 5)].bytes_read == 7


def test_a_million_pairs_hold_no_more_than_the_bound() -> None:
    accounts = FileAccounts(max_files=1000)
    for pid in range(1000, 1200):
        for path_id in range(2, 1002):
            accounts.open_failed(FileKey(pid, path_id), errno.ENOENT)
    totals = accounts.totals()
    assert len(totals) == 1000 + 1000  # the kept pairs, then one per path
    assert sum(s.open_failures for s in totals.values()) == 200 * 1000
