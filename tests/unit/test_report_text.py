"""`record`'s text output (tracing.model.report) shows what traced processes control as data: a
process renamed to an escape sequence (prctl PR_SET_NAME), a probe or a remote endpoint from a
crafted session print escaped, never as control characters; the JSON form escapes them too."""

from __future__ import annotations

import json
from types import MappingProxyType

from tracing.model.connections import OUTBOUND, Connection
from tracing.model.probes import PROBE_NR_BASE
from tracing.model.report import format_connections, format_summary, summary_json
from tracing.model.stats import Drops, ExitStatus, ProcessInfo, Snapshot, StatKey, SyscallStats

EVIL = "\x1b]0;PWNED\x07"
EVIL_SHOWN = "\\x1b]0;PWNED\\x07"
GETPPID = 110  # x86_64


def snapshot() -> Snapshot:
    stats = {
        StatKey(7, 7, GETPPID): SyscallStats(3, 0, 3_000, 1_000, 1_000, ((64, 3),)),
        StatKey(7, 7, PROBE_NR_BASE): SyscallStats(1, 0, 500, 500, 500, ((60, 1),)),
        StatKey(8, 8, GETPPID): SyscallStats(2, 0, 2_000, 1_000, 1_000, ((64, 2),)),
    }
    return Snapshot(
        seq=1, ts_ns=2_000_000_000, wall_time=0.0, start_ts_ns=1_000_000_000,
        start_wall_time=0.0, arch="x86_64", state="exited", stats=MappingProxyType(stats),
        interval=MappingProxyType(stats), interval_s=1.0,
        processes=MappingProxyType({
            7: ProcessInfo(7, 1, EVIL, "/tmp/x", ("x",), "x86_64", exit=ExitStatus(0)),
            8: ProcessInfo(8, 7, "\u202etxt.exe", "/tmp/y", ("y",), "x86_64")}),
        events=None, proc_events=(), drops=Drops(), tracer_cpu_s=0.0,  # type: ignore[arg-type]
        probes=MappingProxyType({PROBE_NR_BASE: f"uprobe:/tmp/{EVIL}:f\nx"}))


def test_per_process_summary_shows_names_escaped() -> None:
    text = format_summary(snapshot(), per_process=True)
    assert not any(c in text for c in "\x1b\x07\u202e")
    lines = text.splitlines()
    assert lines[0] == f"pid 7 ({EVIL_SHOWN}), exit 0"
    assert lines[3].endswith(" getppid") and lines[4].endswith(
        f" uprobe:/tmp/{EVIL_SHOWN}:f\\nx")
    assert "pid 8 (\\u202etxt.exe)" in lines
    # Every line is one line: the probe's newline did not start another
    assert sum(ln.startswith("pid ") for ln in lines) == 2


def test_summary_over_all_processes() -> None:
    lines = format_summary(snapshot()).splitlines()
    assert [ln.split()[-1] for ln in lines[2:4]] == ["getppid", f"uprobe:/tmp/{EVIL_SHOWN}:f\\nx"]
    assert lines[-1].split()[-1] == "total"


def test_connections_table_escapes_the_remote() -> None:
    conn = Connection(1, 0, 7, 7, EVIL, 0, 4, "10.0.0.1", 1, "10.0.0.2", 2, OUTBOUND,
                      "CLOSE", end_ts_ns=5, result="ok")
    text = format_connections([conn])
    assert "\x1b" not in text and "10.0.0.2:2" in text
    crafted = Connection(2, 0, 7, 7, EVIL, 0, 4, "10.0.0.1", 1, EVIL, 2, OUTBOUND, "CLOSE",
                         end_ts_ns=5, result="ok")  # only a crafted session file holds this
    text = format_connections([crafted])
    assert not any(c in text for c in "\x1b\x07")
    assert f"out {EVIL_SHOWN}:2" in text


def test_json_escapes_control_characters() -> None:
    out = json.dumps(summary_json(snapshot(), {"command": [EVIL]}, per_process=True))
    assert not any(c in out for c in "\x1b\x07\u202e")
    assert json.loads(out)["processes"][0]["comm"] == EVIL  # and keeps the exact name
