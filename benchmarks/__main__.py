"""`python -m benchmarks` (what `make bench` runs): measure, print the tables, and on a full
run write them to docs/performance.md."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from benchmarks import report, suite
from benchmarks.common import BenchContext, BenchResult, make_scratch

DEFAULT_RUNS = 5


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="sikte-tui overhead and throughput benchmarks (run as root).",
    )
    parser.add_argument("--runs", type=int, metavar="N",
                        help=f"rounds per measurement; the median is reported "
                             f"(default {DEFAULT_RUNS}, 1 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="one round and smaller workloads: a smoke check, not figures")
    parser.add_argument("--only", action="append", metavar="NAME",
                        choices=[b.name for b in suite.BENCHMARKS],
                        help="run only this benchmark (repeatable): "
                             + ", ".join(b.name for b in suite.BENCHMARKS))
    parser.add_argument("--no-doc", action="store_true",
                        help="do not write docs/performance.md (a partial or --quick run "
                             "never does)")
    parser.add_argument("--sikte-tree", type=Path, metavar="DIR",
                        help="run sikte-tui from this source tree (with this venv), e.g. "
                             "`git archive COMMIT | tar -x -C DIR`, for a tree's figures "
                             "against the same run's tools; never writes the document")
    args = parser.parse_args(argv)
    if args.sikte_tree is not None and not (args.sikte_tree / "cli" / "main.py").is_file():
        parser.error(f"--sikte-tree: no cli/main.py in {args.sikte_tree}")
    if args.runs is not None and args.runs < 1:
        parser.error("--runs takes a positive number")
    return args


def command_line(args: argparse.Namespace) -> str:
    extra = [] if args.runs in (None, DEFAULT_RUNS) else [f"--runs {args.runs}"]
    return f'make bench ARGS="{" ".join(extra)}"' if extra else "make bench"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("benchmarks: tracing needs root; run: sudo make bench", file=sys.stderr)
        return 2
    runs = args.runs or (1 if args.quick else DEFAULT_RUNS)
    started = time.monotonic()
    results: list[BenchResult] = []
    with make_scratch() as scratch:
        ctx = BenchContext(runs=runs, quick=args.quick, scratch=Path(scratch),
                           sikte_tree=args.sikte_tree and args.sikte_tree.resolve())
        for bench in suite.by_name(args.only):
            ctx.log(f"{bench.name}: {bench.description}")
            results.append(bench.run(ctx))
    print(report.render_results(results))
    # A full run must fit in 15 minutes (issue 18): say how long this one took.
    took = f"{(time.monotonic() - started) / 60:.1f} minutes"
    print(f"\nbenchmarks took {took}")
    if not (args.quick or args.only or args.no_doc or args.sikte_tree):
        report.write_doc(report.figures_markdown(results, command_line(args), took))
        print(f"\nfigures written to {report.DOC}")
    failures = [f for r in results for f in r.failures]
    for failure in failures:
        print(f"benchmarks: FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
