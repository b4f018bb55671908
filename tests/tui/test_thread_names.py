"""Threads under their own names on a replay source (no root): the live view by thread, the
process tree's running threads apart from every thread seen, the samples per thread, and a
hostile thread name shown as data."""

from __future__ import annotations

import dataclasses

import pytest
from textual.pilot import Pilot

from tracing.model.samples import StackSample
from tracing.model.stats import ExitStatus, ProcessInfo, Snapshot
from tracing.sources import ReplaySource
from tui.app import SikteApp
from tui.samples import SamplesScreen
from tui.table import KeyedTable
from tui.widgets import ProcessTreePanel, thread_label

from .conftest import NOW, until

PID = 19953  # the fixture's python process, with threads 19954..19956
NAMES = {19954: "io-0", 19955: "worker", 19956: "\x1b[31m[b]x"}
SHOWN = {PID: "python", 19954: "io-0", 19955: "worker", 19956: "\\x1b[31m[b]x"}


def named(snapshots: list[Snapshot], alive: bool = False) -> list[Snapshot]:
    """The fixture with its python's threads named (and, `alive`, still running at the end
    with one thread other than the main one)."""
    out = []
    for s in snapshots:
        info = s.processes.get(PID)
        if info is not None:
            info = info.replace(thread_names={t: n for t, n in NAMES.items()
                                              if t in info.threads})
            if alive:
                info = info.replace(exit=None, exit_ts_ns=0, live_threads=frozenset({19954}))
            s = dataclasses.replace(s, processes={**s.processes, PID: info})
        out.append(s)
    return out


def app_on(items: list[Snapshot]) -> SikteApp:
    return SikteApp(source=ReplaySource(items), clock=lambda: NOW)


def table(app: SikteApp) -> KeyedTable:
    return app.screen.query_one(KeyedTable)


async def loaded(pilot: Pilot[int]) -> None:
    await until(pilot, lambda: pilot.app.screen.query_one(KeyedTable).row_count > 0)


def tree_labels(tree: ProcessTreePanel) -> list[str]:
    labels: list[str] = []

    def walk(node) -> None:  # type: ignore[no-untyped-def]
        for child in node.children:
            labels.append(str(child.label))
            walk(child)

    walk(tree.root)
    return labels


async def thread_rows(pilot: Pilot[int], app: SikteApp) -> dict[object, object]:
    """The thread grouping's name of each of PID's threads (grouped by thread first)."""
    for _ in range(2):  # by syscall -> by process -> by thread
        await pilot.press("g")
    await until(pilot, lambda: "tid" in [c.key for c in table(app).columns])
    return {r.values["tid"]: r.values["comm"] for r in table(app).rows
            if r.values["pid"] == PID}


async def test_the_thread_view_shows_each_threads_own_name(snapshots: list[Snapshot]) -> None:
    app = app_on(named(snapshots))
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        assert await thread_rows(pilot, app) == SHOWN


async def test_the_tree_counts_running_threads_and_shows_the_total_apart(
        snapshots: list[Snapshot]) -> None:
    app = app_on(named(snapshots, alive=True))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("t")
        await pilot.pause()
        labels = tree_labels(app.screen.query_one(ProcessTreePanel))
        assert f"{PID} python (2 threads, 4 total)" in labels


def test_thread_labels() -> None:
    p = ProcessInfo(1, comm="x", threads=frozenset(range(2, 622)),
                    live_threads=frozenset({2, 3}), threads_seen=620)
    assert thread_label(p) == "3 threads, 621 total"
    assert thread_label(p.replace(live_threads=frozenset())) == "1 thread, 621 total"
    assert thread_label(p.replace(live_threads=None)) == "621 threads"  # older sessions
    assert thread_label(p.replace(live_threads=p.threads)) == "621 threads"
    assert thread_label(p.replace(exit=ExitStatus(code=0))) == "621 threads"  # ended
    assert thread_label(p.replace(threads_seen=5_000, thread_names_dropped=904)) == (
        "3 threads, 5,001 total, 904 unnamed")
    assert thread_label(ProcessInfo(1)) == ""


def stack(tid: int, count: int) -> StackSample:
    return StackSample(PID, tid, "python", ("main", "burn"), ("/usr/bin/python3",) * 2, 0,
                       count)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
async def test_samples_per_thread_under_each_threads_name(snapshots: list[Snapshot],
                                                          size: tuple[int, int]) -> None:
    items = named(snapshots)
    items[-1] = dataclasses.replace(items[-1], sample_hz=99, samples=(
        stack(PID, 5), stack(19954, 7), stack(19956, 3)))
    app = app_on(items)
    async with app.run_test(size=size) as pilot:
        await loaded(pilot)
        await until(pilot, lambda: app.screen.session.samples.total == 15)  # type: ignore[attr-defined]
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, SamplesScreen))
        screen = app.screen
        assert isinstance(screen, SamplesScreen)
        await pilot.press("g")  # per process: the process's name
        assert {r.values["comm"] for r in table(app).rows} == {"python"}
        await pilot.press("g")  # per thread: each thread's own
        await pilot.pause()
        rows = {(r.values["tid"], r.values["function"]): r.values["comm"]
                for r in table(app).rows}
        assert rows == {(t, f): SHOWN[t].replace("\\x1b", "\x1b")
                        for t in (PID, 19954, 19956) for f in ("main", "burn")}
        assert screen.scope == "thread"
