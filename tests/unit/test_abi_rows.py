"""Rows of different ABIs (issue 16): each call is named from the table of the ABI it was
made under (StatKey.abi), never from its process's executable; rows of two ABIs stay apart
everywhere (the summary, the live view's groupings, record's JSON), and a name that occurs
under two ABIs is labelled with each row's (`getppid (i386)`)."""

from __future__ import annotations

from types import MappingProxyType

import numpy as np

from syscall_tables import ABI_COMPAT, ABI_NATIVE, ABI_X32, X32_SYSCALL_BIT
from tracing.model.expected_errors import expected_error_counts
from tracing.model.report import format_summary, key_name, summary_json, syscall_rows
from tracing.model.stats import (
    EVENT_DTYPE,
    Drops,
    ProcessInfo,
    Snapshot,
    StatKey,
    SyscallStats,
    group_stats,
    no_events,
)
from tui.columns import GROUPINGS
from tui.rows import RowBuilder

BY = {g.key: g for g in GROUPINGS}
INVALID = 0xFFFFFFFF  # syscall(-1): the kernel counts it under its u32 number


def stats(count: int, errors: int = 0) -> SyscallStats:
    return SyscallStats(count, errors, 1_000 * count, 1_000, 1_000, ((64, count),))


# pid 10 exec'd 64 -> 32 -> 64 bits: its executable is 64-bit again, yet it made i386 calls.
# pid 11 was an i386 process gone before /proc was read (no ABI recorded). pid 12 is x32,
# pid 13 called syscall(-1).
STATS = {
    StatKey(10, 10, 110, ABI_NATIVE): stats(5),  # x86_64 getppid
    StatKey(10, 10, 64, ABI_COMPAT): stats(100),  # i386 getppid
    StatKey(10, 10, 64, ABI_NATIVE): stats(1, 1),  # x86_64 semget
    StatKey(10, 10, 140, ABI_COMPAT): stats(3),  # i386 _llseek
    StatKey(11, 11, 64, ABI_COMPAT): stats(7),  # i386 getppid
    StatKey(12, 12, 39, ABI_X32): stats(2),  # x32 getpid, without the x32 bit
    StatKey(13, 13, INVALID, ABI_NATIVE): stats(1, 1),
}
PROCESSES = {
    10: ProcessInfo(10, 1, "chain", "/bin/chain64", ("chain",), "x86_64"),
    11: ProcessInfo(11, 10, "short32", "", (), ""),
    12: ProcessInfo(12, 1, "x32prog", "/bin/x32prog", (), "x32"),
    13: ProcessInfo(13, 1, "minus1", "/bin/minus1", (), "x86_64"),
}


def snapshot(entries: dict[StatKey, SyscallStats] | None = None, seq: int = 1,
             interval: dict[StatKey, SyscallStats] | None = None) -> Snapshot:
    entries = STATS if entries is None else entries
    return Snapshot(
        seq=seq, ts_ns=1_000_000_000 * (seq + 1), wall_time=1_700_000_000.0 + seq,
        start_ts_ns=1_000_000_000, start_wall_time=1_700_000_000.0, arch="x86_64",
        state="tracing", stats=MappingProxyType(entries),
        interval=MappingProxyType(entries if interval is None else interval), interval_s=1.0,
        processes=MappingProxyType(PROCESSES), events=no_events(), proc_events=(),
        drops=Drops(), tracer_cpu_s=0.0)


def test_statkey_has_an_abi_that_defaults_to_native() -> None:
    assert StatKey(1, 2, 3) == StatKey(1, 2, 3, ABI_NATIVE)
    assert StatKey(1, 2, 3, ABI_COMPAT) != StatKey(1, 2, 3)
    assert StatKey._fields == ("pid", "tid", "nr", "abi")


def test_each_entry_is_named_by_its_own_abi() -> None:
    s = snapshot()
    names = {key: key_name(s, key) for key in STATS}
    assert names == {
        StatKey(10, 10, 110, ABI_NATIVE): "getppid",
        StatKey(10, 10, 64, ABI_COMPAT): "getppid",  # not x86_64's semget
        StatKey(10, 10, 64, ABI_NATIVE): "semget",
        StatKey(10, 10, 140, ABI_COMPAT): "_llseek",  # not getpriority
        StatKey(11, 11, 64, ABI_COMPAT): "getppid",  # no ABI recorded: the key's counts
        StatKey(12, 12, 39, ABI_X32): "getpid",  # not syscall_1073741863
        StatKey(13, 13, INVALID, ABI_NATIVE): "syscall_4294967295",
    }


def test_group_stats_keeps_abis_apart() -> None:
    by_call = group_stats(STATS, ("nr", "abi"))
    assert by_call[(64, ABI_COMPAT)].count == 107
    assert by_call[(64, ABI_NATIVE)].count == 1
    assert group_stats(STATS, ("pid",))[(10,)].count == 109


def test_summary_rows_keep_abis_apart_and_label_shared_names() -> None:
    rows = {r.name: (r.stats.count, r.abi, r.syscall, r.nr) for r in syscall_rows(snapshot())}
    assert rows == {
        "getppid (i386)": (107, "i386", "getppid", 64),
        "getppid (x86_64)": (5, "x86_64", "getppid", 110),
        "semget": (1, "x86_64", "semget", 64),
        "_llseek": (3, "i386", "_llseek", 140),
        "getpid": (2, "x32", "getpid", 39),
        "syscall_4294967295": (1, "x86_64", "syscall_4294967295", INVALID),
    }
    # One process: only its own rows decide the labels.
    assert [r.name for r in syscall_rows(snapshot(), pid=11)] == ["getppid"]


def test_record_text_and_json_show_each_abi() -> None:
    text = format_summary(snapshot(), per_process=True)
    lines = text.splitlines()
    chain = lines[lines.index("pid 10 (chain)") + 1:]
    # Sorted by total time: the i386 getppid (100 calls), x86_64's (5), then _llseek, semget.
    assert [ln.endswith(name) for ln, name in zip(chain[2:6], (
        " getppid (i386)", " getppid (x86_64)", " _llseek", " semget"), strict=True)] == [
        True] * 4
    doc = summary_json(snapshot(), {"pids": []})
    syscalls = {(r["syscall"], r["abi"]): r["count"] for r in doc["syscalls"]}  # type: ignore[union-attr, index]
    assert syscalls[("getppid", "i386")] == 107
    assert syscalls[("getppid", "x86_64")] == 5
    assert syscalls[("getpid", "x32")] == 2


def test_live_rows_keep_abis_apart_and_label_shared_names() -> None:
    builder = RowBuilder()
    builder.feed(snapshot())
    rows = {r.key: r.values["name"] for r in builder.rows(BY["syscall"])}
    assert rows == {
        ("getppid", ABI_COMPAT): "getppid (i386)", ("getppid", ABI_NATIVE): "getppid (x86_64)",
        ("semget", ABI_NATIVE): "semget", ("_llseek", ABI_COMPAT): "_llseek",
        ("getpid", ABI_X32): "getpid", ("syscall_4294967295", ABI_NATIVE): "syscall_4294967295"}
    counts = {r.key: r.values["count"] for r in builder.rows(BY["pid_syscall"])}
    assert counts[(10, "getppid", ABI_COMPAT)] == 100
    assert counts[(11, "getppid", ABI_COMPAT)] == 7
    assert counts[(10, "getppid", ABI_NATIVE)] == 5
    names = {r.key: r.values["name"] for r in builder.rows(BY["pid_syscall"])}
    assert names[(11, "getppid", ABI_COMPAT)] == "getppid (i386)"
    thread = {r.key: r.values["count"] for r in builder.rows(BY["thread"])}
    assert thread[(10, 10)] == 109


def test_a_label_appears_when_a_second_abi_arrives() -> None:
    builder = RowBuilder()
    first = {StatKey(11, 11, 64, ABI_COMPAT): stats(7)}
    builder.feed(snapshot(first))
    assert [r.values["name"] for r in builder.rows(BY["syscall"])] == ["getppid"]
    second = {StatKey(10, 10, 110, ABI_NATIVE): stats(5)}
    builder.feed(snapshot({**first, **second}, seq=2, interval=second))
    assert {r.key: r.values["name"] for r in builder.rows(BY["syscall"])} == {
        ("getppid", ABI_COMPAT): "getppid (i386)", ("getppid", ABI_NATIVE): "getppid (x86_64)"}


def test_expected_errors_are_counted_per_abi() -> None:
    events = np.zeros(3, dtype=EVENT_DTYPE)
    events["pid"] = events["tid"] = 12
    events["ret"] = -11  # EAGAIN
    events["nr"] = [X32_SYSCALL_BIT + 0, 0, 3]  # x32 read (with its bit), x86_64 read, i386 read
    events["abi"] = [ABI_X32, ABI_NATIVE, ABI_COMPAT]
    assert expected_error_counts(events) == {
        StatKey(12, 12, 0, ABI_X32): 1, StatKey(12, 12, 0, ABI_NATIVE): 1,
        StatKey(12, 12, 3, ABI_COMPAT): 1}
