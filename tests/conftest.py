"""Shared test hooks: the eBPF gate.

Kernel tests are marked `ebpf`. They skip where root or eBPF is missing, except under
SIKTE_REQUIRE_EBPF=1 (set by .ci/run), where a skip would hide a broken engine and so fails.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os

import pytest


@functools.cache
def ebpf_unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "not root"
    try:
        import bcc
    except ImportError:
        return "bcc is not importable (install python3-bpfcc)"
    if not hasattr(bcc, "BPF"):
        return "the imported 'bcc' is not BPF's (pip uninstall bcc; use python3-bpfcc)"
    from tracing.engine import tracefs

    root = tracefs.ensure_mounted()  # as the engine does: a fresh boot may not have it
    if root is None or not (root / "events" / "raw_syscalls").is_dir():
        return "no raw_syscalls tracepoints in tracefs"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("ebpf") is None:
        return
    reason = ebpf_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("SIKTE_REQUIRE_EBPF") == "1":
        pytest.fail(f"SIKTE_REQUIRE_EBPF=1 but eBPF is unavailable: {reason}", pytrace=False)
    pytest.skip(f"no eBPF: {reason}")


def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run `async def` tests (Pilot) on a fresh event loop each, without pytest-asyncio."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = inspect.signature(pyfuncitem.obj).parameters
    asyncio.run(pyfuncitem.obj(**{n: pyfuncitem.funcargs[n] for n in names}))
    return True


@pytest.fixture
def make_journal():
    """A journal file written from recorded snapshots, as a trace would write it."""
    from tracing.session.journal import Journal

    def make(path, snapshots):
        journal = Journal(path, {"targets": list(snapshots[-1].targets)})
        for s in snapshots:
            journal.put(s)
        journal.close()
        return path

    return make
