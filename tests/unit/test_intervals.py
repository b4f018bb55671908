"""`record --interval S` (tracing/model/intervals.py, cli/interval_output.py): each
snapshot's change lands in the slot of its time, empty slots are given too, and the
intervals add up exactly to the final totals."""

from __future__ import annotations

import dataclasses
import gc
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from cli.interval_output import IntervalWriter
from tracing.model.intervals import (
    Interval,
    IntervalSlicer,
    format_interval,
    interval_json,
    iter_json_line,
    parse_interval_s,
)
from tracing.model.json_stream import Rows
from tracing.model.report import summary_json, syscall_rows
from tracing.model.snapshots import SnapshotBuilder
from tracing.model.stats import (
    Drops,
    ProcessInfo,
    Snapshot,
    StatKey,
    SyscallStats,
    TraceState,
    bucket_bounds,
    bucket_of,
    merge_stats,
    no_events,
)

ROOT = Path(__file__).resolve().parents[2]
GETPPID, OPENAT = 110, 257  # x86_64
START = 5_000_000_000  # the trace's start on the monotonic clock
MS = 1_000_000


class Trace:
    """Snapshots as the engine makes them: cumulative totals per key, fed to the builder."""

    def __init__(self) -> None:
        self.builder = SnapshotBuilder(START, 1000.0, "x86_64")
        self.totals: dict[StatKey, SyscallStats] = {}
        self.processes = {10: ProcessInfo(10, comm="phase"), 11: ProcessInfo(11, comm="kid")}

    def tick(self, at_ms: int, calls: dict[StatKey, tuple[int, int, int]]) -> Snapshot:
        """A snapshot at `at_ms` after the start; `calls`: key -> (count, errors, each ns)."""
        changes = {}
        for key, (count, errors, each) in calls.items():
            delta = SyscallStats(count, errors, count * each, each, each,
                                 ((bucket_of(each), count),))
            before = self.totals.get(key)
            self.totals[key] = now = delta if before is None else merge_stats((before, delta))
            changes[key] = now
        return self.builder.build(ts_ns=START + at_ms * MS, wall_time=1000.0 + at_ms / 1e3,
                                  state=TraceState.TRACING, changes=changes,
                                  events=no_events(), proc_events=(),
                                  processes=dict(self.processes), drops=Drops(),
                                  tracer_cpu_s=0.0)


A = StatKey(10, 10, GETPPID)
B = StatKey(10, 10, OPENAT)
C = StatKey(11, 11, GETPPID)


def run(every_s: float, ticks: list[tuple[int, dict[StatKey, tuple[int, int, int]]]]
        ) -> tuple[list[Interval], Snapshot]:
    trace, slicer, out = Trace(), IntervalSlicer(every_s), []
    last = None
    for at_ms, calls in ticks:
        last = trace.tick(at_ms, calls)
        out.extend(slicer.add(last))
    final = slicer.finish()
    assert final is not None and last is not None
    return [*out, final], last


def counts(interval: Interval) -> dict[tuple[str, int], tuple[int, int, int]]:
    return {(r.name, r.stats.count): (r.stats.count, r.stats.errors, r.stats.total_ns)
            for r in syscall_rows(interval.view)}


def test_each_change_goes_to_its_snapshots_slot_and_the_sum_is_the_total() -> None:
    intervals, last = run(1.0, [
        (250, {A: (100, 0, 500)}),
        (999, {A: (20, 0, 500), B: (3, 3, 2000)}),  # still in [0, 1)
        (1000, {B: (5, 1, 2000)}),  # a boundary belongs to the slot it starts
        (3250, {A: (7, 0, 800), C: (4, 0, 900)}),  # slots [1, 2), [2, 3) end with no calls
        (3400, {}),
    ])
    assert [(i.number, i.start_ns, i.end_ns) for i in intervals] == [
        (1, 0, 1000 * MS), (2, 1000 * MS, 2000 * MS), (3, 2000 * MS, 3000 * MS),
        (4, 3000 * MS, 3400 * MS)]  # the last one ends with the last snapshot
    first, second, third, fourth = intervals
    assert counts(first) == {("getppid", 120): (120, 0, 60_000), ("openat", 3): (3, 3, 6000)}
    assert counts(second) == {("openat", 5): (5, 1, 10_000)}
    assert counts(third) == {} and third.processes == ()
    assert [i.snapshots for i in intervals] == [2, 1, 0, 2]
    assert counts(fourth) == {("getppid", 11): (11, 0, 7 * 800 + 4 * 900)}
    assert [(p.pid, p.comm, p.count, p.errors) for p in first.processes] == [
        (10, "phase", 123, 3)]
    assert [(p.pid, p.comm, p.count) for p in fourth.processes] == [(10, "phase", 7),
                                                                     (11, "kid", 4)]
    # Exact per syscall: count, errors and total time add up to the final summary's.
    summed: dict[str, list[int]] = {}
    for interval in intervals:
        for row in syscall_rows(interval.view):
            s = summed.setdefault(row.name, [0, 0, 0])
            s[0] += row.stats.count
            s[1] += row.stats.errors
            s[2] += row.stats.total_ns
    assert summed == {r.name: [r.stats.count, r.stats.errors, r.stats.total_ns]
                      for r in syscall_rows(last)}


def test_an_interval_read_without_calls_says_so() -> None:
    intervals, _ = run(0.5, [(250, {A: (1, 0, 100)}), (600, {}), (1100, {A: (1, 0, 100)})])
    assert [(i.snapshots, len(i.processes)) for i in intervals] == [(1, 1), (1, 0), (1, 1)]
    assert format_interval(intervals[1]) == "interval 2: 0.500 s to 1.000 s: no calls"
    assert interval_json(intervals[1])["syscalls"] == []


def test_slots_before_the_first_snapshot_are_given_empty() -> None:
    intervals, _ = run(0.1, [(250, {A: (1, 0, 100)}), (260, {A: (2, 0, 100)})])
    assert [(i.number, sum(p.count for p in i.processes)) for i in intervals] == [
        (1, 0), (2, 0), (3, 3)]
    assert intervals[-1].start_ns == 200 * MS and intervals[-1].end_ns == 260 * MS


def test_a_percentile_comes_from_the_intervals_own_calls() -> None:
    intervals, last = run(1.0, [(500, {A: (99, 0, 1000)}), (1500, {A: (1, 0, 5 * MS)})])
    assert syscall_rows(intervals[1].view)[0].stats.quantile(0.5) >= 4 * MS
    assert syscall_rows(last)[0].stats.quantile(0.5) < 2000  # the whole trace's is fast


def test_no_snapshot_no_interval() -> None:
    assert IntervalSlicer(1.0).finish() is None


def test_the_json_rows_are_the_summarys_and_the_document_is_as_documented() -> None:
    intervals, last = run(1.0, [(250, {A: (4, 0, 500), B: (2, 2, 700)})])
    doc = interval_json(intervals[0])
    assert list(doc) == ["interval", "start_s", "end_s", "syscalls", "processes", "snapshots"]
    assert doc["interval"] == 1 and doc["start_s"] == 0.0 and doc["end_s"] == 0.25
    summary = summary_json(last, {})
    rows, whole = doc["syscalls"], summary["syscalls"]
    assert isinstance(rows, list) and isinstance(whole, list)
    assert [list(r) for r in rows] == [list(r) for r in whole]  # shaped alike
    exact = ("syscall", "abi", "nr", "count", "errors", "total_ns", "avg_ns", "max_ns")
    assert [[r[k] for k in exact] for r in rows] == [[r[k] for k in exact] for r in whole]
    # Percentiles from the interval's histogram (the kernel's minimum is since the start).
    for row, each in zip(rows, (500, 700), strict=True):
        low, high = bucket_bounds(bucket_of(each))
        assert low <= row["p50_ns"] == row["p99_ns"] < high
    assert doc["processes"] == [{"pid": 10, "comm": "phase", "count": 6, "errors": 2}]
    assert json.loads(json.dumps(doc)) == doc


def test_the_text_has_a_heading_a_table_and_says_when_there_were_no_calls() -> None:
    intervals, _ = run(0.5, [(250, {A: (4, 0, 500)}), (1250, {C: (2, 1, 500)})])
    text = format_interval(intervals[0])
    lines = text.splitlines()
    assert lines[0] == "interval 1: 0.000 s to 0.500 s"
    assert lines[1].split()[:3] == ["%", "time", "calls"]
    assert lines[3].split()[1] == "4" and lines[3].split()[-1] == "getppid"
    assert format_interval(intervals[1]) == ("interval 2: 0.500 s to 1.000 s: not read (no "
                                             "snapshot fell in it: its calls are in a later one)")
    per_process = format_interval(intervals[2], per_process=True)
    assert "pid 11 (kid)\n" in per_process and "pid 10" not in per_process


def test_a_hostile_name_is_shown_escaped() -> None:
    trace = Trace()
    trace.processes[10] = ProcessInfo(10, comm="x\x1b]0;PWN\x07")
    slicer = IntervalSlicer(1.0)
    slicer.add(trace.tick(100, {A: (1, 0, 10)}))
    final = slicer.finish()
    assert final is not None
    text = format_interval(final, per_process=True)
    assert "\x1b" not in text and "\x07" not in text
    assert json.loads(json.dumps(interval_json(final)))["processes"][0]["comm"] == \
        "x\x1b]0;PWN\x07"  # JSON escapes it


@pytest.mark.parametrize("text", ["0", "-1", "nan", "inf", "-inf", "x", "", "0.05"])
def test_a_bad_interval_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="--interval takes"):
        parse_interval_s(text)


def test_a_good_interval_is_taken() -> None:
    assert parse_interval_s("0.5") == 0.5 and parse_interval_s("1e3") == 1000.0


@pytest.mark.parametrize("text", ["0", "-2", "nan", "inf"])
def test_record_with_a_bad_interval_is_one_line_exit_2(text: str) -> None:
    result = subprocess.run([sys.executable, "-m", "cli.main", "record", "--interval", text,
                             "--", "/bin/true"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("sikte-tui: --interval takes a positive number of seconds")


def test_a_json_line_is_json_dumps_with_rows_made_on_demand() -> None:
    doc = {"a": [1, {"b": "c\n"}], "rows": Rows(lambda: iter([{"x": 1}, {"y": [2]}])),
           "empty": Rows(lambda: iter([])), "s": "é\x1b"}
    text = "".join(iter_json_line(doc))
    assert "\n" not in text
    assert text == json.dumps({**doc, "rows": [{"x": 1}, {"y": [2]}], "empty": []})


def test_the_writer_flushes_each_interval_as_one_line() -> None:
    class Out(io.StringIO):
        flushes: list[str] = []

        def flush(self) -> None:
            self.flushes.append(self.getvalue())

    trace, out = Trace(), Out()
    writer = IntervalWriter(1.0, as_json=True, out=out)
    for at_ms, calls in [(250, {A: (3, 0, 100)}), (1250, {A: (4, 0, 100)}),
                         (1500, {B: (1, 1, 100)})]:
        writer.put(trace.tick(at_ms, calls))
    assert writer.close() is None
    lines = out.getvalue().splitlines()
    assert [json.loads(line)["interval"] for line in lines] == [1, 2]
    assert out.flushes == ["".join(f"{line}\n" for line in lines[:n]) for n in (1, 2)]
    assert [r["count"] for r in json.loads(lines[1])["syscalls"]] == [4, 1]
    assert writer.written == 2


def test_a_stdout_that_fails_stops_the_writing_not_the_adding() -> None:
    class Broken(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    trace = Trace()
    writer = IntervalWriter(0.5, as_json=False, out=Broken())
    writer.put(trace.tick(100, {A: (1, 0, 100)}))
    writer.put(trace.tick(900, {A: (1, 0, 100)}))
    error = writer.close()
    assert isinstance(error, BrokenPipeError) and writer.written == 0


def test_a_trace_that_failed_gives_no_last_interval() -> None:
    out = io.StringIO()
    writer = IntervalWriter(1.0, as_json=True, out=out)
    writer.put(Trace().tick(100, {A: (1, 0, 100)}))
    assert writer.close(last=False) is None and out.getvalue() == ""


def test_a_stdout_that_takes_nothing_does_not_keep_the_snapshots_whole() -> None:
    """While stdout blocks (`| less` left on its first page), the queue holds what the
    intervals read, not each snapshot's events (nor its totals, samples, connections): they
    go once the tracer drops them, and the intervals still come out exact."""
    import threading
    import weakref

    import numpy as np

    from tracing.model.stats import EVENT_DTYPE

    release = threading.Event()

    class Stuck(io.StringIO):
        def write(self, text: str) -> int:
            release.wait(30)
            return super().write(text)

    trace, out = Trace(), Stuck()
    writer = IntervalWriter(1.0, as_json=True, out=out)
    refs = []
    for at_ms in (250, 1250, 2250, 3250):
        snapshot = trace.tick(at_ms, {A: (2, 1, 100)})
        events = np.zeros(10_000, dtype=EVENT_DTYPE)
        snapshot = dataclasses.replace(snapshot, events=events)
        refs.append(weakref.ref(events))
        writer.put(snapshot)
        del snapshot, events
    gc.collect()
    assert [ref() is None for ref in refs] == [True] * 4
    release.set()
    assert writer.close() is None
    docs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(d["interval"], [(r["count"], r["errors"]) for r in d["syscalls"]])
            for d in docs] == [(n, [(2, 1)]) for n in (1, 2, 3, 4)]
