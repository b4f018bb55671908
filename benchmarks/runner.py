"""Run one workload and record its own time: the wrapper every overhead measurement uses.

    python runner.py OUT [--gate] -- COMMAND [ARG...]

The workload is forked and waits on a pipe; once released it execs COMMAND. The runner then
waits for it with wait4() and writes a JSON object to OUT: user and system CPU seconds (of
the workload and the children it waited for), wall seconds from release to exit, and the
exit code. A tracer that launches this runner (strace, perf trace, sikte-tui record) has
finished starting by then, so its start-up is never counted.

With --gate the runner prints the workload's PID on stdout and releases it only when a line
arrives on stdin: time for a tracer to attach with -p PID. If stdin closes instead, the
workload exits without running.

Standard library only: it runs as a plain script, often under a tracer.
"""

from __future__ import annotations

import json
import os
import sys
import time


def parse(argv: list[str]) -> tuple[str, bool, list[str]]:
    if "--" not in argv:
        raise SystemExit("usage: runner.py OUT [--gate] -- COMMAND [ARG...]")
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1 :]
    if not options or not command:
        raise SystemExit("usage: runner.py OUT [--gate] -- COMMAND [ARG...]")
    return options[0], "--gate" in options[1:], command


def child(gate_fd: int, command: list[str]) -> None:
    """In the forked child: wait for the release byte, then become the workload."""
    try:
        if os.read(gate_fd, 1) != b"g":
            os._exit(125)  # the runner went away without releasing us
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)
        os.execvp(command[0], command)
    except OSError as err:
        print(f"runner: {command[0]}: {err.strerror}", file=sys.stderr)
    os._exit(127)


def main(argv: list[str]) -> int:
    out, gate, command = parse(argv)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(write_end)
        child(read_end, command)
    os.close(read_end)
    if gate:
        print(pid, flush=True)
        if not sys.stdin.readline():
            os.close(write_end)
            os.waitpid(pid, 0)
            return 125
    start = time.perf_counter()
    os.write(write_end, b"g")
    os.close(write_end)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    result = {"user_s": usage.ru_utime, "sys_s": usage.ru_stime, "wall_s": wall, "exit": code}
    with open(out, "w") as f:
        json.dump(result, f)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
