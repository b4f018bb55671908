"""The picker under a busy machine's process list: 2,000 processes whose command lines are
4 KB (Java classpaths, JSON arguments), typed into with Pilot.

Each key's latency runs from the key press to the first repaint of the process table after
the table received the rows for the text then in the filter (KeyedTable.update_rows with
that query, then KeyedTable.render_line): what a person waits for. Keys are pressed one at a
time, each once the previous one is on screen. The app runs headless in a child process, so
a picker that freezes (the one before issue 13 did) is stopped at a deadline and its memory
is still measured (VmHWM from /proc).

`python -m benchmarks.picker` runs it alone; `--picker FILE` measures another picker module
(e.g. the one before a change: `git show REV:tui/picker.py > /tmp/picker_before.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.common import BenchContext, BenchResult, Check, Section

if TYPE_CHECKING:
    from tracing.system.proclist import ProcessEntry

N_PROCESSES = 2000
CMDLINE_CHARS = 4096
TARGET_MS = 100.0
SIZE = (160, 48)
# What a person types: a service name, rubbed out, another one.
KEYS = [*"payments", *["backspace"] * 8, *"kafka", *["backspace"] * 5]
DEADLINE_S = 120.0  # for the whole child run; a frozen picker is stopped here
SERVICES = ("orders", "billing", "kafka", "search", "payments", "gateway", "inventory", "auth",
            "ledger", "notify")


def _classpath(rng: random.Random, size: int) -> str:
    jars: list[str] = []
    while sum(len(j) + 1 for j in jars) < size:
        group = rng.choice(("org/apache", "com/fasterxml", "io/netty", "org/springframework",
                            "com/google", "io/micrometer", "ch/qos/logback"))
        jars.append(f"/opt/app/lib/{group}/{rng.choice(SERVICES)}-core-"
                    f"{rng.randint(1, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 99)}.jar")
    return ":".join(jars)[:size]


def _json_args(rng: random.Random, size: int) -> str:
    fields: list[str] = []
    while sum(len(f) + 1 for f in fields) < size:
        key = rng.choice(("queue", "retries", "endpoint", "timeoutMs", "region", "shard"))
        fields.append(f'"{key}{len(fields)}":"{rng.choice(SERVICES)}-{rng.randint(0, 9999)}"')
    return "{" + ",".join(fields)[:size] + "}"


def fake_processes(n: int = N_PROCESSES, chars: int = CMDLINE_CHARS,
                   seed: int = 13) -> list[ProcessEntry]:
    """`n` processes with command lines of about `chars` characters, as the lister gives."""
    from tracing.system.proclist import ProcessEntry

    rng = random.Random(seed)
    now = time.time()
    entries = []
    for i in range(n):
        service = SERVICES[i % len(SERVICES)]
        if i % 2:
            head = ["/usr/lib/jvm/java-17-openjdk-amd64/bin/java", "-Xmx2g",
                    f"-Dapp.name={service}-{i}", "-cp"]
            argv = [*head, _classpath(rng, chars - sum(len(a) + 1 for a in head)),
                    f"com.example.{service}.Main"]
        else:
            head = ["/usr/bin/python3", "-m", f"{service}.worker", "--config"]
            argv = [*head, _json_args(rng, chars - sum(len(a) + 1 for a in head))]
        entries.append(ProcessEntry(
            pid=10_000 + i, user=rng.choice(("root", "app", "postgres", "www-data")),
            name=service, cmdline=tuple(argv), cpu_pct=rng.random() * 50,
            rss=rng.randint(1, 4096) << 20, threads=rng.randint(1, 200),
            create_time=now - rng.randint(60, 86400 * 3)))
    return entries


# -- the child: the app, headless, under Pilot ------------------------------------------------


def _vm(field: str) -> int:
    """A VmRSS-like field of this process's /proc status, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def _fresh_copies(entries: list[ProcessEntry]) -> Callable[[], list[ProcessEntry]]:
    """A lister that, like the real one, gives new objects on every call, with new CPU and
    RSS figures for one process in ten (busy ones; most of a server's processes sleep)."""
    from tracing.system.proclist import ProcessEntry

    calls = [0]

    def lister() -> list[ProcessEntry]:
        calls[0] += 1
        return [ProcessEntry(e.pid, e.user, e.name,
                             tuple(a.encode().decode() for a in e.cmdline),
                             e.cpu_pct + calls[0] % 7 if i % 10 == 0 else e.cpu_pct,
                             e.rss + calls[0] * 4096 if i % 10 == 0 else e.rss,
                             e.threads, e.create_time) for i, e in enumerate(entries)]
    return lister


async def _child(picker_file: str | None, rounds: int) -> None:
    import tui.app
    from tui.table import KeyedTable

    if picker_file:
        spec = importlib.util.spec_from_file_location("picker_under_test", picker_file)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        # The app opens whatever class tui.app names: swap in the picker under test.
        tui.app.PickerScreen = module.PickerScreen  # type: ignore[misc]
    from textual.widgets import Input

    app = tui.app.SikteApp(lister=_fresh_copies(fake_processes()))
    async with app.run_test(size=SIZE) as pilot:
        deadline = time.monotonic() + 60
        while not app.screen.query(KeyedTable) or \
                app.screen.query_one(KeyedTable).row_count < N_PROCESSES:
            if time.monotonic() > deadline:
                raise RuntimeError("the picker never listed the processes")
            await pilot.pause(0.05)
        table = app.screen.query_one(KeyedTable)
        bar = app.screen.query_one("#picker-filter", Input)
        updates: list[tuple[float, str]] = []
        renders: list[float] = []
        update_rows, render_line = table.update_rows, table.render_line

        def recording_update(rows: Any, *args: Any, **kwargs: Any) -> Any:
            updates.append((time.perf_counter(), bar.value))
            return update_rows(rows, *args, **kwargs)

        def recording_render(y: int) -> Any:
            renders.append(time.perf_counter())
            return render_line(y)

        # Wrap this one table's methods to time them (a test double would not be the app).
        table.update_rows = recording_update  # type: ignore[method-assign]
        table.render_line = recording_render  # type: ignore[method-assign]
        await pilot.pause(0.3)
        _emit({"rss_listed": _vm("VmRSS")})
        await pilot.press("slash")
        typed = ""
        for round_ in range(rounds):
            for key in KEYS:
                typed = typed[:-1] if key == "backspace" else typed + key
                updates.clear()
                renders.clear()
                start = time.perf_counter()
                await pilot.press(key)
                shown = None
                while shown is None:
                    applied = [t for t, q in updates if q.strip() == typed.strip()]
                    if applied:
                        shown = next((r for r in renders if r >= applied[0]), None)
                    if shown is None:
                        await asyncio.sleep(0.001)
                _emit({"key": key, "query": typed, "ms": (shown - start) * 1000,
                       "rows": table.row_count})
            _emit({"round": round_, "rss": _vm("VmRSS")})
        await pilot.pause(2.5)  # a refresh of the list with the filter on
        _emit({"rss_end": _vm("VmRSS"), "hwm": _vm("VmHWM")})
        await pilot.press("escape", "q")


# -- the parent: runs the child with a deadline ------------------------------------------------


def _hwm(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def measure(picker_file: str | None = None, rounds: int = 3,
            deadline_s: float = DEADLINE_S) -> dict[str, Any]:
    """The child's records, and whether it finished before the deadline."""
    argv = [sys.executable, "-m", "benchmarks.picker", "--child", "--rounds", str(rounds)]
    if picker_file:
        argv += ["--picker", picker_file]
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True,
                             cwd=Path(__file__).resolve().parent.parent)
    records: list[dict[str, Any]] = []
    hwm = 0
    end = time.monotonic() + deadline_s
    assert child.stdout is not None
    import selectors

    with selectors.DefaultSelector() as sel:
        sel.register(child.stdout, selectors.EVENT_READ)
        while time.monotonic() < end:
            hwm = max(hwm, _hwm(child.pid))
            if sel.select(timeout=0.2):
                line = child.stdout.readline()
                if not line:
                    break
                records.append(json.loads(line))
        try:
            finished = child.wait(timeout=10) == 0
        except subprocess.TimeoutExpired:
            finished = False
    if child.poll() is None:
        hwm = max(hwm, _hwm(child.pid))
        child.kill()
        child.wait()
    return {"records": records, "finished": finished, "hwm": hwm}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def summary(result: dict[str, Any]) -> dict[str, Any]:
    records = result["records"]
    keys = [r["ms"] for r in records if "ms" in r]
    first = next((r["rss_listed"] for r in records if "rss_listed" in r), 0)
    rounds = [r["rss"] for r in records if "rss" in r]
    end: dict[str, Any] = next((r for r in records if "rss_end" in r), {})
    return {"presses": len(keys), "planned": None, "p50": _percentile(keys, 0.5),
            "p95": _percentile(keys, 0.95), "max": max(keys, default=float("nan")),
            "rss_listed": first, "rss_rounds": rounds, "rss_end": end.get("rss_end", 0),
            "hwm": max(end.get("hwm", 0), result["hwm"]), "finished": result["finished"]}


def _typed() -> str:
    return "".join(k if len(k) == 1 else "⌫" for k in KEYS)


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.0f}" if n else "-"


def run(ctx: BenchContext) -> BenchResult:
    rounds = 1 if ctx.quick else 3
    ctx.log(f"picker: {N_PROCESSES:,} processes, {CMDLINE_CHARS} character command lines")
    s = summary(measure(rounds=rounds))
    planned = rounds * len(KEYS)
    after = " → ".join(_mib(r) for r in s["rss_rounds"])
    row = (f"{s['presses']}/{planned}", f"{s['p50']:.0f}", f"{s['p95']:.0f}",
           f"{s['max']:.0f}", _mib(s["rss_listed"]), after or "-", _mib(s["rss_end"]),
           _mib(s["hwm"]))
    section = Section(
        f"Picker: typing with {N_PROCESSES:,} processes of {CMDLINE_CHARS // 1024} KB command "
        "lines (ms, MiB)",
        ("keys shown", "p50", "p95", "max", "RSS listed", "RSS after each round",
         "RSS after refresh", "peak RSS"),
        (row,),
        (f"Keys typed into the filter, one at a time: {_typed()}"
         f", {rounds} round(s); each timed from the key press to the first repaint of the "
         "table after it received that query's rows (Pilot, headless, 160x48).",),
    )
    flat = bool(s["rss_rounds"]) and s["rss_end"] - s["rss_rounds"][0] < 16 << 20
    checks = (
        Check(f"picker: typed key shown ≤ {TARGET_MS:.0f} ms (p95, {N_PROCESSES:,} processes)",
              f"p95 {s['p95']:.0f} ms", s["finished"] and s["p95"] <= TARGET_MS),
        Check("picker: RSS flat while typing (< 16 MiB growth after the first round)",
              f"{_mib(s['rss_rounds'][0]) if s['rss_rounds'] else '-'} → "
              f"{_mib(s['rss_end'])} MiB", flat),
    )
    return BenchResult(sections=(section,), checks=checks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.picker", description=__doc__)
    parser.add_argument("--picker", metavar="FILE", help="a picker module to measure instead")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--deadline", type=float, default=DEADLINE_S)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        asyncio.run(_child(args.picker, args.rounds))
        return 0
    result = measure(args.picker, args.rounds, args.deadline)
    s = summary(result)
    s["planned"] = args.rounds * len(KEYS)
    print(json.dumps(s, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
