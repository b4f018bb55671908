"""Runs workloads one after another, each under `strace -f -c`, as one command that
`sikte-tui record` launches: `strace_driver.py PLAN`. PLAN is a JSON file: {"dir": where
strace writes NAME.strace, "workloads": {NAME: argv}}. Each strace inherits this process's
environment, terminal and standard streams (so a workload sees what it sees when record
launches it directly). Writes DIR/pids.json: NAME -> [strace's pid, its exit status].

Run by /usr/bin/python3 with the standard library only (it may run as another user)."""

import json
import subprocess
import sys

STRACE = ["/usr/bin/strace", "-f", "-c", "-U", "name,calls,errors"]


def main() -> int:
    with open(sys.argv[1]) as f:
        plan = json.load(f)
    pids = {}
    for name, argv in plan["workloads"].items():
        out = f"{plan['dir']}/{name}.strace"
        proc = subprocess.Popen([*STRACE, "-o", out, "--", *argv])
        pids[name] = [proc.pid, proc.wait()]
    with open(f"{plan['dir']}/pids.json", "w") as f:
        json.dump(pids, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
