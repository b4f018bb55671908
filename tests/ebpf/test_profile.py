"""CPU stack samples and function probes for real (root): a C workload that burns its CPU in
burn_cpu() called from main(), sampled, named, exported, folded and opened again; a uprobe
on a function called an exact number of times."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from tracing.model.samples import neighbours, parse_folded, top_functions, total_samples
from tracing.session.stored import open_session
from tracing.session.window import whole, window_samples
from tracing.sources import StoredSource
from tui.app import SikteApp
from tui.samples import SamplesScreen
from tui.table import KeyedTable

from ..tui.conftest import until

pytestmark = pytest.mark.ebpf

SIKTE = [sys.executable, "-m", "cli.main"]
ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
BURN_MS = 1500
CALLS = 12_345


def sikte(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*SIKTE, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def profile_workload(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("profile") / "profile_workload"
    subprocess.run(["gcc", "-O0", "-fno-omit-frame-pointer", "-o", str(out),
                    str(HERE / "profile_workload.c")], check=True)
    return str(out)


@pytest.fixture(scope="module")
def burned(profile_workload, tmp_path_factory) -> dict:
    """One recording of BURN_MS of CPU in burn_cpu: journal, Parquet and folded stacks."""
    where = tmp_path_factory.mktemp("burned")
    db, out, folded = where / "burn.sikte.db", where / "pq", where / "burn.folded"
    run = sikte("record", "--sample-hz", "199", "--db-path", str(db), "--output", str(out),
                "--folded", str(folded), "--", profile_workload, "burn", str(BURN_MS))
    assert run.returncode == 0, run.stderr
    return {"db": db, "out": out, "folded": folded, "stderr": run.stderr}


def test_burn_cpu_is_the_top_self_function_called_from_main(burned):
    session = open_session(burned["db"])
    samples = window_samples(session, whole(session))
    total = total_samples(samples)
    # 1.5 s of CPU at 199 Hz: about 300 samples (the kernel rounds the period).
    assert 200 <= total <= 400, total
    top = top_functions(samples)[0]
    assert top.function == "burn_cpu"
    assert top.self_count >= 0.5 * total, (top, total)
    assert top.module.endswith("profile_workload")
    callers = dict(neighbours(samples, "burn_cpu").callers)
    assert max(callers, key=callers.__getitem__) == "main"


def test_folded_stacks_parse_and_sum_to_the_sample_count(burned):
    stacks = parse_folded(burned["folded"].read_text())
    session = open_session(burned["db"])
    total = total_samples(window_samples(session, whole(session)))
    assert sum(stacks.values()) == total
    assert f"{total:,} CPU samples written to {burned['folded']}" in burned["stderr"]
    assert any(stack[-2:] == ("main", "burn_cpu") for stack in stacks)
    assert all(stack[0] == "profile_workloa" for stack in stacks)  # comm: 15 characters
    # The same from the saved session, with `export --folded`.
    again = burned["folded"].with_suffix(".again")
    run = sikte("export", str(burned["db"]), "--folded", str(again))
    assert run.returncode == 0, run.stderr
    assert parse_folded(again.read_text()) == stacks


def test_samples_parquet_has_the_samples(burned):
    frame = pd.read_parquet(burned["out"] / "samples.parquet")
    session = open_session(burned["db"])
    total = total_samples(window_samples(session, whole(session)))
    assert int(frame["count"].sum()) == total
    assert {"pid", "tid", "comm", "frames", "modules", "count", "user_frames",
            "kernel_frames"} <= set(frame.columns)
    burn = frame[frame["leaf"] == "burn_cpu"]
    assert int(burn["count"].sum()) >= 0.5 * total
    assert list(burn["frames"].iloc[0][-2:]) == ["main", "burn_cpu"]
    assert (frame["user_frames"] + frame["kernel_frames"] == frame["frames"].map(len)).all()
    leaf = duckdb.connect().execute(
        f"SELECT frames[-1] AS last_frame, sum(count) FROM '{burned['out']}/samples.parquet' "
        "GROUP BY last_frame ORDER BY 2 DESC LIMIT 1").fetchone()
    assert leaf[0] == "burn_cpu"


@pytest.mark.parametrize("which", ["db", "out"])
async def test_samples_survive_export_and_open(burned, which):
    session = open_session(burned[which])
    expected = total_samples(window_samples(open_session(burned["db"]),
                                            whole(open_session(burned["db"]))))
    app = SikteApp(source=StoredSource(session))
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.screen.query(KeyedTable)
                    and app.screen.query_one(KeyedTable).row_count)
        await pilot.press("s")
        screen = await until(pilot, lambda: isinstance(app.screen, SamplesScreen)
                             and f"{expected:,} samples" in str(
                                 app.screen.query_one("#samples-title").render())
                             and app.screen.query_one(KeyedTable).row_count and app.screen)
        assert isinstance(screen, SamplesScreen)
        table = screen.query_one(KeyedTable)
        first = table.rows[0].values
        assert first["function"] == "burn_cpu"
        assert first["self"] >= 0.5 * expected
        assert f"{expected:,} samples" in str(screen.query_one("#samples-title").render())


def test_uprobe_counts_exactly_the_calls(profile_workload):
    run = sikte("record", "--json", "--uprobe", f"{profile_workload}:tick", "--",
                profile_workload, "calls", str(CALLS))
    assert run.returncode == 0, run.stderr
    rows = {r["syscall"]: r for r in json.loads(run.stdout)["syscalls"]}
    probe = rows[f"uprobe:{profile_workload}:tick"]
    assert probe["count"] == CALLS
    assert probe["errors"] == 0 and 0 < probe["p50_ns"] <= probe["max_ns"]
    assert "uretprobe" not in rows  # the probes' own syscall is not the workload's


def test_uprobe_on_libc_counts_the_targets_calls_only(profile_workload, tmp_path):
    """c:getpid is called by the workload's own loop through libc; other processes calling
    it at the same time are not counted."""
    script = tmp_path / "calls.py"
    script.write_text("import os\nfor _ in range(500):\n    os.getpid()\n")
    run = sikte("record", "--json", "--uprobe", "c:getpid", "--", "/usr/bin/python3",
                str(script))
    assert run.returncode == 0, run.stderr
    rows = {r["syscall"]: r for r in json.loads(run.stdout)["syscalls"]}
    # Python caches nothing here: each os.getpid() is one libc getpid() (plus start-up's).
    assert 500 <= rows["uprobe:c:getpid"]["count"] < 600


@pytest.mark.parametrize(("probe", "message"), [
    ("nocolon", "expected BINARY_OR_LIB:FUNCTION"),
    ("/nonexistent/lib.so:f", "no such file /nonexistent/lib.so"),
    ("nosuchlibrary_xyz:f", "no library or program named 'nosuchlibrary_xyz'"),
    ("c:no_such_function_xyz", "no function 'no_such_function_xyz'"),
])
def test_bad_probes_fail_with_one_line(probe, message):
    run = sikte("record", "--uprobe", probe, "--", "true")
    assert run.returncode == 2
    assert message in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert "Traceback" not in run.stderr


def test_a_sample_rate_out_of_range_fails_with_one_line():
    run = sikte("record", "--sample-hz", "5000", "--", "true")
    assert run.returncode == 2 and "--sample-hz takes 0 (off) to 1000" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_an_exited_process_still_resolves(profile_workload, tmp_path):
    """The workload is gone before the last samples are read: its frames still have names."""
    folded = tmp_path / "short.folded"
    run = sikte("record", "--no-journal", "--sample-hz", "499", "--folded", str(folded), "--",
                profile_workload, "burn", "300")
    assert run.returncode == 0, run.stderr
    stacks = parse_folded(folded.read_text())
    named = sum(n for s, n in stacks.items() if "burn_cpu" in s)
    assert named >= 0.5 * sum(stacks.values()) > 0
    # (A sample or two may land in the exec itself, on the launcher's vanished image.)
    assert all(s[s.index("burn_cpu") - 1] == "main" for s in stacks if "burn_cpu" in s)


def test_sampling_off_records_no_samples(profile_workload, tmp_path):
    db = tmp_path / "off.sikte.db"
    run = sikte("record", "--sample-hz", "0", "--db-path", str(db), "--", profile_workload,
                "burn", "200")
    assert run.returncode == 0, run.stderr
    session = open_session(db)
    assert session.samples.empty and session.meta["sample_hz"] == 0
    assert os.path.getsize(db) > 0
