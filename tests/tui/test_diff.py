"""The diff TUI (tui/diff.py, tui/diff_histogram.py) on a Diff made by hand
(tests/tui/diff_fixture.py): the numbers shown are exactly the fixture's, at 160 and at 80
columns; Tab, sorting, the filter, Enter's overlaid histograms, help and quit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest
from textual.pilot import Pilot

from tracing.model.diff import DiffRow
from tui.diff import MAX_ROWS, DiffScreen
from tui.diff_app import DiffApp, DiffHelp
from tui.diff_histogram import Bucket, DiffHistogramScreen, overlaid
from tui.diff_rows import describe_row, fit_diff_columns, format_change, share, table_rows

from .conftest import until
from .diff_fixture import SYSCALLS, hist, make_diff, row
from .test_hostile_text import screen_text

WIDE = (160, 48)
NARROW = (80, 24)


def diff_screen(pilot: Pilot) -> DiffScreen:
    screen = pilot.app.screen
    assert isinstance(screen, DiffScreen)
    return screen


def keys(pilot: Pilot) -> list[str]:
    table = diff_screen(pilot)._table()
    return [str(r.key[0]) for r in table.rows]


def cells(pilot: Pilot, key: str) -> dict[str, str]:
    table = diff_screen(pilot)._table()
    found = next(r for r in table.rows if r.key == (key,))
    return {c.key: found.cells[c.key] for c in table.shown_columns}


async def shown(pilot: Pilot) -> None:
    await until(pilot, lambda: isinstance(pilot.app.screen, DiffScreen)
                and diff_screen(pilot)._table().row_count > 0)
    await pilot.pause()


async def run(app: DiffApp, size: tuple[int, int],
              test: Callable[[Pilot], Awaitable[None]]) -> None:
    async with app.run_test(size=size) as pilot:
        await shown(pilot)
        await test(pilot)


# -- pure: the cells ------------------------------------------------------------------------


@pytest.mark.parametrize(("metric", "a", "b", "expected"), [
    ("count", 1000, 1500, "+500 +50%"),
    ("count", 10, 25, "+15 +150%"),
    ("count", 12, 0, "-12 -100%"),
    ("count", 0, 3, "+3"),
    ("count", 200, 200, "0"),
    ("count", 2, 30, "+28 ×15"),
    ("count", 100_000, 350_000, "+250k +250%"),
    ("total_ns", 143_360, 532_480, "+389µs +271%"),
    ("calls_per_s", 100.0, 120.0, "+20 +20%"),
    ("bytes_read", 40960, 49152, "+8.0K +20%"),
])
def test_a_change_is_signed_with_its_share_of_a(metric, a, b, expected):
    assert format_change(metric, a, b) == expected


def test_a_share_of_ten_times_or_more_is_a_ratio():
    assert share(2, 30) == "×15"
    assert share(1, 9.99) == "+899%"
    assert share(1, 5000) == "×5000"
    assert share(1, 52_000) == "×52k"


def test_the_histograms_overlay_on_the_same_buckets():
    a = hist((30, 4096), (10, 2048))
    b = hist((30, 4096), (25, 16384))
    assert overlaid(a, b) == [Bucket(2048, 4096, 10, 0), Bucket(4096, 8192, 30, 30),
                              Bucket(8192, 16384, 0, 0), Bucket(16384, 32768, 0, 25)]
    assert overlaid((), ()) == []


def test_narrow_columns_keep_the_changes_of_the_most_wanted_metrics():
    table = make_diff().table("syscalls")
    narrow = fit_diff_columns(table, table.rows, 78)
    assert [c.key for c in narrow.columns] == [
        "key", "only", "count:d", "errors:d", "total_ns:d", "p99_ns:d"]
    wide = fit_diff_columns(table, table.rows, 158)
    assert wide.full == ("total_ns", "count", "errors")
    assert [c.key for c in wide.columns][:5] == ["key", "only", "count:a", "count:b",
                                                 "count:d"]


# -- the screen ------------------------------------------------------------------------------


async def test_the_syscalls_table_shows_exactly_a_b_and_the_change():
    async def check(pilot: Pilot) -> None:
        # the largest change in total time first: connect (only in B) 2.16 ms
        assert keys(pilot) == ["connect", "openat", "getppid", "mmap", "read"]
        assert cells(pilot, "getppid") == {
            "key": "getppid", "only": "", "count:a": "1,000", "count:b": "1,500",
            "count:d": "+500 +50%", "errors:a": "0", "errors:b": "0", "errors:d": "0",
            "total_ns:a": "512µs", "total_ns:b": "768µs", "total_ns:d": "+256µs +50%",
            "p50_ns:d": "0", "p99_ns:d": "0"}
        openat = cells(pilot, "openat")
        assert (openat["count:a"], openat["count:b"], openat["count:d"]) == \
            ("40", "55", "+15 +38%")
        assert (openat["errors:a"], openat["errors:b"], openat["errors:d"]) == \
            ("10", "25", "+15 +150%")
        connect, mmap = cells(pilot, "connect"), cells(pilot, "mmap")
        assert (connect["only"], connect["count:a"], connect["count:b"],
                connect["count:d"]) == ("B", "-", "3", "+3")
        assert (mmap["only"], mmap["count:a"], mmap["count:b"], mmap["count:d"]) == \
            ("A", "12", "-", "-12 -100%")
        text = screen_text(pilot.app)
        assert "A run-a · 10.0s · devbox 6.1.0-18 x86_64" in text
        assert "B run-b · 12.5s · devbox 6.1.0-18 x86_64" in text
        assert "sort |Δ total| ▼" in text
        # the selected row, whole: every metric, rates per second of each run
        assert ("connect (only in B): calls - → 3 (+3) · calls/s - → 0.2 (+0.2) · errors - "
                "→ 1 (+1)") in text
        await pilot.press("down")
        await until(pilot, lambda: "openat: calls 40 → 55 (+15 +38%) · calls/s 4.0 → 4.4 "
                    "(+0.4 +10%) · errors 10 → 25 (+15 +150%)" in screen_text(pilot.app))

    await run(DiffApp(make_diff()), WIDE, check)


async def test_at_80_columns_the_changes_show_and_the_line_under_has_the_rest():
    async def check(pilot: Pilot) -> None:
        assert [c.key for c in diff_screen(pilot)._table().shown_columns] == [
            "key", "only", "count:d", "errors:d", "total_ns:d", "p99_ns:d"]
        text = screen_text(pilot.app)
        assert "openat               +15 +38%   +15 +150%   +389µs +271%  +13.1µs +300%" \
            in text
        assert "getppid             +500 +50%           0    +256µs +50%              0" \
            in text
        assert "⚠ different machines: A devbox 6.1.0-18 x86_64, B buildhost" in text

    await run(DiffApp(make_diff(other_machine=True)), NARROW, check)


async def test_tab_goes_through_the_tables():
    async def check(pilot: Pilot) -> None:
        screen = diff_screen(pilot)
        await pilot.press("tab")
        await until(pilot, lambda: keys(pilot) == ["python3", "bash"])
        python3 = cells(pilot, "python3")
        assert (python3["count:a"], python3["count:b"], python3["count:d"]) == \
            ("1,040", "1,555", "+515 +50%")
        assert (python3["errors:a"], python3["errors:b"]) == ("10", "25")
        assert cells(pilot, "bash")["only"] == "A"
        await pilot.press("tab")
        await until(pilot, lambda: screen.table.name == "files")
        passwd = cells(pilot, "/etc/passwd")
        assert (passwd["opens:d"], passwd["failed_opens:d"], passwd["io_ns:d"]) == \
            ("+2 +20%", "+2", "+60µs +30%")
        await pilot.press("enter")  # files keep no latency histograms: said, nothing pushed
        await pilot.pause()
        assert isinstance(pilot.app.screen, DiffScreen)
        await pilot.press("tab")
        await until(pilot, lambda: keys(pilot) == ["10.0.0.7:443 out"])
        assert cells(pilot, "10.0.0.7:443 out")["connections:d"] == "+3"
        await pilot.press("tab")
        await until(pilot, lambda: screen.table.name == "syscalls")
        await pilot.press("shift+tab", "shift+tab")
        await until(pilot, lambda: screen.table.name == "files")
        await pilot.press("tab")
        await until(pilot, lambda: screen.table.name == "endpoints")

    await run(DiffApp(make_diff()), WIDE, check)


async def test_sort_keys_and_the_filter():
    async def check(pilot: Pilot) -> None:
        screen = diff_screen(pilot)
        await pilot.press("i")  # the smallest change first; ties by name
        await until(pilot, lambda: keys(pilot) == ["read", "mmap", "getppid", "openat",
                                                    "connect"])
        await pilot.press("<")  # the column before Δ total: total B
        await until(pilot, lambda: screen.sort_column == "total_ns:b")
        assert keys(pilot) == ["connect", "read", "getppid", "openat", "mmap"]
        await pilot.press("slash", *"OPEN")
        await until(pilot, lambda: keys(pilot) == ["openat"])
        assert "by syscall 1 of 5" in screen_text(pilot.app)
        await pilot.press("enter", "escape")
        await until(pilot, lambda: len(keys(pilot)) == 5)
        assert screen.filter_text == ""
        await pilot.press("slash", *"nothing")
        await until(pilot, lambda: "no row matches the filter" in screen_text(pilot.app))

    await run(DiffApp(make_diff()), WIDE, check)


async def test_enter_overlays_both_histograms_with_counts_then_shares():
    async def check(pilot: Pilot) -> None:
        await pilot.press("down", "enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, DiffHistogramScreen))
        await pilot.pause()
        text = screen_text(pilot.app)
        assert "openat · syscall latency, A and B · calls" in text
        assert "A  calls 40 · p50 4.35µs · p95 4.35µs · p99 4.35µs" in text
        assert "B  calls 55 · p50 4.35µs · p95 17.4µs · p99 17.4µs" in text
        bars = [ln.replace("█", "").replace("▌", "").split() for ln in text.splitlines()
                if "█" in ln or ln.split()[-1:] == ["0"]]
        assert bars[:8] == [
            ["2.05µs–4.1µs", "A", "10"], ["B", "0"],
            ["4.1µs–8.19µs", "A", "30", "p50", "p95", "p99"], ["B", "30", "p50"],
            ["8.19µs–16.4µs", "A", "0"], ["B", "0"],
            ["16.4µs–32.8µs", "A", "0"], ["B", "25", "p95", "p99"]]
        await pilot.press("s")
        await until(pilot, lambda: "45.5%" in screen_text(pilot.app))  # 25 of B's 55
        assert "25.0%" in screen_text(pilot.app)  # 10 of A's 40
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(pilot.app.screen, DiffHelp))
        await pilot.pause()
        assert "Keys of latency histograms of A and B" in screen_text(pilot.app)
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(pilot.app.screen, DiffHistogramScreen))
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(pilot.app.screen, DiffScreen))

    await run(DiffApp(make_diff()), WIDE, check)


async def test_help_lists_the_diff_keys_and_q_quits_with_0():
    app = DiffApp(make_diff())

    async def check(pilot: Pilot) -> None:
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(pilot.app.screen, DiffHelp))
        await pilot.pause()
        text = screen_text(pilot.app)
        assert "Keys of the difference of two runs" in text
        assert "The next table: by syscall" in text
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(pilot.app.screen, DiffScreen))
        await pilot.press("q")

    await run(app, NARROW, check)
    assert app.return_value == 0


async def test_names_from_the_session_files_are_shown_as_data():
    hostile = "[b]x\x1b]0;PWNED\x07"
    rows = (*SYSCALLS, row(hostile, (hist((5, 100)), 0), (hist((9, 100)), 0)))
    diff = make_diff(syscalls=rows)
    diff = replace(diff, a=replace(diff.a, label=f"run {hostile}", path=f"/tmp/{hostile}"),
                   notes=(f"note {hostile}",))
    app = DiffApp(diff)

    async def check(pilot: Pilot) -> None:
        screen = diff_screen(pilot)
        screen._table().move_cursor(keys(pilot).index(hostile))
        shown = "[b]x\\x1b]0;PWNED\\x07"
        # the label, the note, the row and the line under it (the path's folder: /tmp)
        await until(pilot, lambda: screen_text(pilot.app).count(shown) == 4,
                    seen=lambda: screen_text(pilot.app))
        text = screen_text(pilot.app)
        assert "\x1b" not in text and "\x07" not in text
        assert f"{shown}: calls 5 → 9 (+4 +80%)" in text

    await run(app, WIDE, check)


def test_a_long_key_keeps_its_end_in_the_table_and_is_whole_in_the_line_under():
    path = "/usr/lib/python3.11/ctypes/__pycache__/_endian.cpython-311.pyc"
    files = make_diff().table("files")
    long_row = DiffRow(path, None, {"opens": 1, "io_ns": 17_500})
    columns = fit_diff_columns(files, [long_row], 78).columns
    assert columns[0].width == 24
    assert table_rows([long_row], columns)[0].cells["key"] == "/usr/lib/py…thon-311.pyc"
    assert describe_row(files, long_row).startswith(f"{path} (only in B): opens - → 1 (+1)")


async def test_a_table_of_many_rows_shows_the_first_ones_and_the_filter_finds_the_rest():
    many = tuple(DiffRow(f"/data/f{i:05d}", {"opens": 1, "io_ns": 1000 + i},
                         {"opens": 2, "io_ns": 1000}) for i in range(MAX_ROWS + 500))
    base = make_diff()
    files = replace(base.table("files"), rows=many)
    diff = replace(base, tables=(base.table("syscalls"), files))

    async def check(pilot: Pilot) -> None:
        screen = diff_screen(pilot)
        await pilot.press("tab")
        await until(pilot, lambda: screen.table.name == "files")
        # the largest change in I/O time first: f02499's -2,499 ns
        assert keys(pilot)[:2] == ["/data/f02499", "/data/f02498"]
        assert len(keys(pilot)) == MAX_ROWS
        assert "showing the first 2,000: / filters" in screen_text(pilot.app)
        await pilot.press("slash", *"F0001")
        await until(pilot, lambda: len(keys(pilot)) == 10)
        assert keys(pilot)[0] == "/data/f00019"
        assert "by file 10 of 2,500" in screen_text(pilot.app)

    await run(DiffApp(diff), WIDE, check)


async def test_a_table_empty_in_both_runs_says_so():
    base = make_diff()
    diff = replace(base, tables=(base.table("syscalls"), replace(base.table("files"), rows=())))

    async def check(pilot: Pilot) -> None:
        await pilot.press("tab")
        await until(pilot, lambda: "no files in either run" in screen_text(pilot.app))
        assert not diff_screen(pilot)._table().display
        await pilot.press("enter")  # nothing selected: nothing happens
        await pilot.pause()
        assert isinstance(pilot.app.screen, DiffScreen)

    await run(DiffApp(diff), NARROW, check)
