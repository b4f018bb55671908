"""Each call is named from the table of the ABI it was made with (issue 16, "Must show" 2):
a short-lived i386 program exec'd from a 64-bit shell has its exact i386 names and counts,
and a process that execs 64 -> 32 -> 64 bits has each phase under its own ABI.

strace splits its summary by personality (the 64-bit table, then "32 bit mode"), counting a
call under the mode it was made in: the 64-bit execve that loads the i386 program is a 64-bit
call, the i386 execve that loads the 64-bit program an i386 one. sikte-tui's rows, labelled
by ABI in the JSON, must equal those tables, under strace (the same run) and launched
directly (the programs make the same calls every run).

i386_calls.c (built with gcc -m32) makes 100 getppid (i386 nr 64, semget in the x86_64 table),
10 _llseek (nr 140, x86_64 getpriority), 5 failed opens and its loader's mmap2 (nr 192,
x86_64 lgetxattr); known64.c (no C library) 3 getppid and exit_group."""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.ebpf.fidelity import (
    Calls,
    Wrapped,
    assert_same,
    record,
    record_under_strace,
    shared_dir,
    table_of,
    without_never_returning,
)

pytestmark = [
    pytest.mark.ebpf,
    pytest.mark.skipif(platform.machine() != "x86_64", reason="i386 programs run on x86_64"),
]

Program = Callable[[str], str]


def two_i386(program: Program) -> list[str]:
    """Two short-lived i386 processes, each forked and exec'd by a 64-bit shell."""
    i386 = program("i386_calls")
    return ["/bin/sh", "-c", f"{i386}; {i386}"]


def chain(program: Program) -> list[str]:
    """One process: the 64-bit shell execs the i386 program, which execs known64."""
    return ["/bin/sh", "-c", f'exec {program("i386_calls")} {program("known64")}']


@pytest.fixture(scope="module")
def under_strace(c_program: Program) -> Iterator[Wrapped]:
    with shared_dir() as folder:
        yield record_under_strace({"two_i386": two_i386(c_program), "chain": chain(c_program)},
                                  folder, c_program("known64"))


def by_abi(table: Calls, abi: str) -> dict[str, tuple[int, int]]:
    return {name: counts for (a, name), counts in table.items() if a == abi}


def test_i386_processes_under_strace_have_i386_names_and_counts(under_strace: Wrapped) -> None:
    w = under_strace
    assert w.recording.drops() == {}
    i386 = by_abi(w.tables["two_i386"], "i386")
    # What the program was written to do, as strace sees it: the tables are the reference.
    assert (i386["getppid"], i386["_llseek"], i386["openat"][1]) == ((200, 0), (20, 0), 10)
    assert "mmap2" in i386
    assert_same(w.tables["two_i386"], w.compared("two_i386"),
                "two i386 processes from a 64-bit shell, strace -f -c vs sikte-tui")


def test_64_32_64_chain_under_strace_has_each_phase_under_its_abi(under_strace: Wrapped) -> None:
    w = under_strace
    table = w.tables["chain"]
    # strace: the shell's execve (of the i386 program) is a 64-bit call, the i386 program's
    # execve (of known64) an i386 one; known64's 3 getppid are 64-bit, as the shell's one.
    assert by_abi(table, "i386")["execve"] == (1, 0)
    assert by_abi(table, "x86_64")["getppid"] == (4, 0)
    assert w.recording.subtree(w.first_tracee("chain")) == [w.first_tracee("chain")]
    assert_same(table, w.compared("chain"), "64->32->64 exec chain, strace -f -c vs sikte-tui")


# --timing off counts at each call's exit, from the registers then: a successful exec's are
# the new program's, in its ABI, not the caller's (issue 18).
timings = pytest.mark.parametrize("timing", ["exact", "off"])


@timings
def test_short_lived_i386_programs_launched_directly(under_strace: Wrapped,
                                                     c_program: Program, timing: str) -> None:
    run = record(two_i386(c_program), timing=timing)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.drops() == {}
    pids = run.subtree(run.command_pid)
    assert len(pids) == 3  # the shell and its two i386 children
    calls = run.calls(pids)
    assert_same(under_strace.tables["two_i386"], without_never_returning(calls),
                "two i386 processes launched directly vs strace -f -c")
    # The i386 children end with the i386 exit_group (nr 252), the shell with the 64-bit one.
    assert calls.get(("i386", "exit_group")) == (2, 0)
    assert calls.get(("x86_64", "exit_group")) == (1, 0)


@timings
def test_64_32_64_chain_launched_directly(under_strace: Wrapped, c_program: Program,
                                          timing: str) -> None:
    run = record(chain(c_program), timing=timing)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.drops() == {}
    assert run.subtree(run.command_pid) == [run.command_pid]  # one process, three programs
    calls = run.per_pid[run.command_pid]
    assert_same(under_strace.tables["chain"], without_never_returning(calls),
                "64->32->64 exec chain launched directly vs strace -f -c")
    assert calls.get(("x86_64", "exit_group")) == (1, 0)  # known64's, the last phase
    rows: list[dict[str, Any]] = [*run.doc["syscalls"],
                                  *(r for e in run.doc["per_process"] for r in e["syscalls"])]
    unlabelled = [r["syscall"] for r in rows if "abi" not in r]
    assert not unlabelled, f"rows without an abi field: {unlabelled}"
    # The summary over processes keeps the ABIs apart too (getppid: 100 i386, 4 x86_64).
    assert_same(calls, table_of(run.doc["syscalls"], run.arch),
                "the summary rows vs the process's rows")
