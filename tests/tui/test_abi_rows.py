"""Two ABIs in one replay (tests/tui/abi_fixture.py): the live view keeps the i386 calls
apart from the x86_64 ones and labels a name both have; the drill-down shows one ABI's calls
and names the kernel's restart codes."""

from __future__ import annotations

from syscall_tables import ABI_COMPAT, ABI_NATIVE
from tracing.model.stats import Snapshot
from tui.app import SikteApp
from tui.detail import DetailScreen

from .abi_fixture import GETPPID_PER_TICK, PID32, with_i386
from .conftest import until
from .test_live import (
    SIZE,
    by_name,
    datatable_rows,
    live,
    loaded,
    move_to,
    plain,
    table_of,
)


def rows(app: SikteApp) -> dict[object, tuple[str, int]]:
    return {r.key: (str(r.values["name"]), int(r.values["count"]))  # type: ignore[call-overload]
            for r in table_of(app).rows}


async def test_two_abis_stay_apart_and_are_labelled(make_replay_app, snapshots: list[Snapshot]):
    items = with_i386(snapshots)
    native = by_name(snapshots[-1])["getppid"].count
    i386 = GETPPID_PER_TICK * len(items)
    app = make_replay_app(items)
    async with app.run_test(size=SIZE) as pilot:
        await loaded(pilot)
        want = {("getppid", ABI_NATIVE): ("getppid (x86_64)", native),
                ("getppid", ABI_COMPAT): ("getppid (i386)", i386),
                ("_llseek", ABI_COMPAT): ("_llseek", len(items))}
        await until(pilot, lambda: all(rows(app).get(k) == v for k, v in want.items()),
                    seen=lambda: {k: rows(app).get(k) for k in want})
        assert ("semget", ABI_NATIVE) not in rows(app)  # i386 64 is not x86_64's semget

        await move_to(pilot, ("getppid", ABI_COMPAT))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        screen = app.screen
        assert (screen.syscall, screen.pid, screen.abi) == ("getppid", None, ABI_COMPAT)
        title = plain(screen.query_one("#detail-title"))
        assert title.startswith(f"getppid (i386) · all processes · calls {i386:,} · errors 0")
        assert [r[0] for r in datatable_rows(screen, "#by-process")] == [str(PID32)]
        await pilot.press("escape")
        await until(pilot, lambda: table_of(app).cursor_key == ("getppid", ABI_COMPAT))

        await move_to(pilot, ("_llseek", ABI_COMPAT))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        errnos = datatable_rows(app.screen, "#by-errno")
        assert [r[:2] for r in errnos] == [["ERESTARTSYS", str(len(items))]]
        await pilot.press("escape")
        await until(pilot, lambda: table_of(app).cursor_key == ("_llseek", ABI_COMPAT))

        await pilot.press("g", "g", "g")  # process × syscall
        await until(pilot, lambda: live(app).grouping.key == "pid_syscall")
        await until(pilot, lambda: rows(app).get((PID32, "getppid", ABI_COMPAT))
                    == ("getppid (i386)", i386), seen=lambda: rows(app).get(
                        (PID32, "getppid", ABI_COMPAT)))
