"""Two trees of sikte-tui, interleaved: the CPU of dd and tar under each tree's `record`.

    git worktree add /tmp/bench-old COMMIT
    sudo .venv/bin/python -m benchmarks.trees --rounds 7 /tmp/bench-old .

Each run is `sikte-tui record --no-journal [--events none] -- WRAPPER WORKLOAD` from the tree
(its own PYTHONPATH, this venv); WRAPPER runs the workload and writes its CPU (user + system,
from getrusage(RUSAGE_CHILDREN)), so the tracer's start and its own CPU are left out. The
configurations take turns within each round, starting one further along each round; medians
and ranges are printed. docs/performance.md (issue 15) has figures taken with it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

WORKLOADS = {
    "dd": ["dd", "if=/dev/zero", "of=/dev/null", "bs=1", "count=1000000", "status=none"],
    "tar": ["tar", "-C", "/", "-cf", "/dev/zero", "usr/share"],
}
WRAPPER = ("import os,resource,subprocess,sys;subprocess.run(sys.argv[1:]);"
           "r=resource.getrusage(resource.RUSAGE_CHILDREN);"
           "open(os.environ['TREES_OUT'],'w').write(str(r.ru_utime+r.ru_stime))")
MAIN = "import sys; from cli.main import main; sys.exit(main())"


def run(tree: Path | None, events_none: bool, workload: str, out: Path) -> float:
    inner = ["/usr/bin/python3", "-c", WRAPPER, *WORKLOADS[workload]]
    env = dict(os.environ, TREES_OUT=str(out))
    argv = inner
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
        argv = [sys.executable, "-c", MAIN, "record", "--no-journal",
                *(["--events", "none"] if events_none else []), "--", *inner]
    subprocess.run(argv, env=env, cwd=tree, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False)
    return float(out.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    args = parser.parse_args()
    configs: list[tuple[str, Path | None, bool]] = [
        ("untraced", None, False),
        ("old --events none", args.old.resolve(), True),
        ("new --events none", args.new.resolve(), True),
        ("old record", args.old.resolve(), False),
        ("new record", args.new.resolve(), False),
    ]
    results: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "cpu"
        for _ in range(2):
            run(None, False, "tar", out)  # warm the page cache
        for r in range(args.rounds):
            turn = configs[r % len(configs):] + configs[:r % len(configs)]
            for workload in WORKLOADS:
                for name, tree, none in turn:
                    cpu = run(tree, none, workload, out)
                    results.setdefault((name, workload), []).append(cpu)
                    print(f"round {r} {workload} {name}: {cpu:.3f} CPU s", flush=True)
    for workload in WORKLOADS:
        base = statistics.median(results[("untraced", workload)])
        for name, _, _ in configs:
            values = results[(name, workload)]
            median = statistics.median(values)
            print(f"{workload:4} {name:18} median {median:.3f} s {median / base:5.2f}x "
                  f"range {min(values):.3f}-{max(values):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
