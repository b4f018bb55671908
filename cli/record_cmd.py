"""`sikte-tui record`: trace headless and print a syscall summary (table or JSON)."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterable, Iterator, Mapping
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypedDict

from cli.folded import add_folded_argument, check_folded, write_folded
from cli.output import drop_stdout
from tracing.boundary.display_text import sanitize
from tracing.errors import UserError
from tracing.model.timing import Timing, parse_timing
from tracing.model.units import parse_duration_ns

if TYPE_CHECKING:  # imported when used: `record --help` loads neither bcc nor SQLite
    from tracing.engine.tracer import TraceConfig, Tracer
    from tracing.model.files import FileKey, FileStats
    from tracing.model.paths import PathTable
    from tracing.model.selection import EventSelection
    from tracing.model.stats import Snapshot
    from tracing.session.journal import Journal, JournalOptions
    from tracing.session.trace_writer import TraceWriter


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """Target options shared by `record` and the interactive view."""
    parser.add_argument("--pid", type=int, action="append", default=[], metavar="PID",
                        help="trace this running process (repeatable)")
    parser.add_argument("--no-follow", action="store_true",
                        help="do not trace children the targets start")
    parser.add_argument("--user", help="run the launched command as this user "
                        "(default: the sudo caller)")
    parser.add_argument("--events", default="failed", metavar="SPEC",
                        help="individual events to keep (decoded) besides the counts: "
                        "failed, all, none, slow:10ms, sample:100, or several joined with "
                        "commas, e.g. failed,slow:5ms (default: failed; none: counts only, "
                        "no per-file accounting)")
    parser.add_argument("--slow", metavar="DURATION",
                        help="also keep events slower than this (e.g. 10ms)")
    parser.add_argument("--sample", type=int, default=0, metavar="N",
                        help="also keep 1 in N events")
    parser.add_argument("--sample-hz", type=int, default=99, metavar="HZ",
                        help="sample the targets' on-CPU stacks HZ times a second "
                        "(default: 99; 0: off)")
    parser.add_argument("--timing", default="exact", metavar="MODE",
                        help="how syscalls are timed: exact (every call, the default), "
                        "sampled (counts and errors exact; total time and percentiles "
                        "estimated from a sample of each thread's calls, marked ~; costs "
                        "less) or off (counts and errors only; cheapest)")
    parser.add_argument("--uprobe", action="append", default=[], metavar="BINARY:FUNCTION",
                        help="also count calls and latency of a user-space function, e.g. "
                        "c:malloc (c: libc) or /usr/bin/python3:main (repeatable)")
    parser.add_argument("--disable-tcp-mon", action="store_true",
                        help="do not follow the targets' TCP connections")
    parser.add_argument("--disable-docker-mon", action="store_true",
                        help="do not ask the Docker Engine for container names")
    parser.add_argument("--ebpf", action="store_true",
                        help="print the eBPF C program and its compile flags, and exit")
    parser.add_argument("--db-path", type=Path, metavar="PATH",
                        help="write the session journal here (default: a new file in "
                        "~/.local/share/sikte-tui/sessions of the invoking user)")
    parser.add_argument("--no-journal", action="store_true",
                        help="keep the session in memory only (it can still be exported)")
    parser.add_argument("--sessions-cap", metavar="SIZE",
                        help="keep the sessions folder within SIZE, deleting the oldest "
                        "sessions first (default: $SIKTE_SESSIONS_CAP, else 2G; 0: no cap)")
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARG...]")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_target_arguments(parser)
    parser.add_argument("--duration", type=str, metavar="S",
                        help="stop after S seconds (default: when the targets exit, or Ctrl+C)")
    parser.add_argument("--json", action="store_true",
                        help="print JSON on stdout (the command's stdout then goes to stderr)")
    parser.add_argument("--per-process", action="store_true", help="break down by process")
    parser.add_argument("--interval", metavar="S",
                        help="also print each S seconds' calls as they end (S: 0.1 or more; "
                        "with --json: one JSON document per line, then the summary as the "
                        "last line)")
    parser.add_argument("--output", type=Path, metavar="DIR",
                        help="also save the session as a Parquet directory")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing --output directory")
    parser.add_argument("--trace", metavar="FILE",
                        help="also write the kept events as strace's lines to FILE "
                        "(-: stderr), with [pid N] once several processes are traced and "
                        "each call's time as with strace -T")
    add_folded_argument(parser)


def journal_options(args: argparse.Namespace) -> JournalOptions:
    from tracing.session.journal import JournalOptions
    from tracing.session.retention import sessions_cap

    return JournalOptions(db_path=args.db_path, enabled=not args.no_journal,
                          sessions_cap=sessions_cap(args.sessions_cap))


def session_meta(config: TraceConfig, argv: list[str] | None = None) -> dict[str, object]:
    """What the journal records of how the trace was asked for."""
    from tracing.model.probes import probe_names

    events = config.events
    return {
        "targets": list(config.describe_targets()),
        "pids": list(config.pids),
        "command": list(config.command),
        "follow": config.follow,
        "command_line": ["sikte-tui", *(sys.argv[1:] if argv is None else argv)],
        "event_selection": {"all": events.all, "failed": events.failed,
                            "slow_ns": events.slow_ns, "sample_n": events.sample_n,
                            "files": events.files},
        "sample_hz": config.sample_hz,
        "tcp": config.tcp,
        # Issue 18: how the calls were timed ("sampled": times are estimates).
        "timing": str(config.timing),
        "probes": {str(nr): name for nr, name in probe_names(config.uprobes).items()},
    }


def event_selection(args: argparse.Namespace) -> EventSelection:
    """--events SPEC, with --slow and --sample adding to it."""
    import dataclasses

    from tracing.model.selection import EventSelection

    try:
        selection = EventSelection.parse(args.events)
    except ValueError as err:
        raise UserError(f"--events {sanitize(args.events)}: {err}") from None
    try:
        slow = parse_duration_ns(args.slow) if args.slow else 0
    except ValueError as err:
        raise UserError(f"--slow: {err}") from None
    if args.sample < 0:
        raise UserError("--sample takes a positive N (1 in N events)")
    if slow:
        selection = dataclasses.replace(selection, slow_ns=slow)
    if args.sample:
        selection = dataclasses.replace(selection, sample_n=args.sample)
    return selection


MAX_SAMPLE_HZ = 1000


class EngineFields(TypedDict):
    """The fields TraceConfig and EngineOptions share, as keyword arguments."""

    sample_hz: int
    uprobes: tuple[str, ...]
    tcp: bool
    timing: Timing


class TraceFields(EngineFields):
    """EngineFields and what only TraceConfig has."""

    docker: bool


def trace_options(args: argparse.Namespace) -> TraceFields:
    """TraceConfig's sampling, probe, TCP and Docker fields from the command line (the probes
    are checked by validate_targets)."""
    return {**engine_options(args), "docker": not args.disable_docker_mon}


def engine_options(args: argparse.Namespace) -> EngineFields:
    """The fields TraceConfig and EngineOptions share."""
    if not 0 <= args.sample_hz <= MAX_SAMPLE_HZ:
        raise UserError(f"--sample-hz takes 0 (off) to {MAX_SAMPLE_HZ} samples a second")
    return {"sample_hz": args.sample_hz, "uprobes": tuple(args.uprobe),
            "tcp": not args.disable_tcp_mon, "timing": timing_option(args)}


def timing_option(args: argparse.Namespace) -> Timing:
    """--timing MODE; a bad one is a one-line error (exit 2, as argparse's own)."""
    try:
        return parse_timing(args.timing)
    except ValueError as err:
        raise UserError(f"--timing: {sanitize(str(err))}", exit_code=2) from None


def command_of(args: argparse.Namespace) -> tuple[str, ...]:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    return tuple(command)


def validate_targets(config: TraceConfig) -> None:
    """Bad targets fail first, before privileges are checked or anything is loaded."""
    from tracing.system.targets import check_pid, resolve_command

    if not config.pids and not config.command:
        raise UserError("nothing to trace: give --pid PID or -- COMMAND")
    for pid in config.pids:
        check_pid(pid)
    if config.command:
        resolve_command(config.command)
    if config.uprobes:
        from tracing.engine.uprobes import check_probes

        check_probes(config.uprobes)


def announce(tracer: Tracer) -> None:
    """Say on stderr what is traced (like strace's "Process N attached")."""
    what = ", ".join(tracer.config.describe_targets())
    if tracer.command is not None:
        what = what.replace(" ".join(tracer.config.command),
                            f"{' '.join(tracer.config.command)} (pid {tracer.command.pid})")
    print(f"sikte-tui: tracing {sanitize(what)}; Ctrl+C stops", file=sys.stderr, flush=True)


def print_program(args: argparse.Namespace) -> int:
    import platform

    from syscall_tables import canonical_arch
    from tracing.engine.program import EngineOptions, build_cflags, program_text

    options = EngineOptions(follow=not args.no_follow, events=event_selection(args),
                            **engine_options(args))
    print("// cflags: " + " ".join(build_cflags(options, canonical_arch(platform.machine()))))
    print(program_text(options))
    return 0


def check_output(args: argparse.Namespace) -> None:
    """A bad --output fails before tracing, not after."""
    from tracing.session.export import check_output as check_export_output

    if args.output is not None:
        check_export_output(args.output, args.force)


def save_session(journal: Journal, args: argparse.Namespace) -> None:
    """Say where the session is kept, and export it when asked (on stderr: stdout is the
    summary's)."""
    from tracing.session.export import export_parquet

    if journal.on_disk:
        print(f"sikte-tui: session saved in {sanitize(str(journal.path))}", file=sys.stderr)
        if journal.status:  # at its cap: the individual events it did not keep
            print(f"sikte-tui: {sanitize(journal.status)}", file=sys.stderr)
    elif journal.failed:  # in record's words: it has --output, not x
        print(f"sikte-tui: {sanitize(disk_failure_line(journal, args.output))}",
              file=sys.stderr)
    elif journal.status and not args.no_journal:
        print(f"sikte-tui: {sanitize(journal.status)}", file=sys.stderr)
    if args.output is not None:
        out = export_parquet(journal.stored(), args.output, force=args.force,
                             owner=journal.owner)
        print(f"sikte-tui: Parquet written to {sanitize(str(out))}", file=sys.stderr)


def disk_failure_line(journal: Journal, output: Path | None) -> str:
    """The journal fell back to memory: what record keeps of the session."""
    if output is not None:
        return f"{journal.status}; --output saves all of it as Parquet"
    return (f"{journal.status} until record ends; {journal.path} holds it up to the failure; "
            "use --output DIR to save it as Parquet")


def check_trace(target: str | None) -> None:
    """A --trace file that cannot be written fails before tracing, not after."""
    if target is None or target == "-":
        return
    from tracing.boundary.userfiles import check_new_file

    try:
        check_new_file(Path(target))
    except UserError as err:
        raise UserError(f"--trace {err}", exit_code=err.exit_code) from None
    except OSError as err:
        raise UserError(f"--trace {sanitize(target)}: cannot write it "
                        f"({err.strerror or err}); choose another file") from None


def start_trace(target: str | None) -> TraceWriter | None:
    """The --trace writer, its file made for the user (None: no --trace)."""
    if target is None:
        return None
    from tracing.session.trace_writer import TraceWriter, open_trace_file

    out, ours = open_trace_file(target)
    return TraceWriter(out, "stderr" if target == "-" else sanitize(target), close_out=ours)


def parse_duration_s(text: str | None) -> float | None:
    """--duration: a finite positive number of seconds (nan, inf and 0 are refused)."""
    if text is None:
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise UserError(f"--duration takes a positive number of seconds, like 5 or 0.5 "
                        f"(not {text!r})")
    return seconds


def print_summary(text: str | Iterable[str], journal: Journal) -> None:
    """The summary on stdout (a string, or its pieces: a long JSON document is written as it
    is made); a stdout that cannot take it (a full disk) is one line."""
    try:
        for piece in (text,) if isinstance(text, str) else text:
            sys.stdout.write(piece)
        sys.stdout.flush()
    except OSError as err:
        stdout_failed(err, journal)


def stdout_failed(err: OSError, journal: Journal, what: str = "summary") -> NoReturn:
    if isinstance(err, BrokenPipeError):
        raise err  # the reader went away (| head): cli.main ends quietly
    drop_stdout()
    where = f"kept in {journal.path}" if journal.on_disk else "not kept (--no-journal)"
    raise UserError(f"could not write the {what} to stdout ({err.strerror}); the "
                    f"session is {where}", exit_code=1) from None


FILES_CHUNK = 1024  # rows of the files list made at a time


def files_rows(files: Mapping[FileKey, FileStats], paths: PathTable | None
               ) -> Iterator[dict[str, object]]:
    """`record --json`'s files list (tracing/session/export_decoded.py's rows, in its order),
    made a chunk at a time."""
    from tracing.model.paths import PathTable
    from tracing.session.export_decoded import files_json

    table = paths if paths is not None else PathTable()
    items = sorted(files.items(), key=lambda kv: (-kv[1].io_ns, kv[0].pid,
                                                  table.name(kv[0].path_id)))
    for start in range(0, len(items), FILES_CHUNK):
        yield from files_json(dict(items[start:start + FILES_CHUNK]), paths)


def run(args: argparse.Namespace) -> int:
    if args.ebpf:
        return print_program(args)
    from cli.interval_output import IntervalWriter, interval_seconds
    from tracing.engine.tracer import TraceConfig
    from tracing.model.bpf_cost import bpf_json
    from tracing.model.bpf_cost import summary_line as bpf_summary_line
    from tracing.model.connections import ConnectionSet
    from tracing.model.inflight import format_inflight, inflight_json
    from tracing.model.intervals import iter_json_line
    from tracing.model.json_stream import Rows, iter_json
    from tracing.model.report import format_connections, format_summary, summary_json
    from tracing.model.samples import SampleSet
    from tracing.record import record
    from tracing.session.journal import start_journal
    from tracing.system.privileges import require_tracing_privileges

    duration_s = parse_duration_s(args.duration)
    interval_s = interval_seconds(args.interval)
    config = TraceConfig(
        pids=tuple(args.pid),
        command=command_of(args),
        user=args.user,
        follow=not args.no_follow,
        events=event_selection(args),
        command_stdout=2 if args.json else None,
        **trace_options(args),
    )
    validate_targets(config)
    check_output(args)
    check_folded(args.folded)
    check_trace(args.trace)
    require_tracing_privileges()
    trace = start_trace(args.trace)
    journal = start_journal(journal_options(args), config.describe_targets(),
                            session_meta(config))
    samples, connections = SampleSet(), ConnectionSet()
    intervals = None if interval_s is None else IntervalWriter(interval_s, args.json,
                                                               args.per_process)

    def on_snapshot(snapshot: Snapshot) -> None:
        journal.put(snapshot)
        if intervals is not None:  # queued: printed from the writer's thread
            intervals.put(snapshot)
        if trace is not None:
            trace.put(snapshot)
        samples.update(snapshot.samples)
        connections.update(snapshot.connections)
        for line in snapshot.notices:  # a lookup that failed: said once, as it happens
            print(f"sikte-tui: {sanitize(line)}", file=sys.stderr, flush=True)

    ended = False
    try:
        tracer, snapshot = record(config, duration_s, on_started=announce,
                                  on_snapshot=on_snapshot)
        ended = True
    finally:
        interval_error = intervals.close(last=ended) if intervals is not None else None
        journal.close()
        if trace is not None:
            trace.close()
    save_session(journal, args)
    if args.folded is not None:
        write_folded(args.folded, samples, config.sample_hz)
    exit_status = snapshot.target_exit
    target = {
        "pids": list(config.pids),
        "command": list(config.command),
        "command_pid": tracer.command.pid if tracer.command else None,
        "exit_code": exit_status.code if exit_status else None,
        "exit_signal": exit_status.signal if exit_status else None,
        "duration_s": round(snapshot.elapsed_s, 6),
        "arch": snapshot.arch,
        "state": snapshot.state,
        "timing": str(config.timing),
    }
    if interval_error is not None:
        stdout_failed(interval_error, journal, "intervals")
    if args.json:
        # Written as it is made: under process churn it lists tens of thousands of rows.
        summary = summary_json(snapshot, target, args.per_process, list(connections),
                               lazy=True)
        summary["files"] = Rows(lambda: files_rows(snapshot.files, snapshot.paths))
        summary["in_flight"] = inflight_json(snapshot.inflight, snapshot.arch,
                                             snapshot.processes)
        summary["bpf"] = bpf_json(snapshot)  # issue 18: our programs' kernel cost (or null)
        # After the intervals' lines (JSON Lines), the summary is one line too.
        text = iter_json(summary) if intervals is None else iter_json_line(summary)
        print_summary(chain(text, ("\n",)), journal)
    else:
        tcp = format_connections(list(connections))
        inflight = format_inflight(snapshot.inflight, snapshot.arch, snapshot.processes)
        whole = "" if intervals is None else f"total: 0.000 s to {snapshot.elapsed_s:.3f} s\n"
        print_summary(whole + format_summary(snapshot, args.per_process) + "\n"
                      + f"\n{bpf_summary_line(snapshot)}\n"  # issue 18: kernel cost
                      + (f"\n{tcp}\n" if tcp else "")
                      + (f"\n{inflight}\n" if inflight else ""), journal)
    if trace is not None and trace.error is not None:
        kept = f"in {journal.path}" if journal.on_disk else "in memory only"
        raise UserError(sanitize(f"--trace: {trace.error}; the session is kept {kept}"),
                        exit_code=1)
    # Like strace: the launched command's own exit status becomes ours.
    if exit_status is None:
        return 0
    return exit_status.code if exit_status.code is not None else 128 + (exit_status.signal or 0)
