"""The calls-in-flight model (tracing/model/inflight.py): the slot's number and ABI, names
from each ABI's table, elapsed times, what record prints, and the session metadata that keeps
them (untrusted when read back)."""

from __future__ import annotations

import json

import pytest

from tracing.model.inflight import (
    InFlight,
    InFlightRead,
    format_inflight,
    inflight_from_meta,
    inflight_json,
    inflight_meta,
    ordered,
    split_nr,
    stored_inflight,
)
from tracing.model.stats import ProcessInfo

PROCESSES = {100: ProcessInfo(100, comm="server"), 200: ProcessInfo(200, comm="\x1b]0;x\x07")}
READ = InFlightRead(
    ts_ns=10_000_000_000,
    calls=ordered([InFlight(100, 101, 0, 0, 7_500_000_000),  # read, 2.5 s
                   InFlight(200, 200, 142, 1, 9_000_000_000),  # i386 _newselect, 1 s
                   InFlight(100, 100, 61, 0, 1_000_000_000, True)]),  # wait4, > 9 s
    threads=5, unread=2)


def test_split_nr_takes_number_and_abi_bits():
    assert split_nr(0) == (0, 0)
    assert split_nr((1 << 32) | 142) == (142, 1)
    assert split_nr((2 << 32) | 0x1234) == (0x1234, 2)
    assert split_nr((3 << 32) | 0xFFFF_FFFF) == (0xFFFF_FFFF, 3)
    assert split_nr(1 << 34 | 5) == (5, 0)  # bits above 33 are not the ABI


def test_elapsed_and_order():
    assert [c.tid for c in READ.calls] == [100, 101, 200]  # longest running first
    assert [c.elapsed_ns(READ.ts_ns) for c in READ.calls] == [
        9_000_000_000, 2_500_000_000, 1_000_000_000]
    assert InFlight(1, 1, 0, 0, 50).elapsed_ns(40) == 0  # never negative


def test_json_names_each_call_in_its_own_abi():
    assert inflight_json(READ, "x86_64", PROCESSES) == [
        {"pid": 100, "tid": 100, "comm": "server", "syscall": "wait4", "nr": 61,
         "abi": "x86_64", "in_flight_ns": 9_000_000_000, "entered_before_trace": True,
         "in_flight_at_least": True},
        {"pid": 100, "tid": 101, "comm": "server", "syscall": "read", "nr": 0,
         "abi": "x86_64", "in_flight_ns": 2_500_000_000, "entered_before_trace": False,
         "in_flight_at_least": False},
        {"pid": 200, "tid": 200, "comm": "\x1b]0;x\x07", "syscall": "_newselect", "nr": 142,
         "abi": "i386", "in_flight_ns": 1_000_000_000, "entered_before_trace": False,
         "in_flight_at_least": False},
    ]
    assert inflight_json(None, "x86_64", PROCESSES) == []


def test_text_lists_each_call_and_sanitizes_names():
    text = format_inflight(READ, "x86_64", PROCESSES)
    assert text.splitlines() == [
        "    pid     tid in flight  syscall (comm)",
        "    100     100       >9s  wait4 (server)",
        "    100     101      2.5s  read (server)",
        "    200     200        1s  _newselect (i386) (\\x1b]0;x\\x07)",
        "in flight at stop: 3 calls (not counted above); 2 threads not read",
    ]
    assert format_inflight(InFlightRead(5), "x86_64", {}) == ""
    assert format_inflight(None, "x86_64", {}) == ""


def test_meta_round_trip_and_stretches():
    meta = json.loads(json.dumps(inflight_meta(READ)))
    assert inflight_from_meta(meta) == READ
    assert inflight_meta(None) is None
    assert inflight_from_meta({"ts_ns": 9, "calls": [[1, 2, 3, 0, 5]]}) == InFlightRead(
        9, (InFlight(1, 2, 3, 0, 5),))  # five fields: entered within the trace
    # A stretch ending at 8 s: the calls entered by then, as of then.
    early = stored_inflight(meta, 8_000_000_000)
    assert early == InFlightRead(8_000_000_000, READ.calls[:2], 5, 2)
    assert [c.elapsed_ns(early.ts_ns) for c in early.calls] == [7_000_000_000, 500_000_000]
    assert stored_inflight(meta, 20_000_000_000) == READ  # after the read: as of the read


@pytest.mark.parametrize("bad", [
    None, [], "x", {"ts_ns": -1, "calls": []}, {"ts_ns": 1, "calls": {}},
    {"ts_ns": 1, "calls": [[1, 2, 3, 0]]}, {"ts_ns": 1, "calls": [[1, 2, 3, 4, 5]]},
    {"ts_ns": 1, "calls": [[1 << 32, 2, 3, 0, 5]]}, {"ts_ns": 1, "calls": [[1, 2, 3, 0, "5"]]},
    {"ts_ns": 1, "calls": [[1, 2, 1 << 32, 0, 5]]}, {"ts_ns": True, "calls": []},
    {"ts_ns": 1, "calls": [[1, 2, 3, 0, 5]] * 20_000},
    {"ts_ns": 1, "threads": -1, "calls": []}, {"ts_ns": 1, "calls": [[1, 2, 3, 0, 5, 3]]},
    {"ts_ns": 1, "polled": 2, "calls": []}, {"ts_ns": 1, "polled": True, "calls": []},
])
def test_malformed_meta_is_ignored(bad):
    assert inflight_from_meta(bad) is None


def test_live_threads_lists_each_process_once_and_bounds_it():
    import os
    import threading

    from tracing.engine.inflight import live_threads

    done = threading.Event()
    started = threading.Event()
    tids: list[int] = []

    def run() -> None:
        tids.append(threading.get_native_id())
        started.set()
        done.wait()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert started.wait(10)
        pid, tid = os.getpid(), tids[0]
        found, more = live_threads([pid, tid, 999_999_999], 10_000)
        assert (pid, pid) in found and (pid, tid) in found and more == 0
        assert all(p == pid for p, _ in found)  # the thread's id is no process: skipped
        n = len(found)
        assert live_threads([pid], 1) == ([(pid, pid)], n - 1)
    finally:
        done.set()
        thread.join()
