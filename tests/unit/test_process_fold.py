"""Bounded memory under process churn (no root): past a bound the oldest exited processes are
one entry (pid 0, "(N exited processes)"), each counted once, a reused pid's earlier process
included; a process is folded only some time after its exit (the journal writes it first);
the record summary is written piece by piece, the same text as json.dumps; the compiler's
pages are found in /proc/self/smaps."""

from __future__ import annotations

import json

from tracing.engine.memory import is_compiler_library, mappings, release_compiler_pages
from tracing.model.json_stream import Rows, iter_json, write_json
from tracing.model.snapshots import FOLDED_PID, FoldedProcesses, folded_count
from tracing.model.stats import ProcEvent, ProcKind
from tracing.system.process_fold import FOLD_DELAY_S
from tracing.system.processes import ProcessTracker

ROOT = 3_900_000  # ids /proc has none of (see test_processes_threads.py)


TIME = iter(range(1, 1 << 30))  # the events' times, in order


def fork(pid: int) -> ProcEvent:
    return ProcEvent(next(TIME), ProcKind.FORK, ROOT, pid, ROOT, -1, False, "sh", "", False)


def exit_(pid: int, status: int = 0) -> ProcEvent:
    return ProcEvent(next(TIME), ProcKind.EXIT, pid, pid, 0, status, True, "true", "")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def tracker(clock: Clock, kept: int) -> ProcessTracker:
    t = ProcessTracker(clock=clock, kept_exited=kept)
    t.add_root(ROOT, 0)
    return t


def short_lives(t: ProcessTracker, pids: range) -> None:
    for pid in pids:
        t.apply([fork(pid), exit_(pid, status=pid % 3 << 8)], follow=True)


def test_exited_processes_past_the_bound_are_one_entry_each_counted_once() -> None:
    clock = Clock()
    t = tracker(clock, kept=3)
    short_lives(t, range(ROOT + 1, ROOT + 11))
    early = t.snapshot()
    # Not yet: the journal writes a process's last row before it may be folded.
    assert len(early) == 11 and FOLDED_PID not in early
    clock.now += FOLD_DELAY_S + 1
    shown = t.snapshot()  # folded with nothing else changed
    assert folded_count(shown) == 7
    entry = shown[FOLDED_PID]
    assert isinstance(entry, FoldedProcesses)
    assert entry.comm == "(7 exited processes)" and not entry.alive
    # The newest exited ones stay apart, the live root too; every process counted once.
    assert sorted(p for p in shown if p != FOLDED_PID) == [ROOT, *range(ROOT + 8, ROOT + 11)]
    assert len(shown) - 1 + folded_count(shown) == 11
    assert len(early) == 11 and FOLDED_PID not in early  # a handed-out dict never changes
    assert ROOT + 1 not in t.processes  # the tracker's memory is bounded too


def test_a_reused_pid_folds_the_process_it_was() -> None:
    clock = Clock()
    t = tracker(clock, kept=100)
    short_lives(t, range(ROOT + 1, ROOT + 3))
    t.snapshot()
    short_lives(t, range(ROOT + 1, ROOT + 2))  # the kernel gives ROOT + 1 again
    shown = t.snapshot()
    assert folded_count(shown) == 1
    assert len(shown) - 1 + folded_count(shown) == 4  # the root, three processes


def test_a_process_taken_for_ended_is_not_counted_twice() -> None:
    """Its calls were read before its own events (it was gone from /proc at its fork): it is
    taken for ended without an exit time, and its exit event later is the same process."""
    t = tracker(Clock(), kept=100)
    t.apply([fork(ROOT + 1)], follow=True)  # gone already: pending
    t.note_threads([(ROOT + 1, ROOT + 1)])
    assert t.processes[ROOT + 1].exit is not None
    t.apply([exit_(ROOT + 1)], follow=True)
    shown = t.snapshot()
    assert folded_count(shown) == 0 and len(shown) == 2


def test_live_processes_are_never_folded() -> None:
    clock = Clock()
    t = tracker(clock, kept=0)
    t.apply([fork(ROOT + 1), exit_(ROOT + 1)], follow=True)
    t.snapshot()
    clock.now += FOLD_DELAY_S + 1
    shown = t.snapshot()
    assert folded_count(shown) == 1 and ROOT in shown and shown[ROOT].alive


def test_the_streamed_summary_is_json_dumps_text() -> None:
    rows = [{"pid": 1, "comm": "é\n\x1b", "l": [], "d": {}}, {"x": [1, {"y": None}]}]
    doc = {"syscalls": [{"a": 1}], "processes": Rows(lambda: iter(rows)),
           "none": Rows(lambda: iter(())), "n": 0, "o": {"k": [1, 2]}}
    plain = {k: list(v) if isinstance(v, Rows) else v for k, v in doc.items()}
    assert "".join(iter_json(doc)) == json.dumps(plain, indent=2)
    out: list[str] = []
    write_json(out.append, doc, chunk=10)
    assert "".join(out) == json.dumps(plain, indent=2) and len(out) > 1
    assert "".join(iter_json({})) == json.dumps({}, indent=2)


SMAPS = """\
7f00000000-7f00001000 r--p 00000000 08:01 42   /usr/lib/x86_64-linux-gnu/libLLVM-14.so.1
Rss:                   4 kB
Anonymous:             0 kB
7f00001000-7f00003000 rw-p 00001000 08:01 42   /usr/lib/x86_64-linux-gnu/libLLVM-14.so.1
Anonymous:             8 kB
7f00003000-7f00004000 rw-p 00000000 00:00 0
Anonymous:             4 kB
"""


def test_the_compiler_libraries_mappings_are_read_from_smaps() -> None:
    found = list(mappings(SMAPS))
    assert [(m.start, m.end, m.perms, m.anonymous_kb) for m in found] == [
        (0x7F00000000, 0x7F00001000, "r--p", 0), (0x7F00001000, 0x7F00003000, "rw-p", 8),
        (0x7F00003000, 0x7F00004000, "rw-p", 4)]
    assert [is_compiler_library(m.path) for m in found] == [True, True, False]
    assert is_compiler_library("/usr/lib/llvm-14/lib/libclang-cpp.so.14")
    assert release_compiler_pages() >= 0  # in a process without them: nothing, no error
