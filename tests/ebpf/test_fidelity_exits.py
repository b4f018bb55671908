"""Processes end as the kernel ended them (issue 16, "Must show" 3, and the leaked signal
disposition of item 4): children killed by SIGTERM, SIGUSR1, SIGHUP, SIGPIPE (`yes | head -1`)
and SIGSEGV are reported with those signals, not the SIGKILL a fatal signal turns into at
delivery; `dd` past `ulimit -f` dies of SIGXFSZ (the launched command inherits no ignored
signal and no blocked one); and the launched command's own death by a signal is record's.

One record of one shell does it all. die.c kills itself with the signal it is given (SIGSEGV
by a real invalid access); it runs through symlinks named after each signal, so each dying
process has its own name (a process's name is its program's file name)."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.ebpf.fidelity import Recording, record, shared_dir

pytestmark = pytest.mark.ebpf

# Process name -> the signal it dies of (by its own kill(2), or SIGSEGV by a fault).
DYING = {"die-TERM": signal.SIGTERM, "die-USR1": signal.SIGUSR1, "die-HUP": signal.SIGHUP,
         "die-SEGV": signal.SIGSEGV}
LAST = "die-last"  # the program the shell finally becomes: SIGTERM ends the launched command


@pytest.fixture(scope="module")
def ending(c_program: Callable[[str], str]) -> Iterator[tuple[Recording, Path]]:
    die = c_program("die")
    with shared_dir() as folder:
        for name in [*DYING, LAST]:
            (folder / name).symlink_to(die)
        steps = [f"{folder / name} {int(sig)}" for name, sig in DYING.items()]
        steps += [
            "yes | head -1 > /dev/null",  # yes dies of SIGPIPE at its next write
            # Read by the shell itself (builtins, no child): a child reading its parent's
            # status can catch it inside vfork, with every signal blocked for the moment.
            "while read -r key value; do case $key in SigBlk:|SigIgn:) echo \"$key $value\";; "
            f"esac; done < /proc/$$/status > {folder / 'signals'}",
            f"(ulimit -f 1; exec dd if=/dev/zero of={folder / 'big'} bs=4096 count=2 "
            "status=none)",
            f"exec {folder / LAST} {int(signal.SIGTERM)}",
        ]
        run = record(["/bin/sh", "-c", "; ".join(steps)])
        yield run, folder


def by_name(run: Recording, name: str) -> dict[str, object]:
    (proc,) = [p for p in run.processes.values() if p["comm"] == name]
    return proc


@pytest.mark.parametrize("name", list(DYING))
def test_child_killed_by_a_signal_is_reported_with_it(ending: tuple[Recording, Path],
                                                      name: str) -> None:
    run, _ = ending
    proc = by_name(run, name)
    assert (proc["exit_signal"], proc["exit_code"]) == (int(DYING[name]), None)


def test_yes_into_head_dies_of_sigpipe(ending: tuple[Recording, Path]) -> None:
    run, _ = ending
    assert (by_name(run, "yes")["exit_signal"], by_name(run, "yes")["exit_code"]) == (
        int(signal.SIGPIPE), None)
    assert (by_name(run, "head")["exit_signal"], by_name(run, "head")["exit_code"]) == (None, 0)


def test_launched_command_inherits_no_ignored_or_blocked_signal(
        ending: tuple[Recording, Path]) -> None:
    run, folder = ending
    # dash keeps what it inherits ignored (POSIX) and blocks nothing while it runs a command.
    assert (folder / "signals").read_text().split() == ["SigBlk:", "0" * 16, "SigIgn:", "0" * 16]
    dd = by_name(run, "dd")  # ulimit -f 1 (1,024 bytes): its first 4,096-byte write is too big
    assert (dd["exit_signal"], dd["exit_code"]) == (int(signal.SIGXFSZ), None)


def test_launched_command_killed_by_a_signal_is_records_ending(
        ending: tuple[Recording, Path]) -> None:
    run, _ = ending
    target = run.doc["target"]
    assert (target["exit_signal"], target["exit_code"]) == (int(signal.SIGTERM), None)
    assert run.returncode == 128 + signal.SIGTERM  # as a shell reports it
    last = run.processes[run.command_pid]
    assert (last["comm"], last["exit_signal"]) == (LAST, int(signal.SIGTERM))
    assert run.drops() == {}
