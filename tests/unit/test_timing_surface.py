"""Issue 18: the timing mode where a person meets it. `--timing` parses to a Timing (a bad one
is one line, exit 2); a snapshot says how its calls were timed; record's text and JSON mark
sampled time figures as estimates ("~", `"estimated": true`) and show unmeasured ones as "-"
or null, never as 0; the session keeps the mode (journal meta, session.json, replay), and an
older session without it reads as exact."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import MappingProxyType

import pytest

from tracing.model.intervals import Interval, ProcessCount, format_interval, interval_json
from tracing.model.report import format_summary, summary_json
from tracing.model.snapshots import SnapshotBuilder
from tracing.model.stats import Drops, Snapshot, StatKey, SyscallStats, TraceState, no_events
from tracing.model.timing import (
    Timing,
    format_time,
    parse_timing,
    timing_note,
    timing_of,
)
from tracing.session.export import export_parquet
from tracing.session.replay import load_snapshots, snapshot_from_dict, snapshot_to_dict
from tracing.session.stored import open_session
from tracing.session.window import whole, window_snapshot

FIXTURE = Path(__file__).resolve().parents[1] / "tui" / "data" / "session.jsonl.gz"
GETPPID, NANOSLEEP = 110, 35  # x86_64

# 3 getppid (1 µs each) and 2 nanosleeps (1 ms and 3 ms: total 4 ms, avg 2 ms).
STATS = {
    StatKey(7, 7, GETPPID): SyscallStats(3, 0, 3_000, 1_000, 1_000, ((64, 3),)),
    StatKey(7, 7, NANOSLEEP): SyscallStats(2, 1, 4_000_000, 1_000_000, 3_000_000,
                                           ((152, 1), ((168, 1)))),
}
# With timing off the kernel counts and errors only: every time figure 0.
OFF_STATS = {k: SyscallStats(s.count, s.errors) for k, s in STATS.items()}


def snapshot(timing: str, stats: dict[StatKey, SyscallStats] | None = None) -> Snapshot:
    stats = STATS if stats is None else stats
    return Snapshot(
        seq=1, ts_ns=2_000_000_000, wall_time=0.0, start_ts_ns=1_000_000_000,
        start_wall_time=0.0, arch="x86_64", state=TraceState.EXITED,
        stats=MappingProxyType(stats), interval=MappingProxyType(stats), interval_s=1.0,
        processes=MappingProxyType({}), events=no_events(), proc_events=(), drops=Drops(),
        tracer_cpu_s=0.0, timing=timing)


def table_lines(text: str) -> dict[str, list[str]]:
    """The summary table's rows by their last column (the syscall name, or "total")."""
    return {line.split()[-1]: line.split()[:-1] for line in text.splitlines()
            if line.split() and line.split()[-1] in ("getppid", "nanosleep", "total")}


# -- the mode itself -------------------------------------------------------------------------


@pytest.mark.parametrize("text, mode", [("exact", Timing.EXACT), ("sampled", Timing.SAMPLED),
                                        ("off", Timing.OFF), (" Sampled ", Timing.SAMPLED),
                                        ("OFF", Timing.OFF)])
def test_parse_timing_names_each_mode(text: str, mode: Timing) -> None:
    assert parse_timing(text) is mode
    assert str(mode) == mode.value  # what sessions, JSON and Snapshot.timing hold


def test_a_bad_mode_names_the_choices_and_is_shown_escaped() -> None:
    with pytest.raises(ValueError) as err:
        parse_timing("fast\x1b[2J")
    assert str(err.value) == (
        "unknown timing mode 'fast\\x1b[2J': choose one of exact, sampled, off")


def test_an_unknown_or_missing_stored_mode_is_exact() -> None:
    # Older sessions have no timing: their figures were all exact.
    assert [timing_of(v) for v in (None, "", "bogus", 3, "sampled", Timing.OFF)] == [
        Timing.EXACT, Timing.EXACT, Timing.EXACT, Timing.EXACT, Timing.SAMPLED, Timing.OFF]


def test_time_figures_per_mode() -> None:
    assert [format_time("12ms", m) for m in ("exact", "sampled", "off")] == [
        "12ms", "~12ms", "-"]
    assert timing_note("exact") == ""
    assert timing_note("sampled").startswith("~ marks estimates")


def test_the_builder_copies_the_mode_into_every_snapshot() -> None:
    builder = SnapshotBuilder(0, 0.0, "x86_64", timing=Timing.SAMPLED)
    built = [builder.build(ts_ns=t, wall_time=0.0, state=TraceState.TRACING, changes={},
                           events=no_events(), proc_events=(), processes={}, drops=Drops(),
                           tracer_cpu_s=0.0) for t in (1, 2)]
    assert [s.timing for s in built] == ["sampled", "sampled"]
    assert type(built[0].timing) is str  # a plain str: the journal writes it as JSON
    assert SnapshotBuilder(0, 0.0, "x86_64").build(
        ts_ns=1, wall_time=0.0, state=TraceState.TRACING, changes={}, events=no_events(),
        proc_events=(), processes={}, drops=Drops(), tracer_cpu_s=0.0).timing == "exact"


# -- record's text and JSON ------------------------------------------------------------------


def test_exact_text_is_unchanged() -> None:
    text = format_summary(snapshot("exact"))
    rows = table_lines(text)
    assert rows["nanosleep"] == ["99.93", "2", "1", "4ms", "2ms", "2.23ms", "3ms", "3ms",
                                 "3ms"]
    assert rows["total"] == ["100.00", "5", "1", "4ms", "801µs"]
    assert "~" not in text and "timing" not in text


def test_sampled_text_marks_every_time_figure_and_says_so() -> None:
    exact = table_lines(format_summary(snapshot("exact")))
    text = format_summary(snapshot("sampled"))
    rows = table_lines(text)
    # % time, calls and errors as exact (getppid has no errors: blank); every time figure
    # the same, with "~".
    for name, counts in (("getppid", 2), ("nanosleep", 3)):
        assert rows[name][:counts] == exact[name][:counts]
        assert rows[name][counts:] == ["~" + v for v in exact[name][counts:]]
    assert rows["total"] == ["100.00", "5", "1", "~4ms", "~801µs"]
    assert text.splitlines()[-1] == (
        "~ marks estimates: times come from a sample of each thread's calls "
        "(--timing sampled); counts and errors are exact")


def test_off_text_shows_no_time_figures() -> None:
    text = format_summary(snapshot("off", OFF_STATS), per_process=True)
    rows = table_lines(text)
    assert rows["nanosleep"] == ["-", "2", "1", "-", "-", "-", "-", "-", "-"]
    assert rows["getppid"] == ["-", "3", "-", "-", "-", "-", "-", "-"]  # no errors: blank
    assert rows["total"] == ["-", "5", "1", "-", "-"]
    assert text.splitlines()[-1] == (
        "- marks what was not measured: --timing off counts calls and errors only")
    assert "0ns" not in text


def test_json_rows_say_what_is_estimated_or_not_measured() -> None:
    exact = summary_json(snapshot("exact"), {})
    sampled = summary_json(snapshot("sampled"), {"timing": "sampled"})
    off = summary_json(snapshot("off", OFF_STATS), {})
    assert exact["target"] == {"timing": "exact"}
    assert sampled["target"] == {"timing": "sampled"}
    assert off["target"] == {"timing": "off"}
    exact_rows = {r["syscall"]: r for r in exact["syscalls"]}  # type: ignore[attr-defined]
    assert "estimated" not in exact_rows["nanosleep"]
    assert exact_rows["nanosleep"]["total_ns"] == 4_000_000
    for row in sampled["syscalls"]:  # type: ignore[attr-defined]
        assert row["estimated"] is True
        assert row == {**exact_rows[row["syscall"]], "estimated": True}
    nano = next(r for r in off["syscalls"] if r["syscall"] == "nanosleep")  # type: ignore[attr-defined]
    assert nano == {"syscall": "nanosleep", "abi": "x86_64", "nr": NANOSLEEP, "count": 2,
                    "errors": 1, "total_ns": None, "avg_ns": None, "p50_ns": None,
                    "p95_ns": None, "p99_ns": None, "max_ns": None}
    json.dumps(off)  # null, not NaN


def test_per_process_json_is_marked_too() -> None:
    doc = summary_json(snapshot("sampled"), {}, per_process=True)
    rows = [r for p in doc["per_process"] for r in p["syscalls"]]  # type: ignore[attr-defined]
    assert len(rows) == 2 and all(r["estimated"] is True for r in rows)


def test_intervals_are_marked_like_the_summary() -> None:
    view = snapshot("sampled")
    interval = Interval(1, 0, 1_000_000_000, view, (), 1)
    assert all(r["estimated"] is True for r in interval_json(interval)["syscalls"])  # type: ignore[attr-defined]
    off = Interval(1, 0, 1_000_000_000, snapshot("off", OFF_STATS), (), 1)
    assert all(r["total_ns"] is None for r in interval_json(off)["syscalls"])  # type: ignore[attr-defined]


# -- sessions --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def recorded() -> list[Snapshot]:
    return load_snapshots(FIXTURE)


@pytest.mark.parametrize("timing", ["sampled", "off"])
def test_the_session_keeps_the_mode(tmp_path: Path, recorded: list[Snapshot], make_journal,
                                    timing: str) -> None:
    items = [dataclasses.replace(s, timing=timing) for s in recorded]
    path = make_journal(tmp_path / "s.sikte.db", items)
    journal = open_session(path)
    assert journal.meta["timing"] == timing
    assert window_snapshot(journal, whole(journal), seq=1).timing == timing
    out = export_parquet(journal, tmp_path / "pq")
    assert json.loads((out / "session.json").read_text())["timing"] == timing
    parquet = open_session(out)
    assert window_snapshot(parquet, whole(parquet), seq=1).timing == timing


def test_an_older_session_reads_as_exact(tmp_path: Path, recorded: list[Snapshot],
                                         make_journal) -> None:
    import sqlite3

    path = make_journal(tmp_path / "s.sikte.db", recorded)
    with sqlite3.connect(path) as db:  # as written before issue 18
        db.execute("DELETE FROM meta WHERE key = 'timing'")
    db.close()
    session = open_session(path)
    assert "timing" not in session.meta
    assert window_snapshot(session, whole(session), seq=1).timing == "exact"


def test_a_replay_recording_keeps_the_mode(recorded: list[Snapshot]) -> None:
    s = dataclasses.replace(recorded[0], timing="sampled")
    assert snapshot_from_dict(json.loads(json.dumps(snapshot_to_dict(s)))).timing == "sampled"
    older = snapshot_to_dict(recorded[0])
    del older["timing"]
    assert snapshot_from_dict(older).timing == "exact"


# -- the command line ------------------------------------------------------------------------


def test_a_bad_timing_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    from cli.main import main

    assert main(["record", "--timing", "fast", "--", "/usr/bin/true"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        "sikte-tui: --timing: unknown timing mode 'fast': choose one of exact, sampled, off"]


@pytest.mark.parametrize("given, mode", [([], Timing.EXACT), (["--timing", "off"], Timing.OFF),
                                         (["--timing", "sampled"], Timing.SAMPLED)])
def test_the_flag_reaches_the_engine_options(given: list[str], mode: Timing) -> None:
    import argparse

    from cli.record_cmd import add_arguments, engine_options

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert engine_options(parser.parse_args([*given, "--", "true"]))["timing"] is mode


def test_format_interval_marks_times() -> None:
    # The interval's processes: without any it says "no calls".
    procs = (ProcessCount(7, "sleeper", 5, 1),)
    text = format_interval(Interval(2, 1_000_000_000, 2_000_000_000, snapshot("sampled"),
                                    procs, 1))
    assert table_lines(text)["nanosleep"][3] == "~4ms"
