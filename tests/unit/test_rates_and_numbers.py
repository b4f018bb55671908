"""Honest rates and numbers in the live view (issue 13, item 7 and polish): rates over a
window of snapshots and none once the targets are gone, sub-second elapsed time, each cause
of loss named, grouping by command name, and rows whose only errors are expected codes.

Pure: synthetic snapshots through the RowBuilder, exact expected values."""

from __future__ import annotations

import errno
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np
import pytest

from tracing.model.expected_errors import expected_error_counts
from tracing.model.report import drop_parts
from tracing.model.stats import (
    EVENT_DTYPE,
    Drops,
    ProcessInfo,
    ProcEvent,
    ProcKind,
    Snapshot,
    StatKey,
    SyscallStats,
    TraceState,
    no_events,
)
from tracing.model.units import format_elapsed, format_exact_count, format_id, format_rate
from tracing.query.syscall_filter import ERRORS_ONLY, parse_filter
from tui.columns import GROUPINGS, Grouping, RowKey
from tui.live import comm_term
from tui.rows import RATE_WINDOW_S, RowBuilder

READ, GETPPID, OPENAT, CONNECT = 0, 110, 257, 42  # x86_64
BY = {g.key: g for g in GROUPINGS}
TICK_S = 0.25


def stats(count: int, errors: int = 0) -> SyscallStats:
    return SyscallStats(count, errors, count * 1000, 1000 if count else 0,
                        1000 if count else 0, ((16, count),) if count else ())


def events(*rows: tuple[int, int, int]) -> np.ndarray:
    """Failed events: (pid, nr, errno) each."""
    batch = np.zeros(len(rows), dtype=EVENT_DTYPE)
    for i, (pid, nr, err) in enumerate(rows):
        batch[i]["pid"], batch[i]["tid"], batch[i]["nr"], batch[i]["ret"] = pid, pid, nr, -err
    batch.setflags(write=False)
    return batch


class Trace:
    """Snapshots as the engine makes them: cumulative stats, the interval, TICK_S apart."""

    def __init__(self, comms: Mapping[int, str]) -> None:
        self.seq = 0
        self.totals: dict[StatKey, tuple[int, int]] = {}
        self.processes = {pid: ProcessInfo(pid, comm=c) for pid, c in comms.items()}
        self.epoch = 0

    def tick(self, calls: Mapping[tuple[int, int], tuple[int, int] | int] | None = None,
             state: str = TraceState.TRACING, batch: np.ndarray | None = None,
             proc_events: tuple[ProcEvent, ...] = ()) -> Snapshot:
        """`calls`: (pid, nr) -> calls, or (calls, errors), since the previous tick."""
        self.seq += 1
        interval = {}
        for (pid, nr), n in (calls or {}).items():
            count, errors = n if isinstance(n, tuple) else (n, 0)
            key = StatKey(pid, pid, nr)
            before = self.totals.get(key, (0, 0))
            self.totals[key] = (before[0] + count, before[1] + errors)
            interval[key] = stats(count, errors)
        return Snapshot(
            seq=self.seq, ts_ns=int(self.seq * TICK_S * 1e9), wall_time=0.0, start_ts_ns=0,
            start_wall_time=0.0, arch="x86_64", state=state,
            stats=MappingProxyType({k: stats(*v) for k, v in self.totals.items()}),
            interval=MappingProxyType(interval), interval_s=TICK_S,
            processes=MappingProxyType(dict(self.processes)),
            events=no_events() if batch is None else batch, proc_events=proc_events,
            drops=Drops(), tracer_cpu_s=0.0, epoch=self.epoch)


def row_values(builder: RowBuilder, grouping: Grouping) -> dict[RowKey, Mapping[str, object]]:
    return {r.key: r.values for r in builder.rows(grouping)}


def cells(builder: RowBuilder, grouping: Grouping) -> dict[RowKey, Mapping[str, str]]:
    return {r.key: r.cells for r in builder.rows(grouping)}


# -- rates -----------------------------------------------------------------------------------


def twice_a_second(builder: RowBuilder, trace: Trace, seconds: float) -> None:
    """getppid once every other tick (every 0.5 s): 2 calls a second."""
    for i in range(int(seconds / TICK_S)):
        builder.feed(trace.tick({(1, GETPPID): 1} if i % 2 else {}))


def test_a_call_made_twice_a_second_reads_two_per_second() -> None:
    builder, trace = RowBuilder(), Trace({1: "app"})
    twice_a_second(builder, trace, 4.0)
    assert RATE_WINDOW_S == 3.0
    assert builder.rate_of(BY["syscall"], ("getppid", 0)) == 2.0
    assert builder.rate_of(BY["process"], (1,)) == 2.0
    assert builder.total_rate == 2.0
    assert cells(builder, BY["syscall"])[("getppid", 0)]["rate"] == "2.0"
    # Not one tick's luck: a tick without the call still reads 2.0 (6 calls in 3.0 s)...
    builder.feed(trace.tick({}))
    assert builder.rate_of(BY["syscall"], ("getppid", 0)) == 2.0
    # ... and the one after it, with the call, too.
    builder.feed(trace.tick({(1, GETPPID): 1}))
    assert builder.rate_of(BY["syscall"], ("getppid", 0)) == 2.0


def test_a_rate_counts_only_the_window() -> None:
    builder, trace = RowBuilder(), Trace({1: "app"})
    builder.feed(trace.tick({(1, READ): 100}))  # 100 calls in the first 0.25 s
    assert builder.rate_of(BY["syscall"], ("read", 0)) == 400.0
    for _ in range(11):
        builder.feed(trace.tick({}))
    assert builder.rate_of(BY["syscall"], ("read", 0)) == 100 / 3.0  # still in the last 3 s
    builder.feed(trace.tick({}))
    assert builder.rate_of(BY["syscall"], ("read", 0)) == 0.0  # left the window
    assert cells(builder, BY["syscall"])[("read", 0)]["rate"] == "0"
    assert builder.total_calls == 100


def test_no_rate_once_the_targets_are_gone() -> None:
    builder, trace = RowBuilder(), Trace({1: "app"})
    twice_a_second(builder, trace, 4.0)
    builder.feed(trace.tick({(1, GETPPID): 1}, state=TraceState.EXITED))
    assert builder.rate_of(BY["syscall"], ("getppid", 0)) is None
    assert builder.total_rate is None
    assert cells(builder, BY["syscall"])[("getppid", 0)]["rate"] == "-"
    assert row_values(builder, BY["syscall"])[("getppid", 0)]["rate"] == 0.0  # sorts, filters
    assert builder.total_calls == 9


def test_no_rate_once_stopped_either() -> None:
    builder, trace = RowBuilder(), Trace({1: "app"})
    builder.feed(trace.tick({(1, READ): 5}))
    builder.feed(trace.tick({(1, READ): 5}, state=TraceState.STOPPED))
    assert builder.rate_of(BY["process"], (1,)) is None


def test_a_key_filter_applies_to_the_rates_of_the_window_already_seen() -> None:
    builder, trace = RowBuilder(), Trace({1: "a", 2: "b"})
    for _ in range(4):
        builder.feed(trace.tick({(1, READ): 1, (2, READ): 3}))
    assert builder.rate_of(BY["syscall"], ("read", 0)) == 16.0
    builder.set_filter(parse_filter("pid=2"))
    assert builder.rate_of(BY["syscall"], ("read", 0)) == 12.0
    assert builder.total_rate == 16.0  # the header counts everything


def test_a_reset_starts_the_window_again() -> None:
    builder, trace = RowBuilder(), Trace({1: "a"})
    for _ in range(4):
        builder.feed(trace.tick({(1, READ): 10}))
    trace.epoch, trace.totals = 1, {}
    builder.feed(trace.tick({(1, READ): 1}))
    assert builder.rate_of(BY["syscall"], ("read", 0)) == 4.0


def test_rates_are_formatted_to_be_read() -> None:
    assert [format_rate(r) for r in (0, 0.4, 2.0, 9.96, 812, 12_345)] == [
        "0", "0.4", "2.0", "10.0", "812", "12.3k"]


# -- elapsed time, counts, ids, drops --------------------------------------------------------


@pytest.mark.parametrize(("seconds", "shown"), [
    (0.0, "0.0s"), (0.4, "0.4s"), (12.34, "12.3s"), (59.94, "59.9s"), (59.96, "01:00"),
    (65.9, "01:05"), (3723, "1:02:03"), (-1, "0.0s"),
])
def test_elapsed_time_shows_short_runs_to_the_tenth(seconds: float, shown: str) -> None:
    assert format_elapsed(seconds) == shown


def test_counts_and_ids_in_one_style() -> None:
    assert format_exact_count(11_300) == "11,300"
    assert format_exact_count(5203) == "5,203"
    assert format_exact_count(12_345_678) == "12.3M"
    assert format_id(22028) == "22028"


def test_each_cause_of_loss_is_named_never_added() -> None:
    assert drop_parts(Drops()) == []
    assert drop_parts(Drops(events=1204, stack_collisions=3)) == [
        "1,204 syscall events", "3 sample stacks"]
    assert drop_parts(Drops(stats_full=1, proc_events=2, inflight=3, samples_lost=4,
                            tcp_events=5, stacks_missing=9, events_sent=100)) == [
        "1 syscalls uncounted", "2 process events", "3 syscalls untimed", "4 samples",
        "5 TCP events"]


# -- grouping by command name ----------------------------------------------------------------


def test_processes_of_one_name_make_one_row() -> None:
    builder, trace = RowBuilder(), Trace({10: "make", 11: "make", 12: "make", 20: "sh"})
    builder.feed(trace.tick({(10, READ): 5, (11, READ): 7, (12, OPENAT): 1, (20, READ): 2}))
    builder.feed(trace.tick({(12, READ): 3}))
    rows = row_values(builder, BY["comm"])
    assert sorted(rows) == [("make",), ("sh",)]
    make = rows[("make",)]
    assert (make["count"], make["procs"], make["comm"]) == (16, 3, "make")
    assert (rows[("sh",)]["count"], rows[("sh",)]["procs"]) == (2, 1)
    assert builder.rate_of(BY["comm"], ("make",)) == 16 / 0.5
    # Shown, it grows with each snapshot like the others.
    builder.feed(trace.tick({(13, READ): 4}))  # pid 13: not known yet, shown as "?"
    trace.processes[13] = ProcessInfo(13, comm="make")
    builder.feed(trace.tick({(13, READ): 1},
                            proc_events=(ProcEvent(0, ProcKind.EXEC, 13, 13, 10, -1, False,
                                                   "make", ""),)))
    rows = row_values(builder, BY["comm"])
    assert (rows[("make",)]["count"], rows[("make",)]["procs"]) == (21, 4)
    assert ("?",) not in rows  # counted again under its name once known


def test_a_process_that_execs_counts_under_its_new_name() -> None:
    builder, trace = RowBuilder(), Trace({10: "make", 11: "make"})
    builder.feed(trace.tick({(10, READ): 5, (11, READ): 7}))
    assert row_values(builder, BY["comm"])[("make",)]["count"] == 12
    trace.processes[11] = ProcessInfo(11, comm="cc1")
    builder.feed(trace.tick({(11, READ): 1}, proc_events=(
        ProcEvent(0, ProcKind.EXEC, 11, 11, 10, -1, False, "cc1", "/usr/lib/cc1"),)))
    rows = row_values(builder, BY["comm"])
    assert {k: (v["count"], v["procs"]) for k, v in rows.items()} == {
        ("make",): (5, 1), ("cc1",): (8, 1)}


def test_enter_on_a_command_row_filters_by_its_name() -> None:
    assert comm_term("make") == "comm=make"
    assert comm_term("my prog") == 'comm="my prog"'
    assert comm_term('a"b') == "comm='a\"b'"
    for name in ("make", "my prog", "x=y", 'a"b'):
        flt = parse_filter(comm_term(name))
        assert flt.matches_key(name="read", nr=0, pid=1, tid=1, comm=name)
        assert not flt.matches_key(name="read", nr=0, pid=1, tid=1, comm=name + "x")


# -- expected errors -------------------------------------------------------------------------


def test_expected_codes_are_counted_per_entry() -> None:
    batch = events((1, READ, errno.EAGAIN), (1, READ, errno.EAGAIN), (1, READ, errno.EBADF),
                   (2, CONNECT, errno.EINPROGRESS), (2, READ, errno.EINTR), (2, READ, 512),
                   (3, OPENAT, errno.ENOENT))
    assert expected_error_counts(batch) == {
        StatKey(1, 1, READ): 2, StatKey(2, 2, CONNECT): 1, StatKey(2, 2, READ): 2}
    assert expected_error_counts(no_events()) == {}


def test_rows_whose_only_errors_are_expected_are_marked_and_left_out_by_e() -> None:
    builder, trace = RowBuilder(), Trace({1: "app", 2: "app"})
    builder.feed(trace.tick(
        {(1, READ): (10, 2), (2, CONNECT): (1, 1), (1, OPENAT): (4, 1), (2, GETPPID): 3},
        batch=events((1, READ, errno.EAGAIN), (1, READ, errno.EAGAIN),
                     (2, CONNECT, errno.EINPROGRESS), (1, OPENAT, errno.ENOENT))))
    shown = cells(builder, BY["syscall"])
    assert {k: c["errors"] for k, c in shown.items()} == {
        ("read", 0): "*2", ("connect", 0): "*1", ("openat", 0): "1", ("getppid", 0): "0"}
    values = row_values(builder, BY["syscall"])
    assert {k: (v["errors"], v["unexpected"]) for k, v in values.items()} == {
        ("read", 0): (2, 0), ("connect", 0): (1, 0), ("openat", 0): (1, 1), ("getppid", 0): (0, 0)}
    builder.set_filter(parse_filter(ERRORS_ONLY))
    assert list(row_values(builder, BY["syscall"])) == [("openat", 0)]
    builder.set_filter(parse_filter("errors>0"))  # errors still counts them all, as strace
    assert sorted(row_values(builder, BY["syscall"])) == [
        ("connect", 0), ("openat", 0), ("read", 0)]


def test_errors_not_all_seen_as_events_stay_unexpected() -> None:
    builder, trace = RowBuilder(), Trace({1: "app"})
    # 3 errors, 2 events kept (one dropped, or --events none): not known to be all EAGAIN.
    builder.feed(trace.tick({(1, READ): (10, 3)},
                            batch=events((1, READ, errno.EAGAIN), (1, READ, errno.EAGAIN))))
    row = row_values(builder, BY["syscall"])[("read", 0)]
    assert (row["unexpected"], cells(builder, BY["syscall"])[("read", 0)]["errors"]) == (1, "3")


def test_events_a_tick_before_or_after_their_counts_still_mark_the_row() -> None:
    builder, trace = RowBuilder(), Trace({1: "app", 2: "app"})
    # pid 1: the event comes a tick after the count; pid 2: a tick before it.
    builder.feed(trace.tick({(1, READ): (5, 1)}, batch=events((2, READ, errno.EAGAIN))))
    builder.rows(BY["process"])
    assert cells(builder, BY["process"])[(1,)]["errors"] == "1"
    builder.feed(trace.tick({(2, READ): (1, 1)}, batch=events((1, READ, errno.EAGAIN))))
    shown = cells(builder, BY["process"])
    assert (shown[(1,)]["errors"], shown[(2,)]["errors"]) == ("*1", "*1")
    assert cells(builder, BY["syscall"])[("read", 0)]["errors"] == "*2"  # rebuilt from totals


def test_a_paused_view_counts_the_events_it_skips_once() -> None:
    builder, trace = RowBuilder(), Trace({1: "app"})
    builder.feed(trace.tick({(1, READ): (1, 1)}, batch=events((1, READ, errno.EAGAIN))))
    skipped = trace.tick({(1, READ): (1, 1)}, batch=events((1, READ, errno.EAGAIN)))
    builder.skip(skipped)
    latest = trace.tick({(1, READ): (1, 1)}, batch=events((1, READ, errno.EAGAIN)))
    builder.skip(latest)
    builder.feed(latest)  # unpausing feeds the newest again: its events count once
    row = row_values(builder, BY["syscall"])[("read", 0)]
    assert (row["errors"], row["unexpected"], row["count"]) == (3, 0, 3)
    assert cells(builder, BY["syscall"])[("read", 0)]["errors"] == "*3"
