"""Fixtures for kernel tests: a compiled workload with exactly known syscalls, and a way to
run the real tracer to the end and keep every snapshot."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tracing.engine.tracer import TraceConfig, Tracer
from tracing.model.report import syscall_rows
from tracing.model.stats import Snapshot, event_objects

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def workload(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("workload") / "workload"
    subprocess.run(["gcc", "-O2", "-o", str(out), str(HERE / "workload.c")], check=True)
    out.parent.chmod(0o755)  # reachable when a test runs it as another user
    return str(out)


class TraceRun:
    def __init__(self, tracer: Tracer, snapshots: list[Snapshot]) -> None:
        self.tracer = tracer
        self.snapshots = snapshots
        self.last = snapshots[-1]

    def count(self, name: str, pid: int | None = None) -> int:
        return sum(r.stats.count for r in syscall_rows(self.last, pid) if r.name == name)

    def row(self, name: str):
        return next(r for r in syscall_rows(self.last) if r.name == name)

    @property
    def events(self) -> list:
        return [e for s in self.snapshots for e in event_objects(s.events)]


def run_trace(config: TraceConfig, timeout: float = 60,
              while_running: Callable[[Tracer], None] | None = None) -> TraceRun:
    snapshots: list[Snapshot] = []
    tracer = Tracer(config, on_snapshot=snapshots.append)
    tracer.start()
    if while_running is not None:
        while_running(tracer)
    if not tracer.join(timeout):
        tracer.stop()
        tracer.join(10)
        pytest.fail(f"the trace did not end within {timeout} s")
    if tracer.error is not None:
        raise tracer.error
    return TraceRun(tracer, snapshots)


@pytest.fixture
def trace() -> Callable[..., TraceRun]:
    return run_trace


# The fidelity tests' C programs (tests/ebpf/NAME.c) and how each is built. nolibc programs
# make exactly the calls written in them; i386 ones need gcc -m32 (gcc-multilib).
C_PROGRAMS: dict[str, tuple[str, ...]] = {
    "known64": ("-nostdlib", "-static", "-ffreestanding", "-fno-pie", "-no-pie"),
    "reexec": (),
    "die": (),
    "many_threads": ("-pthread",),
    "i386_calls": ("-m32",),
    "exit_only": ("-pthread",),
}


@pytest.fixture(scope="session")
def c_program() -> Iterator[Callable[[str], str]]:
    """build(NAME) -> the path of tests/ebpf/NAME.c compiled (once a session) into a folder
    every user can reach, so a command launched for a sudo user runs it too."""
    from tests.ebpf.fidelity import compile_c, shared_dir

    built: dict[str, str] = {}
    with shared_dir() as folder:
        def build(name: str) -> str:
            if name not in built:
                built[name] = compile_c(HERE / f"{name}.c", folder / name, *C_PROGRAMS[name])
            return built[name]

        yield build
