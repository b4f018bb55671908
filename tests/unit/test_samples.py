"""CPU samples without the kernel: the analyses, folded stacks, symbol lookup, probe
specifications and the samples' way through the journal and Parquet."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from tracing.engine.symbols import Mapping, SymbolTable, UserSymbols, parse_maps
from tracing.errors import UserError
from tracing.model.probes import PROBE_NR_BASE, parse_probe, parse_probes, probe_names
from tracing.model.samples import (
    NO_CALLER,
    SELF,
    SampleSet,
    StackSample,
    flame_tree,
    folded_lines,
    folded_text,
    icicle,
    neighbours,
    parse_folded,
    top_functions,
)
from tracing.session.export import export_parquet
from tracing.session.replay import load_snapshots
from tracing.session.stored import open_session
from tracing.session.window import Window, whole, window_samples

BIN = "/usr/bin/app"
FIXTURE = Path(__file__).resolve().parents[1] / "tui" / "data" / "session.jsonl.gz"


def stack(*frames: str, pid: int = 10, tid: int = 10, count: int = 1, kernel: int = 0,
          comm: str = "app") -> StackSample:
    modules = tuple(BIN if i < len(frames) - kernel else "[kernel]"
                    for i in range(len(frames)))
    return StackSample(pid, tid, comm, frames, modules, kernel, count)


SAMPLES = (
    stack("main", "work", "burn", count=60),
    stack("main", "work", count=10),
    stack("main", "idle", "burn", count=20, tid=11),
    stack("main", "work", "write", "sys_write", kernel=1, count=10),
)


def test_top_functions_count_self_and_total_once_per_stack():
    rows = {r.function: r for r in top_functions(SAMPLES)}
    assert (rows["burn"].self_count, rows["burn"].total_count) == (80, 80)
    assert (rows["work"].self_count, rows["work"].total_count) == (10, 80)
    assert (rows["main"].self_count, rows["main"].total_count) == (0, 100)
    assert rows["sys_write"].module == "[kernel]"
    # Equal self counts: the larger total first.
    assert [r.function for r in top_functions(SAMPLES)][:3] == ["burn", "work", "sys_write"]


def test_recursion_counts_a_stack_once_in_total():
    rows = {r.function: r for r in top_functions([stack("main", "f", "f", "f", count=5)])}
    assert (rows["f"].self_count, rows["f"].total_count) == (5, 5)


def test_top_functions_per_thread_split_the_counts():
    rows = {(r.scope, r.function): r for r in top_functions(SAMPLES, "thread")}
    assert rows[((10, 10), "burn")].self_count == 60
    assert rows[((10, 11), "burn")].self_count == 20
    assert rows[((10, 11), "burn")].comm == "app"


def test_neighbours_are_callers_and_callees():
    n = neighbours(SAMPLES, "burn")
    assert n.callers == (("work", 60), ("idle", 20))
    assert n.callees == ((SELF, 80),)
    assert (n.self_count, n.total_count) == (80, 80)
    main = neighbours(SAMPLES, "main")
    assert main.callers == ((NO_CALLER, 100),)
    assert main.callees == (("work", 80), ("idle", 20))
    assert neighbours(SAMPLES, "burn", scope=(10, 11)).callers == (("idle", 20),)


def test_flame_tree_and_icicle_widths():
    root = flame_tree(SAMPLES)
    assert root.count == 100
    main = root.children["app"].children["main"]
    assert (main.count, main.children["work"].count, main.children["idle"].count) == (100, 80, 20)
    assert main.children["work"].children["write"].children["sys_write"].kernel
    rows = icicle(root, ("app", "main"), 100)
    assert [(c.name, c.x, c.width) for c in rows[0]] == [("main", 0, 100)]
    assert [(c.name, c.x, c.width) for c in rows[1]] == [("work", 0, 80), ("idle", 80, 20)]
    assert [(c.name, c.width) for c in rows[2]] == [("burn", 60), ("write", 10), ("burn", 20)]
    assert icicle(root, ("app", "nothing"), 100) == []


def test_folded_round_trip_sums_to_the_sample_count():
    text = folded_text(SAMPLES)
    assert "app;main;work;write;sys_write_[k] 10" in text.splitlines()
    stacks = parse_folded(text)
    assert sum(stacks.values()) == 100
    assert stacks[("app", "main", "work", "burn")] == 60
    # Two threads with the same stack are one line.
    assert folded_lines([stack("a", tid=1, count=2), stack("a", tid=2, count=3)]) == ["app;a 5"]
    with pytest.raises(ValueError, match="line 1"):
        parse_folded("no count here\n")


def test_folded_names_never_break_the_format():
    assert folded_lines([stack("std::map<a;b>", "x\ny", count=1)]) == ["app;std::map<a:b>;x y 1"]


def test_sample_set_resets_from_the_counts_so_far():
    samples = SampleSet()
    samples.update([stack("a", count=5), stack("b", count=2)])
    assert samples.total == 7
    samples.reset()
    assert samples.total == 0
    samples.update([stack("a", count=9)])  # cumulative: 4 since the reset
    assert [(s.frames, s.count) for s in samples] == [(("a",), 4)]
    samples.reset(keep_counting=False)  # another stretch of a saved session: as given
    samples.update([stack("a", count=3)])
    assert samples.total == 3


def test_maps_and_symbols():
    maps = parse_maps(
        "55d0c0000000-55d0c0001000 r--p 00000000 08:01 1234 /usr/bin/app\n"
        "55d0c0001000-55d0c0005000 r-xp 00001000 08:01 1234 /usr/bin/app\n"
        "7f0000000000-7f0000001000 r-xp 00000000 00:00 0 \n"
        "7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0 [vdso]\n")
    assert [m.path for m in maps] == ["/usr/bin/app", "", "[vdso]"]
    assert maps[0] == Mapping(0x55D0C0001000, 0x55D0C0005000, 0x1000, "08:01", 1234,
                              "/usr/bin/app")
    table = SymbolTable([(0x1000, 0x100, "main"), (0x1100, 0x50, "burn"),
                         (0x1000, 0x100, "_main_alias")])
    assert (table.lookup(0x1000), table.lookup(0x1120), table.lookup(0x2000)) == (
        "main", "burn", None)


class FakeElf:
    def __init__(self) -> None:
        self.read: list[str] = []

    def symbols(self, path: str):
        self.read.append(path)
        return [(0x1000, 0x100, "main"), (0x1100, 0x80, "burn")]

    def text_section(self, path: str):
        return (0x1000, 0x1000)

    def vdso_symbols(self):
        return [(0x900, 0x40, "__vdso_clock_gettime")]


def test_user_symbols_keep_an_exited_process_and_cache_per_binary(tmp_path):
    binary = tmp_path / "app"
    binary.write_bytes(b"\x7fELF")
    inode = binary.stat().st_ino
    maps_text = (f"1000-3000 r-xp 00001000 08:01 {inode} {binary}\n"
                 "5000-6000 r-xp 00000000 00:00 0 [vdso]\n"
                 "7000-8000 rwxp 00000000 00:00 0 \n")
    alive = {1: parse_maps(maps_text), 2: parse_maps(maps_text)}
    elf = FakeElf()
    symbols = UserSymbols(elf, maps_of=alive.get)
    assert symbols.watch(1)
    del alive[1]  # exited: its maps were read while it lived
    assert symbols.frame(1, 0x1110) == ("burn", str(binary))
    assert symbols.frame(2, 0x1005) == ("main", str(binary))
    assert elf.read == [str(binary)]  # one binary, read once for both processes
    assert symbols.frame(1, 0x2f00) == ("app+0x2f00", str(binary))  # no symbol: offset
    assert symbols.frame(1, 0x5910) == ("__vdso_clock_gettime", "[vdso]")
    assert symbols.frame(1, 0x7010) == ("[anon]+0x10", "[anon]")  # JIT without a perf map
    assert symbols.frame(3, 0x1000) == ("0x1000", "[unknown]")  # never seen alive


def test_probe_specifications():
    assert parse_probe("c:malloc").label == "uprobe:c:malloc"
    assert parse_probe("/usr/lib/x86_64-linux-gnu/libc.so.6:free").target.endswith("so.6")
    assert probe_names(("c:malloc", "c:free")) == {PROBE_NR_BASE: "uprobe:c:malloc",
                                                   PROBE_NR_BASE + 1: "uprobe:c:free"}
    for bad, message in (("malloc", "expected BINARY_OR_LIB:FUNCTION"),
                         ("c:", "expected BINARY_OR_LIB:FUNCTION"),
                         ("c:two words", "is not a function name")):
        with pytest.raises(UserError, match=message):
            parse_probe(bad)
    with pytest.raises(UserError, match="given twice"):
        parse_probes(("c:malloc", "c:malloc"))
    with pytest.raises(UserError, match="at most 16"):
        parse_probes(tuple(f"c:f{i}" for i in range(17)))


def test_samples_go_through_the_journal_and_parquet(make_journal, tmp_path):
    """Cumulative counts in, interval counts stored, the same totals out of both formats,
    and a stretch of time holds the samples of its intervals only."""
    snapshots = [dataclasses.replace(s, sample_hz=99) for s in load_snapshots(FIXTURE)]
    first = (stack("main", "burn", count=30), stack("main", "idle", count=5))
    second = (stack("main", "burn", count=70),)  # 40 more in burn, idle unchanged
    snapshots[1] = dataclasses.replace(snapshots[1], samples=first, sample_hz=99)
    snapshots[2] = dataclasses.replace(snapshots[2], samples=second, sample_hz=99)
    path = make_journal(tmp_path / "s.sikte.db", snapshots)
    session = open_session(path)
    assert sorted(session.samples["count"]) == [5, 30, 40]
    assert session.meta["sample_hz"] == 99  # from the snapshots: also for picker-started traces
    export_parquet(session, tmp_path / "pq")
    for where in (path, tmp_path / "pq"):
        stored = open_session(where)
        got = {s.frames: s.count for s in window_samples(stored, whole(stored))}
        assert got == {("main", "burn"): 70, ("main", "idle"): 5}, where
        second_tick = Window(snapshots[1].ts_ns, snapshots[2].ts_ns)
        assert {s.frames: s.count for s in window_samples(stored, second_tick)} == {
            ("main", "burn"): 40}
    frame = pd.read_parquet(tmp_path / "pq" / "samples.parquet")
    assert list(frame.columns[:4]) == ["ts", "pid", "tid", "comm"]
    assert int(frame["count"].sum()) == 75


def test_a_forked_child_gone_before_its_samples_are_named_uses_its_parents_maps(tmp_path):
    binary = tmp_path / "app"
    binary.write_bytes(b"\x7fELF")
    maps = parse_maps(f"1000-3000 r-xp 00001000 08:01 {binary.stat().st_ino} {binary}\n")
    alive = {1: maps}
    symbols = UserSymbols(FakeElf(), maps_of=alive.get)
    symbols.inherit(child=2, parent=1)  # 2 forked from 1, never exec'd, exited since
    assert symbols.frame(2, 0x1110) == ("burn", str(binary))
    symbols.forget(2)
    symbols.forget(1)
    assert symbols.frame(2, 0x1110) == ("0x1110", "[unknown]")


def test_sample_maps_grow_with_cpus_and_rate():
    from tracing.engine.program import sample_map_entries

    assert sample_map_entries(99, cpus=2) == (8192, 8192)  # the floor
    stacks, counts = sample_map_entries(99, cpus=64)
    assert stacks >= 64 * 99 * 0.25 * 16 and counts >= 64 * 99 * 2 * 2
    assert sample_map_entries(1000, cpus=1024) == (65536, 262144)  # the ceiling


def test_sample_set_total_follows_updates_and_resets():
    samples = SampleSet()
    samples.update([stack("a", count=2), stack("b", count=3)])
    samples.update([stack("a", count=7)])
    assert samples.total == 10 == sum(s.count for s in samples)
    samples.reset()
    samples.update([stack("b", count=4)])
    assert samples.total == 1 == sum(s.count for s in samples)
