"""`sikte-tui record` with decoded events, on the real kernel: --trace lines against strace's
for the same calls, field by field; events.parquet's paths and errnos; files.parquet's exact
bytes for a reused descriptor number; --json's files; and bad --events / --trace input."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.ebpf

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
N_MISSING = 40
K_BYTES, L_BYTES = 5_500, 700  # 6 writes (5 of 1000 bytes, one of 500), then 1 of 700
ODD_NAME = 'sikte odd "name\n'
LINE = re.compile(r"^(?:\[pid +\d+\] )?(\w+)\((.*)\)\s+= (.*?)(?: <(\d+\.\d{6})>)?$")


@pytest.fixture(scope="module")
def record_workload(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("record-workload") / "record_workload"
    subprocess.run(["gcc", "-O2", "-o", str(out), str(HERE / "record_workload.c")], check=True)
    return str(out)


def sikte(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def record(tmp_path: Path, *command: str, events: str = "failed",
           json_out: bool = False) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    """record --output --trace of a command: (the run, the Parquet directory, the trace)."""
    out, trace = tmp_path / "pq", tmp_path / "trace.txt"
    result = sikte("record", "--events", events, "--output", str(out), "--trace", str(trace),
                   "--db-path", str(tmp_path / "j.sikte.db"), "--sample-hz", "0",
                   *(["--json"] if json_out else []), "--", *command)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result, out, trace


def strace_lines(tmp_path: Path, *command: str) -> list[str]:
    log = tmp_path / "strace.txt"
    subprocess.run([shutil.which("strace") or "strace", "-T", "-o", str(log), *command],
                   check=True, timeout=60)
    return log.read_text().splitlines()


def split_args(text: str) -> list[str]:
    """strace's top-level arguments: commas inside quotes, [], {} and () do not split."""
    parts, depth, quoted, start, i = [], 0, False, 0, 0
    while i < len(text):
        c = text[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c in "[{(":
            depth += 1
        elif c in "]})":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
        i += 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def fields(line: str) -> tuple[str, list[str], str]:
    """(call, arguments, result) of a line. What differs from run to run compares by its
    form: a pointer's value (ASLR) as `0x…`, a descriptor's name (`4<pipe:[1234]>`, which
    plain strace does not print) as the number."""
    match = LINE.match(line)
    assert match, f"not a strace line: {line!r}"
    name, args, result, duration = match.groups()
    assert duration is not None, f"no -T duration: {line!r}"
    shown = [re.sub(r"^(\d+)<.*>$", r"\1", re.sub(r"^0x[0-9a-f]{6,}", "0x…", a))
             for a in split_args(args)]
    return name, shown, result


def picked(lines: list[str], marker: str, name: str) -> list[str]:
    return [ln for ln in lines if ln.split("(", 1)[0].split("] ")[-1] == name and marker in ln]


def test_failed_opens_name_each_path_once_with_enoent(tmp_path: Path, record_workload):
    work = tmp_path / "w"
    work.mkdir()
    command = (record_workload, "enoent", str(N_MISSING), str(work))
    _, out, trace = record(tmp_path, *command)
    wanted = [f"{work}/sikte-missing-{i}" for i in range(N_MISSING)] + [f"{work}/{ODD_NAME}"]
    events = pq.read_table(out / "events.parquet").to_pandas()
    opens = events[events["path"].str.startswith(str(work))]
    assert opens["path"].tolist() == wanted  # each once, in order, the odd one exactly
    assert set(opens["syscall"].astype(str)) == {"openat"}
    assert opens["errno_name"].astype(str).tolist() == ["ENOENT"] * len(wanted)
    assert opens["result"].tolist() == ["-1 ENOENT (No such file or directory)"] * len(wanted)
    ours = picked(trace.read_text().splitlines(), str(work), "openat")
    theirs = picked(strace_lines(tmp_path, *command), str(work), "openat")
    assert len(ours) == len(theirs) == len(wanted)
    assert [fields(a) for a in ours] == [fields(b) for b in theirs]
    assert ours[-1].startswith(f'openat(AT_FDCWD, "{work}/sikte odd \\"name\\n", O_RDONLY)')


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(("name", "marker"), [
    ("openat", "sikte-missing-mix"), ("newfstatat", "sikte-stat-missing"),
    ("connect", "127.0.0.1"),
    ("execve", "sikte-noprog"),  # `0x7ffd... /* 1 var */`: the count the kernel took at entry
    ("write", "sikte-pipe")])
def test_trace_lines_are_strace_lines(tmp_path: Path, record_workload, name, marker,
                                      mix_run):
    ours_all, theirs_all, _ = mix_run
    ours, theirs = picked(ours_all, marker, name), picked(theirs_all, marker, name)
    assert len(ours) == len(theirs) == 1, (ours, theirs)
    assert fields(ours[0]) == fields(theirs[0])


@pytest.fixture(scope="module")
def mix_run(record_workload, tmp_path_factory) -> tuple[list[str], list[str], Path]:
    """The mix workload under record --events all --trace, and under strace -T: both traces
    and the Parquet directory."""
    tmp_path = tmp_path_factory.mktemp("mix")
    work = tmp_path / "w"
    work.mkdir()
    port = closed_port()
    command = (record_workload, "mix", str(port), str(work))
    _, out, trace = record(tmp_path, *command, events="all")
    (out / "port").write_text(str(port))
    return trace.read_text().splitlines(), strace_lines(tmp_path, *command), out


def test_events_parquet_has_the_address_and_the_paths(mix_run):
    _, _, out = mix_run
    port = int((out / "port").read_text())
    events = pq.read_table(out / "events.parquet").to_pandas()
    events["syscall"] = events["syscall"].astype(str)
    (connect,) = events[events["syscall"] == "connect"].itertuples()
    assert (connect.addr, connect.errno_name, connect.fd_path) == (
        f"127.0.0.1:{port}", "ECONNREFUSED", "socket:[AF_INET]")
    assert connect.args == (f"3<socket:[AF_INET]>, {{sa_family=AF_INET, sin_port=htons({port}),"
                            ' sin_addr=inet_addr("127.0.0.1")}, 16')
    missing = events[events["path"].str.endswith("sikte-noprog")]
    assert missing["syscall"].tolist() == ["execve"]
    assert missing["errno_name"].astype(str).tolist() == ["ENOENT"]
    (write,) = events[(events["syscall"] == "write")
                      & events["args"].str.contains("sikte-pipe")].itertuples()
    assert (write.ret, write.fd_path, write.path) == (11, "pipe:[1]", "")


def test_files_keep_a_reused_descriptor_apart(tmp_path: Path, record_workload):
    work = tmp_path / "w"
    work.mkdir()
    result, out, _ = record(tmp_path, record_workload, "reuse", str(K_BYTES), str(L_BYTES),
                            str(work), json_out=True)
    files = {f["path"]: f for f in pq.read_table(out / "files.parquet").to_pylist()}
    a, b = files[f"{work}/a"], files[f"{work}/b"]
    assert (a["opens"], a["writes"], a["bytes_written"], a["reads"]) == (1, 6, K_BYTES, 0)
    assert (b["opens"], b["writes"], b["bytes_written"], b["reads"]) == (1, 1, L_BYTES, 0)
    assert a["open_errors"] == b["open_errors"] == 0
    assert a["io_ns"] > 0 and b["io_ns"] > 0
    listed = {f["path"]: f for f in json.loads(result.stdout)["files"]}
    for path, want in ((f"{work}/a", a), (f"{work}/b", b)):
        got = listed[path]
        assert {k: got[k] for k in ("opens", "open_errors", "reads", "bytes_read", "writes",
                                    "bytes_written", "io_ns")} == {
            k: want[k] for k in ("opens", "open_errors", "reads", "bytes_read", "writes",
                                 "bytes_written", "io_ns")}


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_a_bad_events_spec_is_one_line(tmp_path: Path):
    result = sikte("record", "--events", "failed,slow:fast", "--", "/bin/true")
    assert result.returncode == 2
    assert one_line_error(result).startswith("sikte-tui: --events failed,slow:fast: ")


def test_an_unwritable_trace_file_is_one_line(tmp_path: Path):
    result = sikte("record", "--trace", str(tmp_path / "no" / "trace.txt"), "--no-journal",
                   "--", "/bin/true")
    assert result.returncode == 2
    line = one_line_error(result)
    assert line.startswith("sikte-tui: --trace ") and "no directory" in line, line
    assert not os.path.exists(tmp_path / "no")


def test_several_processes_get_pid_prefixes(tmp_path: Path, record_workload):
    work = tmp_path / "w"
    work.mkdir()
    script = f"{record_workload} enoent 2 {work}; {record_workload} enoent 1 {work}"
    _, out, trace = record(tmp_path, "/bin/sh", "-c", script)
    lines = [ln for ln in trace.read_text().splitlines() if str(work) in ln]
    assert len(lines) == 2 + 1 + 2  # each workload's missing paths and its odd name
    pids = pq.read_table(out / "events.parquet").to_pandas()
    pids = pids[pids["path"].str.startswith(str(work))]["tid"].tolist()
    assert [ln.split("]", 1)[0] for ln in lines] == [f"[pid {p:5d}" for p in pids]
    assert len(set(pids)) == 2
