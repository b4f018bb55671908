"""`record --trace FILE`: the kept events as strace's lines, written from a thread of its own.

The tracer's thread only queues snapshots (`put` never waits for the disk); the writer thread
decodes each event (tracing.decode.render) and writes its line, in the order the events came,
and flushes at the end. The file is made the invoking user's way (their credentials, 0600,
created without following a link; an earlier file of theirs is replaced); `-` is stderr.
When writing fails (a full disk), the thread stops writing, keeps the first error for the
caller, and lets the rest go: the trace and its session are not affected.

Lines carry a `[pid N] ` prefix, as strace -f's, once the trace has seen more than one
process (several --pid targets, or a target that forked).
"""

from __future__ import annotations

import os
import queue
import sys
import threading
from pathlib import Path
from typing import BinaryIO

from tracing.boundary.userfiles import Owner, invoking_user, open_dir
from tracing.decode.argspec import SpecTable, load_specs
from tracing.decode.render import decode_events, render_line
from tracing.errors import UserError
from tracing.model.stats import Snapshot

STDERR = "-"


def open_trace_file(target: str, owner: Owner | None = None) -> tuple[BinaryIO, bool]:
    """The stream --trace writes to, and whether it is ours to close. A file is created for
    the user without following a link; an earlier regular file of theirs is replaced;
    UserError (one line) when it cannot be."""
    if target == STDERR:
        return os.fdopen(os.dup(sys.stderr.fileno()), "wb"), True
    path = Path(target)
    owner = owner or invoking_user()
    try:
        with open_dir(path.parent, owner) as directory:
            found = directory.lstat(path.name)
            if found is not None and _own_file(found, owner):
                directory.unlink(path.name)
            return directory.create(path.name), True
    except FileExistsError:
        raise UserError(f"--trace {path} exists and is not your own regular file: remove it "
                        "or choose another file", exit_code=2) from None
    except UserError as err:
        raise UserError(f"--trace {err}", exit_code=err.exit_code) from None
    except OSError as err:
        raise UserError(f"--trace {path}: cannot write it ({err.strerror or err}); choose "
                        "another file", exit_code=2) from None


def _own_file(st: os.stat_result, owner: Owner) -> bool:
    import stat

    return stat.S_ISREG(st.st_mode) and st.st_uid == owner.uid


class TraceWriter:
    """Writes each snapshot's events as strace lines, on its own thread."""

    def __init__(self, out: BinaryIO, name: str, close_out: bool = True,
                 specs: SpecTable | None = None) -> None:
        self.name = name  # what the messages call the output
        self.error: str | None = None  # the first write failure, in one line
        self.lines = 0
        self._out, self._close_out = out, close_out
        self._specs = specs
        self._several = False
        self._queue: queue.SimpleQueue[Snapshot | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="sikte-trace", daemon=True)
        self._thread.start()

    def put(self, snapshot: Snapshot) -> None:
        """From any thread; never blocks."""
        self._queue.put(snapshot)

    def close(self, timeout: float = 60.0) -> None:
        """Write what is queued, flush and close the output."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        specs = self._specs or load_specs()
        while (snapshot := self._queue.get()) is not None:
            if self.error is None:
                self._write(snapshot, specs)
        self._finish()

    def _write(self, snapshot: Snapshot, specs: SpecTable) -> None:
        self._several = self._several or len(snapshot.processes) > 1
        text = "".join(event_lines(snapshot, specs, self._several))
        if not text:
            return
        try:
            self._out.write(text.encode("utf-8", errors="backslashreplace"))
        except OSError as err:
            self.error = f"cannot write {self.name} ({err.strerror or err})"
            return
        self.lines += text.count("\n")

    def _finish(self) -> None:
        try:
            self._out.flush()
        except OSError as err:
            self.error = self.error or f"cannot write {self.name} ({err.strerror or err})"
        if self._close_out:
            try:
                self._out.close()
            except OSError as err:
                self.error = self.error or f"cannot write {self.name} ({err.strerror or err})"


def event_lines(snapshot: Snapshot, specs: SpecTable, several: bool) -> list[str]:
    """The snapshot's events as strace lines, each ending in a newline."""
    events = snapshot.events
    if not len(events):
        return []
    data = snapshot.event_data if len(snapshot.event_data) == len(events) else ()
    decoded = decode_events(events, data, snapshot.arch, specs, snapshot.paths)
    return [render_line(event, several) + "\n" for event in decoded]
