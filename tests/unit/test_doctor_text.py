"""`sikte-tui doctor` quotes the system (file contents, paths, errors) in its details and
fixes: printed as data, escaped, on the lines it wraps to."""

from __future__ import annotations

from cli.doctor_cmd import format_table
from tracing.engine.doctor import Check


def test_details_and_fixes_are_escaped() -> None:
    checks = [Check("kernel", "pass", "6.1.0 \x1b]0;X\x07"),
              Check("headers", "fail", "missing /lib/modules/\u202e6.1/build",
                    "apt-get install linux-headers-\x1b[2J")]
    text = format_table(checks, width=200)
    assert not any(c in text for c in "\x1b\x07\u202e")
    assert text.splitlines() == [
        "PASS  kernel   6.1.0 \\x1b]0;X\\x07",
        "FAIL  headers  missing /lib/modules/\\u202e6.1/build",
        "               fix: apt-get install linux-headers-\\x1b[2J",
    ]
