"""A stored session to a Parquet directory: one file per table and session.json.

The directory is written under a temporary name beside the target and renamed into place,
so a reader never sees it half-written. It is made the invoking user's way
(tracing.boundary.userfiles): with their credentials, 0700 with 0600 files, through
directory handles, never following another user's link; --force replaces only an earlier
sikte-tui session. Syscall and errno names sit next to the numbers (named by each call's
ABI, which the `abi` column names); times are UTC nanosecond timestamps; each file carries
the session's metadata in its schema metadata (key b"sikte-tui"). docs/session-format.md
documents every column.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tracing.boundary.userfiles import Dir, Owner, invoking_user, open_dir, read_json_object
from tracing.errors import UserError
from tracing.model.stats import bucket_bounds, percentile
from tracing.session.export_decoded import files_table
from tracing.session.export_events import ROW_GROUP, TIMESTAMP, Part, event_parts, utc
from tracing.session.export_names import Namer
from tracing.session.stored_session import StoredSession
from tracing.session.stored_threads import process_threads, thread_exit_times

Progress = Callable[[float, str], None]  # (fraction done, what is being written)
META_KEY = b"sikte-tui"
HIST_TYPE = pa.list_(pa.int64())
TABLES = ("processes", "syscalls", "timeline", "events", "samples", "connections", "files",
          "threads")
SESSION_FILES = frozenset({"session.json", *(f"{t}.parquet" for t in TABLES)})
_INT32_MAX = (1 << 31) - 1


def export_parquet(session: StoredSession, output: Path, force: bool = False,
                   progress: Progress | None = None, owner: Owner | None = None) -> Path:
    """Write the session's tables into `output` (a new directory); returns it."""
    report = progress or (lambda _f, _s: None)
    owner = owner or invoking_user()
    try:
        parent = open_dir(output.parent, owner, create=True)
    except OSError as err:
        raise UserError(f"cannot write {output} ({err.strerror or err}); choose another "
                        "--output", exit_code=1) from None
    with parent:
        old = _existing(parent, output, force)
        try:
            staging_name, staging = parent.mkdtemp(f".{output.name}.")
        except OSError as err:
            raise UserError(f"cannot write {output} ({err.strerror or err}); choose another "
                            "--output", exit_code=1) from None
        try:
            with staging:
                _write_all(session, staging, report)
            _move_into_place(parent, staging_name, output, old)
        except OSError as err:
            parent.remove_tree(staging_name)
            raise UserError(f"cannot write {output} ({err.strerror or err}); what was "
                            f"recorded is still in {session.path}", exit_code=1) from None
        except BaseException:
            parent.remove_tree(staging_name)
            raise
    report(1.0, "done")
    return output


def check_output(output: Path, force: bool, owner: Owner | None = None) -> None:
    """Fail early where export_parquet would refuse `output` (before a trace, say)."""
    owner = owner or invoking_user()
    try:
        parent = open_dir(output.parent, owner)
    except FileNotFoundError:
        return  # made when exporting
    except OSError as err:
        raise UserError(f"cannot write {output} ({err.strerror or err}); choose another "
                        "--output", exit_code=1) from None
    with parent:
        _existing(parent, output, force)


def _existing(parent: Dir, output: Path, force: bool) -> os.stat_result | None:
    """What is at `output` now, when --force may replace it (None: nothing there)."""
    found = parent.lstat(output.name)
    if found is None:
        return None
    if not force:
        raise UserError(f"{output} already exists; choose another --output or add --force")
    if not _is_session(parent, output.name, found):
        raise UserError(f"{output} is not a sikte-tui session; refusing to replace it with "
                        "--force: choose another --output")
    return found


def _is_session(parent: Dir, name: str, found: os.stat_result) -> bool:
    """An earlier export of the same user: their real directory holding only the files an
    export writes, all regular, with our session.json (or an empty directory of theirs:
    nothing is lost replacing it)."""
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != parent.owner.uid:
        return False
    try:
        with parent.open_subdir(name) as directory:
            names = os.listdir(directory.fd)
            if not names:
                return True
            if not set(names) <= SESSION_FILES or "session.json" not in names:
                return False
            for entry in names:
                st = directory.lstat(entry)
                if st is None or not stat.S_ISREG(st.st_mode) or st.st_uid != found.st_uid:
                    return False
            meta = read_json_object(directory, "session.json")
    except OSError:
        return False
    return meta is not None and str(meta.get("format", "")).startswith("sikte-tui")


def _move_into_place(parent: Dir, staging: str, output: Path,
                     old: os.stat_result | None) -> None:
    """Rename the finished directory to its name. With --force the old session goes only
    once the new one is complete: first into a fresh private directory (if what moved is not
    what was checked, it goes back and nothing is replaced), then deleted from there."""
    if old is None:
        parent.rename(staging, output.name)
        return
    trash_name, trash = parent.mkdtemp(f".{output.name}.old.")
    try:
        with trash:
            parent.rename(output.name, "old", dst_dir=trash)
            moved = trash.lstat("old")
            if moved is None or (moved.st_dev, moved.st_ino) != (old.st_dev, old.st_ino):
                trash.rename("old", output.name, dst_dir=parent)
                raise UserError(f"{output} changed during the export; nothing was replaced")
            try:
                parent.rename(staging, output.name)
            except OSError:
                trash.rename("old", output.name, dst_dir=parent)
                raise
    finally:
        parent.remove_tree(trash_name)


def session_json(session: StoredSession) -> dict[str, Any]:
    meta = dict(session.meta)
    offset = session.wall_offset_ns
    meta["start_utc_ns"] = session.start_ts_ns + offset
    meta["end_utc_ns"] = session.end_ts_ns + offset
    meta["source"] = str(session.path)
    return meta


def _write_all(session: StoredSession, directory: Dir, report: Progress) -> None:
    meta = session_json(session)
    with directory.create("session.json") as f:
        f.write((json.dumps(meta, indent=2) + "\n").encode())
    names = Namer(session)
    steps: Sequence[tuple[str, Callable[[], Iterable[Part]]]] = (
        ("processes", lambda: [lambda: processes_table(session)]),
        ("syscalls", lambda: [lambda: syscalls_table(session, names)]),
        ("timeline", lambda: [lambda: timeline_table(session, names)]),
        ("events", lambda: event_parts(session, names)),
        ("samples", lambda: [lambda: samples_table(session)]),
        ("connections", lambda: [lambda: connections_table(session)]),
        ("files", lambda: [lambda: files_table(session)]),
        ("threads", lambda: [lambda: threads_table(session)]),
    )
    encoded = json.dumps(meta).encode()
    for i, (name, build) in enumerate(steps):
        report(i / len(steps), f"{name}.parquet")
        with directory.create(f"{name}.parquet") as f:
            _write_parquet(f, build(), encoded)


def _write_parquet(f: BinaryIO, parts: Iterable[Part], meta: bytes) -> None:
    """Each part's table as the file's next row group. A second thread finishes each part and
    writes it while this one makes the next (pyarrow and numpy work without the GIL), one
    part at most in flight, so the file is written in order."""
    writer: list[pq.ParquetWriter] = []

    def write(part: Part) -> None:
        table = part()
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), META_KEY: meta})
        if not writer:
            writer.append(pq.ParquetWriter(f, table.schema, compression="zstd",
                                           **_encodings(table)))
        writer[0].write_table(table, row_group_size=ROW_GROUP)

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending: Future[None] | None = None
        try:
            for part in parts:
                if pending is not None:
                    pending.result()
                pending = pool.submit(write, part)
            if pending is not None:
                pending.result()
        finally:
            if pending is not None:
                pending.exception()  # a failed export still waits for its write to end
            if writer:
                writer[0].close()


def _encodings(table: pa.Table) -> dict[str, Any]:
    """Timestamps and durations compress far better as deltas."""
    delta = [c for c in ("ts",) if c in table.column_names
             and pa.types.is_timestamp(table.schema.field(c).type)]
    if not delta:
        return {"use_dictionary": True}
    return {"column_encoding": {c: "DELTA_BINARY_PACKED" for c in delta},
            "use_dictionary": [c for c in table.column_names if c not in delta]}


def _hist_columns(hists: Sequence[tuple[tuple[int, int], ...]]) -> tuple[pa.Array, pa.Array]:
    lows = [[bucket_bounds(b)[0] for b, _ in h] for h in hists]
    counts = [[c for _, c in h] for h in hists]
    return pa.array(lows, HIST_TYPE), pa.array(counts, HIST_TYPE)


def _comms(session: StoredSession) -> dict[int, str]:
    p = session.processes
    return {int(pid): comm for pid, comm in zip(p["pid"], p["comm"], strict=True)}


def syscalls_table(session: StoredSession, names: Namer) -> pa.Table:
    agg = session.aggregates
    comms = _comms(session)
    pids, nrs = agg["pid"].to_numpy(np.int64), agg["nr"].to_numpy(np.int64)
    abis = agg["abi"].to_numpy(np.int64)
    hists = list(agg["hist"])
    lows, counts = _hist_columns(hists)
    quantile = {q: [percentile(h, q / 100, int(lo), int(hi))
                    for h, lo, hi in zip(hists, agg["min_ns"], agg["max_ns"], strict=True)]
                for q in (50, 95, 99)}
    count = agg["count"].to_numpy(np.int64)
    total = agg["total_ns"].to_numpy(np.int64)
    return pa.table({
        "pid": pa.array(pids, pa.int32()), "tid": pa.array(agg["tid"], pa.int32()),
        "comm": pa.array([comms.get(int(p), "") for p in pids], pa.string()),
        "abi": names.abi_column(abis),
        "syscall": names.column(abis, nrs), "nr": pa.array(nrs, pa.int64()),
        "count": pa.array(count, pa.int64()), "errors": pa.array(agg["errors"], pa.int64()),
        "total_ns": pa.array(total, pa.int64()),
        "avg_ns": pa.array(np.where(count > 0, total // np.maximum(count, 1), 0), pa.int64()),
        "min_ns": pa.array(agg["min_ns"], pa.int64()),
        "max_ns": pa.array(agg["max_ns"], pa.int64()),
        "p50_ns": pa.array(quantile[50], pa.int64()),
        "p95_ns": pa.array(quantile[95], pa.int64()),
        "p99_ns": pa.array(quantile[99], pa.int64()),
        "hist_low_ns": lows, "hist_count": counts,
    })


def timeline_table(session: StoredSession, names: Namer) -> pa.Table:
    tl = session.timeline
    pids, nrs = tl["pid"].to_numpy(np.int64), tl["nr"].to_numpy(np.int64)
    abis = tl["abi"].to_numpy(np.int64)
    lows, counts = _hist_columns(list(tl["hist"]))
    return pa.table({
        "ts": utc(tl["ts_ns"], session.wall_offset_ns),
        "pid": pa.array(pids, pa.int32()), "tid": pa.array(tl["tid"], pa.int32()),
        "abi": names.abi_column(abis),
        "syscall": names.column(abis, nrs), "nr": pa.array(nrs, pa.int64()),
        "count": pa.array(tl["count"], pa.int64()), "errors": pa.array(tl["errors"], pa.int64()),
        "total_ns": pa.array(tl["total_ns"], pa.int64()),
        "max_ns": pa.array(tl["max_ns"], pa.int64()),
        "hist_low_ns": lows, "hist_count": counts,
    })


def processes_table(session: StoredSession) -> pa.Table:
    p = session.processes
    offset = session.wall_offset_ns

    def stamp(column: str) -> pa.Array:
        values = [int(v) + offset if v and not pd.isna(v) else None for v in p[column]]
        return pa.array(values, pa.int64()).cast(TIMESTAMP)

    def optional_int(column: str) -> pa.Array:
        return pa.array([None if pd.isna(v) else int(v) for v in p[column]], pa.int32())

    threads = process_threads(p, session.threads, session.aggregates)
    pids = [int(pid) for pid in p["pid"]]
    ended = [bool(_ended(t, c, s)) for t, c, s in zip(
        p["exit_ts_ns"], p["exit_code"], p["exit_signal"], strict=True)]
    live = [None if threads[pid].live_threads is None else 0 if gone
            else 1 + len(threads[pid].live_threads or ()) for pid, gone in zip(
                pids, ended, strict=True)]
    return pa.table({
        "pid": pa.array(p["pid"], pa.int32()), "ppid": pa.array(p["ppid"], pa.int32()),
        "comm": pa.array(p["comm"], pa.string()), "exe": pa.array(p["exe"], pa.string()),
        "cmdline": pa.array(list(p["cmdline"]), pa.list_(pa.string())),
        "abi": pa.array(p["abi"], pa.string()),
        "container": pa.array(p["container"], pa.string()),
        "start_ts": stamp("start_ts_ns"), "exit_ts": stamp("exit_ts_ns"),
        "exit_code": optional_int("exit_code"), "exit_signal": optional_int("exit_signal"),
        # int32: a count past it (a journal's, hand-made or from years of threads) is cut.
        "threads": pa.array([min(1 + max(threads[pid].threads_seen, len(threads[pid].threads)),
                                 _INT32_MAX) for pid in pids], pa.int32()),
        "live_threads": pa.array(live, pa.int32()),
        "thread_names_dropped": pa.array([threads[pid].thread_names_dropped for pid in pids],
                                         pa.int64()),
    })


def _ended(exit_ts_ns: Any, code: Any, signal: Any) -> bool:
    """Whether a processes row's process had ended (as window.stored_processes reads it)."""
    def known(v: Any) -> bool:
        return v is not None and not pd.isna(v)

    return bool(known(exit_ts_ns) and exit_ts_ns) or known(code) or known(signal)


def threads_table(session: StoredSession) -> pa.Table:
    """One row per thread kept, each process's main thread included (named as its process):
    join it to syscalls, events or samples on (pid, tid) for each thread's name."""
    p = session.processes
    threads = process_threads(p, session.threads, session.aggregates)
    exits = thread_exit_times(session.threads)
    offset = session.wall_offset_ns
    pids: list[int] = []
    tids: list[int] = []
    names: list[str | None] = []
    alive: list[bool | None] = []
    exit_ns: list[int | None] = []
    for pid, comm, exit_ts, code, sig in zip(p["pid"].tolist(), p["comm"], p["exit_ts_ns"],
                                           p["exit_code"], p["exit_signal"], strict=True):
        gone = _ended(exit_ts, code, sig)
        kept = threads[pid]
        pids.append(pid)
        tids.append(pid)
        names.append(comm)
        alive.append(not gone)
        exit_ns.append(int(exit_ts) + offset if gone and exit_ts and not pd.isna(exit_ts)
                       else None)
        for tid in sorted(kept.threads):
            pids.append(pid)
            tids.append(tid)
            names.append(kept.thread_names.get(tid))
            alive.append(None if kept.live_threads is None
                         else not gone and tid in kept.live_threads)
            ts = exits.get((pid, tid))
            exit_ns.append(ts + offset if ts else None)
    return pa.table({
        "pid": pa.array(pids, pa.int32()), "tid": pa.array(tids, pa.int32()),
        "name": pa.array(names, pa.string()), "alive": pa.array(alive, pa.bool_()),
        "exit_ts": pa.array(exit_ns, pa.int64()).cast(TIMESTAMP),
    })


def samples_table(session: StoredSession) -> pa.Table:
    """One row per interval and stack: `count` samples landed on `frames` (root first) in the
    interval that ended at `ts`."""
    smp = session.samples
    frames = list(smp["frames"])
    kernel = smp["kernel_frames"].to_numpy(np.int64)
    depth = np.array([len(f) for f in frames], dtype=np.int64)
    return pa.table({
        "ts": utc(smp["ts_ns"], session.wall_offset_ns),
        "pid": pa.array(smp["pid"], pa.int32()), "tid": pa.array(smp["tid"], pa.int32()),
        "comm": pa.array(smp["comm"], pa.string()),
        "frames": pa.array([list(f) for f in frames], pa.list_(pa.string())),
        "modules": pa.array([list(m) for m in smp["modules"]], pa.list_(pa.string())),
        "count": pa.array(smp["count"], pa.int64()),
        "user_frames": pa.array(depth - kernel, pa.int32()),
        "kernel_frames": pa.array(kernel, pa.int32()),
        "leaf": pa.array([f[-1] if f else "" for f in frames], pa.string()),
    })


def connections_table(session: StoredSession) -> pa.Table:
    """One row per TCP connection, in its newest state."""
    con = session.connections
    offset = session.wall_offset_ns
    start = con["ts_ns"].to_numpy(np.int64)
    end = con["end_ts_ns"].to_numpy(np.int64)
    end_utc = pa.array([int(e) + offset if e else None for e in end], pa.int64()).cast(TIMESTAMP)
    text = {c: pa.array(con[c], pa.string()) for c in (
        "comm", "cgroup_path", "container_id", "container_name", "container_runtime", "saddr",
        "daddr", "direction", "state", "result", "error")}
    return pa.table({
        "ts": utc(start, offset), "end_ts": end_utc,
        "conn_id": pa.array(con["conn_id"], pa.int64()),
        "pid": pa.array(con["pid"], pa.int32()), "tid": pa.array(con["tid"], pa.int32()),
        "comm": text["comm"], "cgroup_id": pa.array(con["cgroup_id"], pa.uint64()),
        "cgroup_path": text["cgroup_path"], "container_id": text["container_id"],
        "container_name": text["container_name"],
        "container_runtime": text["container_runtime"],
        "family": pa.array(con["family"], pa.int8()),
        "saddr": text["saddr"], "sport": pa.array(con["sport"], pa.int32()),
        "daddr": text["daddr"], "dport": pa.array(con["dport"], pa.int32()),
        "direction": text["direction"], "state": text["state"],
        "duration_ns": pa.array([int(e - s) if e else None for s, e in zip(start, end,
                                                                           strict=True)],
                                pa.int64()),
        "result": text["result"], "error": text["error"],
    })
