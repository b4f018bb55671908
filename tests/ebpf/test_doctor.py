"""`sikte-tui doctor` and the header fallback on the real kernel (root)."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cli.main import main
from tracing.engine.doctor import DoctorInputs, can_trace, check_tracefs, run_checks
from tracing.engine.kheaders import find_kernel_headers, prepare_bcc_environment

pytestmark = pytest.mark.ebpf

REPO = Path(__file__).resolve().parents[2]
HEADERS_FIX = "apt install linux-headers-$(dpkg --print-architecture)"
GETPPID = {"x86_64": 110, "aarch64": 173}  # only for the exact count below


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Header trees the doctor builds go to tmp_path, in process and in subprocesses."""
    monkeypatch.setenv("SIKTE_CACHE_DIR", str(tmp_path / "cache"))


def doctor(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m cli.main doctor` in a fresh process with the given environment."""
    environ = {k: v for k, v in os.environ.items() if k != "BCC_KERNEL_SOURCE"}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "doctor", *args],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def rows(output: str) -> dict[str, str]:
    """check name -> STATUS, from the table's first lines."""
    found = {}
    for line in output.splitlines():
        status, _, rest = line.partition("  ")
        if status in ("PASS", "WARN", "FAIL"):
            found[rest.strip().split("  ")[0]] = status
    return found


def test_doctor_passes_on_this_machine(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["doctor"])

    out = capsys.readouterr().out
    table = rows(out)
    assert code == 0, out
    assert "FAIL" not in table.values(), out
    for name in ("kernel", "privileges", "bpf syscall", "tracefs", "tracepoints", "bcc"):
        assert table[name] == "PASS", out
    assert table["kernel headers"] in ("PASS", "WARN"), out
    assert "can trace here" in out


def test_every_check_passes_or_warns() -> None:
    checks = run_checks()

    assert {check.status for check in checks} <= {"pass", "warn"}, checks
    assert can_trace(checks)
    assert len({check.name for check in checks}) == len(checks) == 11


def test_json_output_is_machine_readable() -> None:
    done = doctor("--json")

    report = json.loads(done.stdout)
    assert done.returncode == 0, done.stderr
    assert report["can_trace"] is True
    assert {c["status"] for c in report["checks"]} <= {"pass", "warn"}


def test_no_headers_is_a_failure_with_its_fix(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {"SIKTE_HEADER_SEARCH": str(empty), "SIKTE_CACHE_DIR": str(tmp_path / "cache")}

    done = doctor(**env)
    as_json = json.loads(doctor("--json", **env).stdout)

    assert done.returncode == 1, done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    assert rows(done.stdout)["kernel headers"] == "FAIL", done.stdout
    assert f"fix: {HEADERS_FIX}" in done.stdout
    failed = [c for c in as_json["checks"] if c["status"] == "fail"]
    assert [c["name"] for c in failed] == ["kernel headers"]
    assert failed[0]["fix"] == HEADERS_FIX
    assert as_json["can_trace"] is False


@pytest.mark.parametrize(
    ("module", "expected_fix"),
    [
        ("", "pip uninstall bcc; apt install python3-bpfcc"),  # PyPI's unrelated `bcc`
        ("raise ImportError('libbcc.so.0: cannot open')", "apt install python3-bpfcc"),
    ],
)
def test_a_wrong_or_missing_bcc_fails_with_its_fix(
    module: str, expected_fix: str, tmp_path: Path
) -> None:
    shadow = tmp_path / "shadow" / "bcc"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(module)

    done = doctor("--json", PYTHONPATH=str(shadow.parent))

    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    assert done.returncode == 1
    assert checks["bcc"]["status"] == "fail"
    assert checks["bcc"]["fix"].startswith(expected_fix)
    assert "Traceback" not in done.stderr


def test_a_crashing_check_is_reported_not_raised() -> None:
    def broken() -> None:
        raise RuntimeError("disk on fire")

    checks = {c.name: c for c in run_checks(DoctorInputs(find_headers=broken))}  # type: ignore[arg-type]

    assert checks["kernel headers"].status == "fail"
    assert "disk on fire" in checks["kernel headers"].detail
    assert checks["bcc"].status == "pass"  # the others still ran


def test_missing_tracefs_fails_without_mounting(tmp_path: Path) -> None:
    inputs = DoctorInputs(tracefs_roots=(tmp_path / "tracing",), mount_tracefs=False)

    check = check_tracefs(inputs)

    assert check.status == "fail"
    assert f"mount -t tracefs nodev {tmp_path / 'tracing'}" in check.fix
    assert not (tmp_path / "tracing").exists()


MOUNT_PROBE = """
from pathlib import Path
from tracing.engine.doctor import DoctorInputs, check_tracefs
print(check_tracefs(DoctorInputs(tracefs_roots=(Path("/sys/kernel/tracing"),))).detail)
"""


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux)")
def test_doctor_mounts_a_missing_tracefs() -> None:
    # In a private mount namespace, so the machine's own tracefs stays mounted.
    script = f"umount /sys/kernel/tracing && exec {sys.executable} -c '{MOUNT_PROBE}'"
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "was not mounted; mounted it at /sys/kernel/tracing"
    assert os.path.isdir("/sys/kernel/tracing/events")  # ours untouched


def test_missing_cgroup2_is_a_warning(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text("cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\n")

    checks = {c.name: c for c in run_checks(DoctorInputs(mounts=mounts))}

    assert checks["cgroup v2"].status == "warn"


PROGRAM = r"""
BPF_ARRAY(counts, u64, 1);

RAW_TRACEPOINT_PROBE(sys_enter) {
    // TP_PROTO(struct pt_regs *regs, long id): args[1] is the syscall number.
    if ((bpf_get_current_pid_tgid() >> 32) != TGID || ctx->args[1] != NR)
        return 0;
    int zero = 0;
    u64 *count = counts.lookup(&zero);
    if (count)
        __sync_fetch_and_add(count, 1);
    return 0;
}
"""


@pytest.mark.parametrize("source", ["default", "distribution-package"])
def test_bcc_compiles_and_runs_with_the_prepared_headers(
    source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nr = GETPPID.get(platform.machine())
    if nr is None:
        pytest.skip(f"no getppid number for {platform.machine()}")
    # Start without BCC_KERNEL_SOURCE, and have it removed again afterwards.
    monkeypatch.setenv("BCC_KERNEL_SOURCE", "unset-me")
    monkeypatch.delenv("BCC_KERNEL_SOURCE")
    only_packages = {"modules_root": None, "kheaders_tarball": None}
    options = only_packages if source == "distribution-package" else {}
    choice = find_kernel_headers(cache_dir=tmp_path / "cache", **options)  # type: ignore[arg-type]
    if choice.kind == "none":
        pytest.skip(f"no headers here: {choice.description}")
    prepare_bcc_environment(choice)

    from bcc import BPF

    bpf = BPF(text=PROGRAM.encode(), cflags=[f"-DTGID={os.getpid()}", f"-DNR={nr}"])
    try:
        for _ in range(1000):
            os.getppid()
        assert bpf[b"counts"][0].value == 1000
    finally:
        bpf.cleanup()
