"""Write syscall_tables/data/args.json from the running kernel's syscall tracepoint formats.

    sudo python -m syscall_tables.generate_args          # (re)write the data file
    sudo python -m syscall_tables.generate_args --check  # exit 1 if it differs from tracefs

The file is the fallback of tracing.decode.argspec for kernels without syscall tracepoints
and for reading sessions without root: each syscall's arguments, (C type, name), as the
kernel that generated it declares them. Run it on a new kernel and commit the result; the
output is stable (names sorted, fixed indentation), so a diff shows only real changes.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

DATA_FILE = Path(__file__).resolve().parent / "data" / "args.json"


def render() -> str:
    from tracing.decode.argspec import read_tracefs_formats

    formats = read_tracefs_formats()
    if not formats:
        raise SystemExit("generate_args: no syscall tracepoint formats readable (run as root "
                         "on a kernel with CONFIG_FTRACE_SYSCALLS)")
    doc = {
        "source": {"kernel": platform.release(), "arch": platform.machine(),
                   "from": "events/syscalls/sys_enter_*/format"},
        "generated_by": "python -m syscall_tables.generate_args",
        "syscalls": {name: [list(a) for a in formats[name]] for name in sorted(formats)},
    }
    return json.dumps(doc, indent=1) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with the running kernel instead of writing")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if DATA_FILE.read_text() != text:
            print(f"{DATA_FILE} differs from this kernel's formats", file=sys.stderr)
            return 1
        return 0
    DATA_FILE.write_text(text)
    print(f"wrote {DATA_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
