"""`sikte-tui record` as a user runs it: output contract, exit codes, and bad input, each a
single line on stderr and never a traceback."""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys

import pytest

pytestmark = pytest.mark.ebpf


def sikte(*args: str, user: int | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        capture_output=True, text=True, timeout=timeout, user=user,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    )


def one_line_error(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("sikte-tui: ")
    return lines[0]


def test_json_contract(workload):
    result = sikte("record", "--json", "--", workload, "getppid", "1234", "5")
    assert result.returncode == 5  # the command's exit code, as strace does
    doc = json.loads(result.stdout)
    getppid = next(s for s in doc["syscalls"] if s["syscall"] == "getppid")
    assert getppid["count"] == 1234
    assert set(getppid) == {"syscall", "nr", "abi", "count", "errors", "total_ns", "avg_ns",
                            "p50_ns", "p95_ns", "p99_ns", "max_ns"}
    assert getppid["abi"] == "x86_64" or platform.machine() != "x86_64"
    assert getppid["p50_ns"] <= getppid["p95_ns"] <= getppid["p99_ns"] <= getppid["max_ns"]
    (proc,) = doc["processes"]
    assert proc["comm"] == "workload" and proc["exit_code"] == 5 and proc["count"] > 1234
    assert set(proc) >= {"pid", "ppid", "comm", "exit_code", "count"}
    assert doc["drops"]["events"] == 0
    assert doc["target"]["command"][0] == workload and doc["target"]["exit_code"] == 5


def test_table_sorted_by_total_time_and_per_process(workload):
    result = sikte("record", "--per-process", "--", "/bin/sh", "-c",
                   f"{workload} getppid 100; {workload} sleep 2 10")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.count("(workload)") == 2 and "(sh)" in out
    header = next(ln for ln in out.splitlines() if ln.startswith("% time"))
    assert header.split() == ["%", "time", "calls", "errors", "total", "avg", "p50", "p95",
                              "p99", "max", "syscall"]
    whole = sikte("record", "--", workload, "sleep", "2", "10").stdout.splitlines()
    assert whole[2].split()[-1] == "nanosleep"  # the slowest in total comes first


def test_duration_stops_an_attached_trace(workload):
    proc = subprocess.Popen(["sleep", "30"])
    try:
        result = sikte("record", "--json", "--duration", "0.5", "--pid", str(proc.pid))
        assert result.returncode == 0, result.stderr
        doc = json.loads(result.stdout)
        assert doc["target"]["state"] == "stopped" and 0.4 < doc["target"]["duration_s"] < 10
        assert proc.poll() is None  # stopping the trace leaves the target running
    finally:
        proc.kill()


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["--pid", "999999999"], 2, "no process with PID 999999999"),
        (["--pid", "2"], 2, "kernel thread"),
        (["--", "no-such-command-sikte"], 127, "command not found"),
        (["--", "NOT_EXECUTABLE"], 126, "permission denied"),
        (["--slow", "fast", "--", "true"], 2, "bad duration"),
        ([], 2, "nothing to trace"),
    ],
)
def test_bad_input_is_one_line(args, code, words, tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("not a program\n")
    plain.chmod(0o644)
    result = sikte("record", *[str(plain) if a == "NOT_EXECUTABLE" else a for a in args])
    assert result.returncode == code
    assert words in one_line_error(result)


def test_not_root_names_what_is_missing():
    result = sikte("record", "--", "true", user=65534)
    assert result.returncode == 2
    assert "root, or CAP_BPF and CAP_PERFMON" in one_line_error(result)


def _record_in_background(*args: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "record", "--json", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc


def _wait_until_tracing(proc: subprocess.Popen) -> None:
    line = proc.stderr.readline()
    assert line.startswith("sikte-tui: tracing "), line + proc.stderr.read()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_stop_signal_detaches_and_reports(sig):
    target = subprocess.Popen(["sleep", "30"])
    try:
        proc = _record_in_background("--pid", str(target.pid))
        _wait_until_tracing(proc)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        doc = json.loads(out)
        assert doc["target"]["state"] == "stopped"
        assert target.poll() is None  # an attached process keeps running
    finally:
        target.kill()


def test_stop_signal_ends_a_launched_command(workload):
    proc = _record_in_background("--", "sleep", "30")
    _wait_until_tracing(proc)
    proc.send_signal(signal.SIGTERM)
    out, _err = proc.communicate(timeout=30)
    doc = json.loads(out)
    assert doc["target"]["exit_signal"] == signal.SIGTERM
    assert proc.returncode == 128 + signal.SIGTERM
