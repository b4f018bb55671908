"""`sikte-tui syscalls` through the real entry point, cli.main.main."""

from __future__ import annotations

import json
import os

import pytest

from cli.main import main
from syscall_tables import ARCHES, table


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["syscalls", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the default table is the host's")
def test_default_arch_is_host(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "getppid") == (0, "110 getppid\n", "")


def test_lookup_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--arch", "x86_64", "getppid") == (0, "110 getppid\n", "")
    assert run(capsys, "--arch", "arm64", "getppid") == (0, "173 getppid\n", "")
    assert run(capsys, "--arch", "aarch64", "getppid") == (0, "173 getppid\n", "")


def test_lookup_by_number_aligns_columns(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--arch", "x86_64", "39", "0x6e") == (0, " 39 getpid\n110 getppid\n", "")
    assert run(capsys, "--arch", "x32", "0x4000006e") == (0, "1073741934 getppid\n", "")


def test_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--arch", "i386", "--json", "getppid", "1")
    assert (code, err) == (0, "")
    assert json.loads(out) == [
        {"arch": "i386", "nr": 64, "name": "getppid"},
        {"arch": "i386", "nr": 1, "name": "exit"},
    ]


def test_whole_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--arch", "arm64")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "  0 io_setup"
    assert lines == [f"{nr:>3} {name}" for nr, name in sorted(table("arm64").items())]


def test_whole_table_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--json", "--arch", "ppc64le")
    rows = json.loads(out)
    assert code == 0
    assert len(rows) == len(table("ppc64le"))
    assert rows[0] == {"arch": "ppc64le", "nr": 0, "name": "restart_syscall"}


def test_unknown_arch_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--arch", "nosuch", "getppid")
    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1
    assert err.startswith("sikte-tui: unknown architecture 'nosuch'; valid choices: x86_64, ")
    assert all(arch in err for arch in ARCHES)


def test_unknown_name_suggests_close_matches(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--arch", "x86_64", "getppd") == (
        2,
        "",
        "sikte-tui: unknown syscall 'getppd' on x86_64; "
        "did you mean: getppid, getpid, getpgrp, getpgid?\n",
    )


def test_name_from_another_arch_says_where_it_exists(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--arch", "arm64", "fork") == (
        2,
        "",
        "sikte-tui: unknown syscall 'fork' on arm64 "
        "(it exists on x86_64, i386, x32, arm, s390x, ppc64le); did you mean: flock?\n",
    )


def test_unknown_number_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    numbers = table("x86_64")
    assert run(capsys, "--arch", "x86_64", "9999") == (
        2,
        "",
        f"sikte-tui: no syscall number 9999 on x86_64 "
        f"(its {len(numbers)} syscalls are numbered 0 to {max(numbers)})\n",
    )


def test_a_bad_lookup_prints_nothing_else(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--arch", "x86_64", "getppid", "nosuchcall")
    assert (code, out) == (2, "")
    assert err == (
        "sikte-tui: unknown syscall 'nosuchcall' on x86_64; "
        "list them all with: sikte-tui syscalls --arch x86_64\n"
    )
