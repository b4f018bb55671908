"""A real trace whose engine thread fails after it started: the source says so once, in one
line, the journal records why, and stopping afterwards is clean."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest

from tracing.engine.tracer import TraceConfig, Tracer
from tracing.session.journal import JournalOptions
from tracing.sources import LiveSource

pytestmark = pytest.mark.ebpf


def test_a_tick_that_raises_reaches_the_ui_and_the_journal(tmp_path: Path, monkeypatch):
    ticks = 0
    real_tick = Tracer._tick

    def failing_tick(self: Tracer, final: bool) -> bool:
        nonlocal ticks
        ticks += 1
        if ticks == 3:
            raise OSError(28, "No space left on device")
        return real_tick(self, final)

    monkeypatch.setattr(Tracer, "_tick", failing_tick)
    db = tmp_path / "s.sikte.db"
    source = LiveSource(TraceConfig(command=("/bin/sleep", "30"), sample_hz=0, tcp=False,
                                    docker=False),
                        JournalOptions(db_path=db))
    failures: list[str] = []
    failed = threading.Event()
    snapshots = []

    def on_failure(reason: str) -> None:
        failures.append(reason)
        failed.set()

    source.start(snapshots.append, lambda _text: None, on_failure)
    try:
        assert failed.wait(30), "the failure never reached the UI"
        assert len(snapshots) == 2  # the table keeps what these showed
        assert failures == ["the tracer stopped (No space left on device)"]
        assert source.failure == failures[0]
    finally:
        source.stop_command()
        source.stop()
    meta = dict(sqlite3.connect(db).execute("SELECT key, value FROM meta"))
    assert json.loads(meta["error"]) == "the tracer stopped (No space left on device)"
    assert source.saved_line() == f"session saved in {db} (sikte-tui open to browse it)"
