"""What the fidelity tests share: running `sikte-tui record --json --per-process` on a real
command (as root, or launched for a sudo user), reading its per-process rows by ABI and
name, walking its process tree, reading `strace -f -c` tables, and saying exactly where two
tables differ.

A table here maps (ABI, syscall name) to (calls, errors): the ABI is the syscall table's
name ("x86_64", "i386", "x32"), as strace splits its summary by personality."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
NOBODY = 65534  # the unprivileged user a sudo caller is played by
STRACE = "/usr/bin/strace"
PYTHON = "/usr/bin/python3"

Calls = dict[tuple[str, str], tuple[int, int]]

# Calls that never return (the task is gone): strace counts a call when it returns, so it
# never lists them; sikte-tui counts them at entry. Compared apart where the test knows them.
NEVER_RETURN = frozenset({"exit", "exit_group"})

# record as a user runs it (events of failed calls, stack samples, TCP): those add work that
# competes with counting (2,000 threads lose process events with them, not without); the
# session is kept in memory only.
RECORD_FLAGS = ("record", "--json", "--per-process", "--no-journal")

# The same small environment for every launch, so a command launched directly and the same
# command under strace (in a driver launched the same way) see the same variables.
BASE_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "TERM": "xterm"}

# How the JSON may name an ABI (a code or a table name): the table's name on this machine.
ABI_NAMES: dict[object, str] = {0: "x86_64", 1: "i386", 2: "x32", "native": "x86_64",
                                "compat": "i386"}
LABELLED = re.compile(r"(?P<name>.+) \((?P<abi>[a-z0-9_]+)\)")


def user_env(user: int | None) -> dict[str, str]:
    """record's environment: as root, or as root under sudo for `user` (the launched command
    then runs as that user)."""
    if user is None:
        return dict(BASE_ENV)
    return {**BASE_ENV, "SUDO_UID": str(user), "SUDO_GID": str(user)}


class Recording:
    """One `record --json --per-process` run: its document and its process tree."""

    def __init__(self, doc: dict[str, Any], returncode: int, stderr: str) -> None:
        self.doc = doc
        self.returncode = returncode
        self.stderr = stderr
        self.arch = str(doc["target"].get("arch") or "x86_64")
        self.processes: dict[int, dict[str, Any]] = {p["pid"]: p for p in doc["processes"]}
        self.per_pid: dict[int, Calls] = {
            entry["pid"]: table_of(entry["syscalls"], self.arch) for entry in doc["per_process"]}

    @property
    def command_pid(self) -> int:
        return int(self.doc["target"]["command_pid"])

    def children(self, pid: int) -> list[int]:
        return sorted(p for p, info in self.processes.items() if info["ppid"] == pid and p != pid)

    def subtree(self, pid: int) -> list[int]:
        out, todo = [], [pid]
        while todo:
            p = todo.pop()
            out.append(p)
            todo.extend(self.children(p))
        return sorted(out)

    def calls(self, pids: Iterable[int]) -> Calls:
        return add(*(self.per_pid.get(p, {}) for p in pids))

    def drops(self) -> dict[str, int]:
        """The losses that make counts inexact (events are not counts)."""
        d = self.doc["drops"]
        return {k: d[k] for k in ("stats_full", "proc_events") if d.get(k)}


def table_of(rows: Iterable[Mapping[str, Any]], arch: str) -> Calls:
    """(ABI, name) -> (calls, errors) of record's JSON rows; a row without an ABI is the
    host's (sessions and builds before rows carried one)."""
    out: Calls = {}
    for row in rows:
        name, abi = str(row["syscall"]), row.get("abi")
        labelled = LABELLED.fullmatch(name)
        if labelled:
            name = labelled["name"]
            abi = abi if abi is not None else labelled["abi"]
        abi_name = arch if abi is None else ABI_NAMES.get(abi, str(abi))
        before = out.get((abi_name, name), (0, 0))
        out[(abi_name, name)] = (before[0] + int(row["count"]), before[1] + int(row["errors"]))
    return out


def add(*tables: Calls) -> Calls:
    out: Calls = {}
    for table in tables:
        for key, (calls, errors) in table.items():
            before = out.get(key, (0, 0))
            out[key] = (before[0] + calls, before[1] + errors)
    return out


def subtract(table: Calls, minus: Calls) -> Calls:
    """table - minus; an entry below zero stays (negative): it shows as a difference."""
    out = dict(table)
    for key, (calls, errors) in minus.items():
        before = out.get(key, (0, 0))
        out[key] = (before[0] - calls, before[1] - errors)
    return {k: v for k, v in out.items() if v != (0, 0)}


def without_never_returning(table: Calls) -> Calls:
    return {k: v for k, v in table.items() if k[1] not in NEVER_RETURN}


def differences(expected: Calls, got: Calls) -> list[str]:
    """Each (ABI, syscall) whose calls or errors differ: 'abi name: expected (c, e), got (c, e)'."""
    lines = []
    for key in sorted(set(expected) | set(got)):
        want, have = expected.get(key, (0, 0)), got.get(key, (0, 0))
        if want != have:
            lines.append(f"{key[0]} {key[1]}: expected (calls, errors) {want}, got {have}")
    return lines


def assert_same(expected: Calls, got: Calls, what: str) -> None:
    diff = differences(expected, got)
    assert not diff, f"{what}: {len(diff)} rows differ\n  " + "\n  ".join(diff)


def strace_table(path: Path) -> Calls:
    """`strace -c -U name,calls,errors` output: one table per personality, the first the
    host's, then 'System call usage summary for 32 bit mode:' (i386) or 'x32 mode:'."""
    out: Calls = {}
    abi = "x86_64"
    for line in path.read_text().splitlines():
        if line.startswith("System call usage summary for"):
            abi = "x32" if "x32" in line else "i386" if "32 bit" in line else "x86_64"
            continue
        parts = line.split()
        if not parts or parts[0] in ("syscall", "total") or set(parts[0]) == {"-"}:
            continue
        calls, errors = int(parts[1]), int(parts[2]) if len(parts) > 2 else 0
        before = out.get((abi, parts[0]), (0, 0))
        out[(abi, parts[0])] = (before[0] + calls, before[1] + errors)
    return out


def record(argv: list[str], user: int | None = None, timeout: float = 240,
           timing: str = "exact") -> Recording:
    """`sikte-tui record` of a launched command, to its end (the command exits)."""
    result = subprocess.run([sys.executable, "-m", "cli.main", *RECORD_FLAGS, "--timing", timing,
                             "--", *argv],
                            capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                            env=user_env(user))
    try:
        doc = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"record printed no JSON (exit {result.returncode}): "
                    f"{result.stderr[-3000:]}")
    return Recording(doc, result.returncode, result.stderr)


@contextmanager
def shared_dir(owner: int | None = None) -> Iterator[Path]:
    """A new directory under /tmp that `nobody` can reach (0755), owned by owner if given."""
    path = Path(tempfile.mkdtemp(prefix="sikte-fidelity-"))
    path.chmod(0o755)
    if owner is not None:
        os.chown(path, owner, owner)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def chown_tree(path: Path, owner: int) -> None:
    for dirpath, dirnames, filenames in os.walk(path):
        os.chown(dirpath, owner, owner)
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), owner, owner, follow_symlinks=False)


def compile_c(source: Path, out: Path, *flags: str) -> str:
    result = subprocess.run(["gcc", "-O2", *flags, "-o", str(out), str(source)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"gcc {' '.join(flags)} {source.name} failed (make test installs gcc and, "
                    f"on amd64, gcc-multilib): {result.stderr[-1500:]}")
    out.chmod(0o755)
    return str(out)


CALIBRATION = "known64"
# known64.c's own calls, by construction (its execve included; exit_group never returns).
KNOWN64: Calls = {("x86_64", "execve"): (1, 0), ("x86_64", "getppid"): (3, 0)}


@dataclass
class Wrapped:
    """One record of strace_driver.py: each workload under `strace -f -c`, in one run."""

    recording: Recording
    strace_pids: dict[str, int]
    tables: dict[str, Calls]
    argv: dict[str, list[str]]

    def first_tracee(self, name: str) -> int:
        """The process strace started for the workload: strace's child that executed a
        program (strace's other children are its own feature probes and never exec)."""
        run = self.recording
        (pid,) = [p for p in run.children(self.strace_pids[name])
                  if any(key[1] == "execve" for key in run.per_pid.get(p, {}))]
        return pid

    def traced_calls(self, name: str) -> Calls:
        """sikte-tui's counts of every process strace traced for the workload."""
        run = self.recording
        return run.calls(run.subtree(self.first_tracee(name)))

    @property
    def before_exec(self) -> Calls:
        """strace's child's calls before its execve (strace does not count them), measured
        on the calibration program, whose own calls are known."""
        return subtract(self.traced_calls(CALIBRATION),
                        {**KNOWN64, ("x86_64", "exit_group"): (1, 0)})

    def compared(self, name: str) -> Calls:
        """sikte-tui's counts of what strace traced for the workload, as strace counts:
        without strace's child's work before its execve, and without calls that never
        return."""
        return subtract(without_never_returning(self.traced_calls(name)), self.before_exec)


def require_strace_columns() -> None:
    """strace -c with -U (its columns: name, calls, errors), which strace 6.1 has."""
    if shutil.which(STRACE) is None:
        pytest.fail(f"{STRACE} is missing: make test installs strace")
    probe = subprocess.run([STRACE, "-f", "-c", "-U", "name,calls,errors", "-o", os.devnull,
                            "--", "/bin/true"], capture_output=True, text=True)
    if probe.returncode != 0:
        version = subprocess.run([STRACE, "-V"], capture_output=True, text=True).stdout
        pytest.fail(f"this strace has no -U name,calls,errors (6.1 has): {version[:80]!r} "
                    f"{probe.stderr[-300:]}")


def record_under_strace(workloads: Mapping[str, list[str]], folder: Path,
                        known64: str, user: int | None = None) -> Wrapped:
    """Record, as root or launched for `user`, a driver that runs the calibration program
    and then each workload under strace -f -c. folder: the user's, for strace's tables."""
    require_strace_columns()
    argv = {CALIBRATION: [known64], **workloads}
    plan = folder / "plan.json"
    plan.write_text(json.dumps({"dir": str(folder), "workloads": argv}))
    driver = folder / "strace_driver.py"
    shutil.copy(HERE / "strace_driver.py", driver)
    for path in (plan, driver):
        path.chmod(0o644)
    run = record([PYTHON, str(driver), str(plan)], user=user)
    assert run.returncode == 0, run.stderr[-3000:]
    pids = json.loads((folder / "pids.json").read_text())
    assert {name: status for name, (_pid, status) in pids.items()} == dict.fromkeys(argv, 0)
    tables = {name: strace_table(folder / f"{name}.strace") for name in argv}
    return Wrapped(run, {n: p for n, (p, _s) in pids.items()}, tables, argv)
