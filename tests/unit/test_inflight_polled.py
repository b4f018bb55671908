"""Calls in flight with --timing off (no in-flight slots): ProcInFlightReader on a fake /proc
(each thread's call number and context switch count) and a fake clock, the watch choosing it
when the tracer passes no map, and how a polled read is printed, saved and read back."""

from __future__ import annotations

import json
import types

import pytest

from tracing.engine.inflight import (
    X32_BIT,
    InFlightWatch,
    ProcInFlightReader,
    context_switches,
)
from tracing.model.inflight import (
    POLLED_NOTE,
    InFlight,
    InFlightRead,
    format_inflight,
    inflight_from_meta,
    inflight_json,
    inflight_meta,
)
from tracing.model.stats import ProcessInfo

S = 1_000_000_000


class FakeProc:
    """/proc as the reader sees it: tid -> (call number or None, switch count or None)."""

    def __init__(self) -> None:
        self.threads: dict[int, tuple[int | None, int | None]] = {}
        self.asked: list[tuple[str, int, int]] = []

    def syscall_of(self, pid: int, tid: int) -> int | None:
        self.asked.append(("syscall", pid, tid))
        return self.threads.get(tid, (None, None))[0]

    def switches_of(self, pid: int, tid: int) -> int | None:
        self.asked.append(("switches", pid, tid))
        return self.threads.get(tid, (None, None))[1]


class Clock:
    """Each call returns the next tick: 1 ns apart, from `now` (moved by the test)."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        self.now += 1
        return self.now


def reader(proc: FakeProc, clock: Clock, max_threads: int = 100) -> ProcInFlightReader:
    return ProcInFlightReader(max_threads, proc.syscall_of, proc.switches_of, clock)


def calls(read: InFlightRead) -> list[tuple[int, int, int, int, int]]:
    assert all(c.seen and not c.before_trace for c in read.calls)
    return [(c.pid, c.tid, c.nr, c.abi, c.start_ns) for c in read.calls]


def test_a_call_keeps_its_first_sighting_while_the_thread_stays_in_it() -> None:
    proc, clock = FakeProc(), Clock()
    r = reader(proc, clock)
    threads = [(10, 10), (10, 11), (10, 12)]
    proc.threads = {10: (7, 5), 11: (0, 3), 12: (None, 9)}  # poll, read, running
    clock.now = 1 * S
    first = r.read(threads)
    # ts before the lookups (1 s + 1); each start after its switch count was read.
    assert first.ts_ns == S + 1 and first.polled
    assert calls(first) == [(10, 10, 7, 0, S + 2), (10, 11, 0, 0, S + 3)]
    assert (first.threads, first.unread) == (3, 0)
    # Only the threads in a call had their switch counts read, after their numbers.
    assert proc.asked == [("syscall", 10, 10), ("switches", 10, 10), ("syscall", 10, 11),
                          ("switches", 10, 11), ("syscall", 10, 12)]
    assert [c.elapsed_ns(first.ts_ns) for c in first.calls] == [0, 0]  # nothing known yet

    clock.now = 2 * S
    second = r.read(threads)
    assert second.ts_ns == 2 * S + 1
    assert calls(second) == calls(first)  # both still in the same calls
    assert [c.elapsed_ns(second.ts_ns) for c in second.calls] == [S - 1, S - 2]

    # Tid 10 ran in between (one more switch) and is in poll again: maybe another poll, so
    # timed again. Tid 11 is now in write: a new call. Tid 12 entered a call.
    proc.threads = {10: (7, 6), 11: (1, 3), 12: (61, 9)}
    clock.now = 3 * S
    third = r.read(threads)
    assert calls(third) == [(10, 10, 7, 0, 3 * S + 2), (10, 11, 1, 0, 3 * S + 3),
                            (10, 12, 61, 0, 3 * S + 4)]

    # Not in a call at one read (running or gone): forgotten, timed again when seen again.
    proc.threads = {10: (None, 6), 12: (61, 9)}
    clock.now = 4 * S
    fourth = r.read(threads)
    assert calls(fourth) == [(10, 12, 61, 0, 3 * S + 4)]
    assert fourth.calls[0].elapsed_ns(fourth.ts_ns) == S - 3
    proc.threads = {10: (7, 6), 11: (1, 3), 12: (61, 9)}
    clock.now = 5 * S
    fifth = r.read(threads)
    assert calls(fifth) == [(10, 12, 61, 0, 3 * S + 4), (10, 10, 7, 0, 5 * S + 2),
                            (10, 11, 1, 0, 5 * S + 3)]


def test_a_thread_whose_switch_count_cannot_be_read_is_not_listed() -> None:
    proc, clock = FakeProc(), Clock()
    proc.threads = {10: (7, None)}  # exited between the two reads
    assert calls(reader(proc, clock).read([(10, 10)])) == []


def test_bounded_reads_count_the_rest_as_unread_and_forget_them() -> None:
    proc, clock = FakeProc(), Clock()
    r = reader(proc, clock, max_threads=2)
    proc.threads = {1: (0, 1), 2: (0, 1), 3: (0, 1)}
    first = r.read([(1, 1), (1, 2), (1, 3)], unread=5)
    assert [c.tid for c in first.calls] == [1, 2]
    assert (first.threads, first.unread) == (2, 6)
    assert ("syscall", 1, 3) not in proc.asked  # not looked at
    # Read in another order: the thread that was not read before starts from now.
    clock.now = S
    second = r.read([(1, 3), (1, 1), (1, 2)])
    assert calls(second) == [(1, 1, 0, 0, 2), (1, 3, 0, 0, S + 2)]
    assert second.unread == 1


def test_abi_from_the_process_or_the_x32_bit() -> None:
    proc, clock = FakeProc(), Clock()
    proc.threads = {20: (142, 0), 30: (X32_BIT | 0, 0), 40: (0, 0)}
    read = reader(proc, clock).read([(20, 20), (30, 30), (40, 40)], abis={20: 1, 30: 0})
    assert [(c.tid, c.nr, c.abi) for c in read.calls] == [(20, 142, 1), (30, 0, 2), (40, 0, 0)]


def test_watch_reads_proc_when_the_tracer_passes_no_map(monkeypatch: pytest.MonkeyPatch) -> None:
    """map_fd None (--timing off): /proc is read, never the map; once a second at most."""
    import tracing.engine.inflight as engine

    proc, clock = FakeProc(), Clock()
    proc.threads = {50: (0, 4)}
    made: list[int] = []

    def fake_reader(max_threads: int = engine.MAX_THREADS) -> ProcInFlightReader:
        made.append(max_threads)
        return ProcInFlightReader(max_threads, proc.syscall_of, proc.switches_of, clock)

    def no_map(*args: object) -> None:
        raise AssertionError("the map reader is not used without a map")

    monkeypatch.setattr(engine, "ProcInFlightReader", fake_reader)
    monkeypatch.setattr(engine, "InFlightReader", no_map)
    monkeypatch.setattr(engine, "live_threads", lambda pids, limit: ([(50, 50)], 0))
    # The watch's own clock (once a second at most): still at the first read's time.
    monkeypatch.setattr(engine, "time", types.SimpleNamespace(monotonic_ns=lambda: 5 * S))
    watch = InFlightWatch("x86_64")
    processes = {50: ProcessInfo(50, comm="sleeper", abi="i386")}
    first = watch.read(None, [50], processes, 123, last=False)
    assert first is not None and first.polled
    assert [(c.tid, c.nr, c.abi) for c in first.calls] == [(50, 0, 1)]  # i386: compat
    assert watch.read(None, [50], processes, 123, last=False) is first  # within the second
    last = watch.read(None, [50], processes, 123, last=True)  # the last tick reads again
    assert last is not first and last is not None
    assert last.calls == first.calls  # the same call: its first sighting kept
    assert made == [engine.MAX_THREADS]  # one reader: its sightings last the trace


@pytest.mark.parametrize("map_fd", [None, 7])
def test_watch_reads_only_while_watched_and_at_stop(monkeypatch: pytest.MonkeyPatch,
                                                    map_fd: int | None) -> None:
    """Nobody watching: no read is passed on, and only /proc (no map) is polled, every 5 s to
    keep first sightings; opening the view reads at once, then once a second; the last tick
    always reads."""
    import tracing.engine.inflight as engine

    now = [10 * S]
    reads: list[int] = []

    def fake_read(self: InFlightWatch, *args: object) -> InFlightRead:
        reads.append(now[0])
        return InFlightRead(now[0], (), 1, 0)

    monkeypatch.setattr(engine, "time", types.SimpleNamespace(monotonic_ns=lambda: now[0]))
    monkeypatch.setattr(InFlightWatch, "_read", fake_read)
    watch = InFlightWatch("x86_64")

    def tick(at_s: float, watched: bool, last: bool = False) -> InFlightRead | None:
        now[0] = int(at_s * S)
        return watch.read(map_fd, [50], {}, 123, last=last, watched=watched)

    polls = [10, 15] if map_fd is None else []  # the first tick, then 5 s later
    assert [tick(t, False) for t in (10, 11, 14, 15, 16)] == [None] * 5
    assert reads == [t * S for t in polls]
    opened = tick(16.5, True)  # the view opens: read now, not within the period
    assert opened is not None and opened.ts_ns == int(16.5 * S)
    assert tick(17.0, True) is opened  # within the second: the same read
    assert tick(17.5, True) is not opened  # a second on
    assert tick(18.0, False) is None  # closed: nothing passed on
    at_stop = tick(18.1, False, last=True)
    assert at_stop is not None and at_stop.ts_ns == int(18.1 * S)
    assert reads == [t * S for t in polls] + [int(t * S) for t in (16.5, 17.5, 18.1)]


def test_context_switches_of_this_thread() -> None:
    import os
    import threading

    count = context_switches(os.getpid(), threading.get_native_id())
    assert count is not None and count >= 0
    assert context_switches(os.getpid(), 999_999_999) is None


@pytest.mark.parametrize(("text", "count"), [
    (b"Name:\tx\nvoluntary_ctxt_switches:\t12\nnonvoluntary_ctxt_switches:\t3\n", 15),
    # A name is escaped by the kernel, and the counts are the last lines: found from the end.
    (b"Name:\tvoluntary_ctxt_switches:\t9\nvoluntary_ctxt_switches:\t1\n"
     b"nonvoluntary_ctxt_switches:\t0\n", 1),
    (b"Name:\tx\nvoluntary_ctxt_switches:\t12\n", None),  # one missing
    (b"Name:\tx\nvoluntary_ctxt_switches:\t-1\nnonvoluntary_ctxt_switches:\t3\n", None),
    (None, None),  # gone
])
def test_context_switches_parsed_from_status(monkeypatch: pytest.MonkeyPatch,
                                             text: bytes | None, count: int | None) -> None:
    import tracing.engine.inflight as engine

    monkeypatch.setattr(engine, "_proc_file", lambda path, limit: text)
    assert context_switches(1, 2) == count


POLLED = InFlightRead(
    ts_ns=10 * S,
    calls=(InFlight(100, 101, 0, 0, 7 * S, seen=True),),
    threads=2, unread=0, polled=True)


def test_polled_calls_are_printed_and_exported_as_lower_bounds() -> None:
    processes = {100: ProcessInfo(100, comm="server")}
    assert format_inflight(POLLED, "x86_64", processes).splitlines() == [
        "    pid     tid in flight  syscall (comm)",
        "    100     101       >3s  read (server)",
        f"in flight at stop: 1 call (not counted above); {POLLED_NOTE}",
    ]
    assert POLLED_NOTE == "times at least (from /proc reads once a second: --timing off)"
    assert inflight_json(POLLED, "x86_64", processes) == [
        {"pid": 100, "tid": 101, "comm": "server", "syscall": "read", "nr": 0,
         "abi": "x86_64", "in_flight_ns": 3 * S, "entered_before_trace": False,
         "in_flight_at_least": True}]


def test_polled_meta_round_trip() -> None:
    meta = inflight_meta(POLLED)
    assert meta == {"ts_ns": 10 * S, "threads": 2, "unread": 0, "polled": 1,
                    "calls": [[100, 101, 0, 0, 7 * S, 2]]}
    assert inflight_from_meta(json.loads(json.dumps(meta))) == POLLED
    assert POLLED.at(8 * S) == InFlightRead(8 * S, POLLED.calls, 2, 0, polled=True)
    assert "polled" not in (inflight_meta(InFlightRead(1)) or {})
