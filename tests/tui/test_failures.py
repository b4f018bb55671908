"""Failures reach the person (issue 13): a source that fails after it started, a journal
that fell back to memory, a crash, a failure while stopping; `o` on a traced PID; `P` back
to the picker. Driven by Pilot on the recorded replay fixture (no root)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from cli.interactive_cmd import exit_lines
from tracing.errors import UserError
from tracing.model.stats import Snapshot
from tracing.sources import (
    Capabilities,
    FailureCallback,
    OutputCallback,
    ReplaySource,
    SnapshotCallback,
)
from tui.app import SikteApp
from tui.live import LiveScreen
from tui.picker import PickerScreen
from tui.session_dialogs import (
    ConfirmNewTrace,
    ExportBeforeLeaving,
    ExportDialog,
    dialog_wording,
)
from tui.table import KeyedTable
from tui.widgets import OutputPanel, StatusHeader

from .conftest import NOW, until

SIZE = (160, 48)


class FailingSource(ReplaySource):
    """A live trace whose thread dies after a few snapshots, as the tracer's would."""

    capabilities = Capabilities(live=True)

    def __init__(self, snapshots: Sequence[Snapshot], reason: str = "") -> None:
        super().__init__(snapshots, title="pid 4242")
        self.reason = reason
        self.stopped = threading.Event()
        self.journal_is_failed = False
        self.stop_error: str | None = None

    def start(self, on_snapshot: SnapshotCallback, on_output: OutputCallback,
              on_failure: FailureCallback | None = None) -> None:
        def run() -> None:
            for snapshot in self.snapshots:
                on_snapshot(snapshot)
            if self.reason and on_failure is not None:
                on_failure(self.reason)

        threading.Thread(target=run, daemon=True).start()

    def stop(self) -> None:
        self.stopped.set()
        if self.stop_error is not None:
            raise UserError(self.stop_error, exit_code=1)

    def journal_line(self) -> str | None:
        if self.journal_is_failed:
            return ("the journal could not be written (database or disk is full); the "
                    "session is kept in memory")
        return "journal /tmp/x.sikte.db"

    def journal_failed(self) -> bool:
        return self.journal_is_failed

    def stored(self):
        return None


def header(app: SikteApp) -> str:
    return app.screen.query_one(StatusHeader).render().plain  # type: ignore[union-attr]


def panel_text(panel: OutputPanel) -> str:
    """The panel's text as written, its wrapped lines joined again."""
    return " ".join(" ".join(line.text.split()) for line in panel.lines)


async def test_a_tracer_failure_after_start_is_in_the_header(snapshots):
    source = FailingSource(snapshots, "the tracer stopped (OSError: [x] bad \x1b[2J)")
    app = SikteApp(source=source, clock=lambda: NOW)
    async with app.run_test(size=SIZE) as pilot:
        live = app.screen
        assert isinstance(live, LiveScreen)
        await until(pilot, lambda: "failed" in header(app))
        await pilot.pause(0.6)  # two more render ticks: a late snapshot must not hide it
        lines = header(app).splitlines()
        assert lines[0].startswith("● failed")
        assert lines[2] == ("✗ the tracer stopped (OSError: [x] bad \\x1b[2J) · the counts "
                            "until then stay on screen and in the session: x exports it, "
                            "q quits")
        assert live.query_one(StatusHeader).size.height == 3
        # The table stays as last seen.
        assert live.query_one(KeyedTable).row_count > 10
        assert app.is_running


async def test_a_journal_in_memory_is_in_the_header_and_quitting_offers_export(snapshots):
    source = FailingSource(snapshots)
    source.journal_is_failed = True
    app = SikteApp(source=source, clock=lambda: NOW)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(header(app).splitlines()) == 3)
        assert header(app).splitlines()[2] == (
            "⚠ the journal could not be written (database or disk is full); the session is "
            "kept in memory: x exports it (quitting offers to)")
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, ExportBeforeLeaving))
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ExportDialog))
        await pilot.press("escape")  # no export: nothing is lost yet, we stay
        await until(pilot, lambda: isinstance(app.screen, LiveScreen))
        assert app.is_running and not source.stopped.is_set()
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, ExportBeforeLeaving))
        await pilot.press("d")
        await until(pilot, lambda: not app.is_running)
    assert source.stopped.is_set()
    assert app.return_value == 0


async def test_a_failure_while_stopping_is_one_line_and_quits(snapshots):
    source = FailingSource(snapshots)
    source.stop_error = "the tracer did not stop within 10 s: the session misses its last moments"
    app = SikteApp(source=source, clock=lambda: NOW)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen.query_one(KeyedTable).row_count > 10)
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running)
    assert app.return_value == 0 and app.crash is None
    assert exit_lines(app) == [source.stop_error]


@pytest.mark.parametrize("source, said", [
    (FailingSource, "no output: sikte-tui did not launch this process (its output goes where "
     "it always did; sikte-tui -- COMMAND shows a command's output here)"),
    (ReplaySource, "no output: a saved session keeps no command output"),
], ids=["traced pid", "saved session"])
async def test_o_says_why_the_output_is_empty(snapshots, source, said):
    app = SikteApp(source=source(snapshots), clock=lambda: NOW)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("o")
        panel = app.screen.query_one(OutputPanel)
        await until(pilot, lambda: panel.display and panel.lines)
        assert panel_text(panel) == said


async def test_p_stops_the_trace_and_opens_the_picker(snapshots, processes):
    source = FailingSource(snapshots)
    app = SikteApp(source=source, lister=lambda: list(processes), clock=lambda: NOW)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen.query_one(KeyedTable).row_count > 10)
        await pilot.press("P")
        await until(pilot, lambda: isinstance(app.screen, ConfirmNewTrace))
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, LiveScreen))
        assert not source.stopped.is_set()
        await pilot.press("P")
        await until(pilot, lambda: isinstance(app.screen, ConfirmNewTrace))
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, PickerScreen))
        assert source.stopped.is_set() and app.source is None
        await until(pilot, lambda: app.screen.query_one(KeyedTable).row_count == len(processes))


async def test_p_is_in_the_help_and_the_palette():
    from tui.actions import actions_for

    assert [a.keys for a in actions_for("live") if a.name == "new_trace"] == ["P"]


async def test_a_crash_is_one_line_with_the_details_in_a_file(snapshots):
    app = SikteApp(source=FailingSource(snapshots), clock=lambda: NOW)
    with pytest.raises(ZeroDivisionError):
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.screen.query_one(KeyedTable).row_count > 10)
            app.call_later(lambda: 1 / 0)
            await until(pilot, lambda: not app.is_running)
    assert app._exit_renderables == []  # Textual would print its traceback from these
    assert app.crash is not None
    assert app.crash.startswith("internal error (ZeroDivisionError: division by zero); "
                                "details in ")
    details = Path(app.crash.split("details in ")[1].split(";")[0])
    try:
        assert "ZeroDivisionError" in details.read_text()
    finally:
        details.unlink()


@pytest.mark.parametrize(("message", "worded"), [
    ("/x/out already exists; choose another --output or add --force",
     "/x/out already exists; choose another path or switch on 'replace'"),
    ("cannot write /x/out (No space left on device); choose another --output",
     "cannot write /x/out (No space left on device); choose another path"),
    ("/x/out is not a sikte-tui session; refusing to replace it with --force: choose "
     "another --output", "/x/out is not a sikte-tui session; refusing to replace it: "
     "choose another path"),
])
def test_the_export_dialog_never_mentions_command_line_options(message, worded):
    assert dialog_wording(message) == worded
    assert "--" not in dialog_wording(message)
