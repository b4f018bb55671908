"""TCP connections through a whole session (root, the real kernel): `record` a program that
serves and connects on 127.0.0.1 and ::1 and tries a closed port; the JSON summary, the
journal, connections.parquet and `open` all hold exactly those connections."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from tracing.session.stored import open_session
from tracing.session.window import whole, window_connections
from tracing.sources import StoredSource
from tui.app import SikteApp
from tui.columns import RowKey
from tui.connections import ConnectionsScreen
from tui.table import KeyedTable

from ..tui.conftest import until

pytestmark = pytest.mark.ebpf

SIKTE = [sys.executable, "-m", "cli.main"]
ROOT = Path(__file__).resolve().parents[2]
N = 7

# Listens on both families, connects N times to each, accepts each, then connects to a port
# nobody listens on (its own, closed). Prints the ports it used as JSON.
PROGRAM = f"""
import json, socket
ports = {{}}
for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    server = socket.socket(family)
    server.bind((host, 0))
    server.listen(16)
    port = server.getsockname()[1]
    for _ in range({N}):
        client = socket.create_connection((host, port))
        accepted, _ = server.accept()
        client.sendall(b"x"); accepted.recv(1)
        client.close(); accepted.close()
    server.close()
    ports[host] = port
closed = socket.socket(); closed.bind(("127.0.0.1", 0)); dead = closed.getsockname()[1]
closed.close()
try:
    socket.create_connection(("127.0.0.1", dead))
except ConnectionRefusedError:
    ports["refused"] = dead
print(json.dumps(ports))
"""


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> dict:
    where = tmp_path_factory.mktemp("conns")
    db, out = where / "c.sikte.db", where / "pq"
    run = subprocess.run([*SIKTE, "record", "--json", "--db-path", str(db), "--output",
                          str(out), "--", sys.executable, "-c", PROGRAM], cwd=ROOT,
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert run.returncode == 0, run.stderr
    # With --json the program's output goes to stderr, among sikte-tui's own lines.
    ports = next(json.loads(line) for line in run.stderr.splitlines() if line.startswith("{"))
    return {"json": json.loads(run.stdout), "db": db, "out": out, "ports": ports}


def expected_rows(frame: pd.DataFrame, ports: dict) -> None:
    """Exactly N outbound and N inbound per family, ok and closed; one refused."""
    for host, family in (("127.0.0.1", 4), ("::1", 6)):
        port = ports[host]
        out = frame[(frame.family == family) & (frame.direction == "out")
                    & (frame.dport == port)]
        inbound = frame[(frame.family == family) & (frame.direction == "in")
                        & (frame.sport == port)]
        assert len(out) == N and len(inbound) == N, (host, len(out), len(inbound))
        assert set(out.result) == {"ok"} and set(inbound.result) == {"ok"}
        assert set(out.daddr) == {host} and set(inbound.daddr) == {host}
        assert set(out.state) == {"CLOSE"}
        # Each outbound connection's local port is one inbound connection's remote port.
        assert sorted(out.sport) == sorted(inbound.dport)
    refused = frame[frame.result == "refused"]
    assert len(refused) == 1
    assert (refused.iloc[0].dport, refused.iloc[0].error) == (ports["refused"], "ECONNREFUSED")
    assert len(frame) == 4 * N + 1


def test_record_json_has_the_connections(recorded):
    frame = pd.DataFrame(recorded["json"]["connections"])
    expected_rows(frame, recorded["ports"])
    assert recorded["json"]["drops"]["tcp_events"] == 0
    pid = recorded["json"]["processes"][0]["pid"]
    assert set(frame.pid) == {pid}


def test_connections_parquet_holds_them_with_duckdb_and_pandas(recorded):
    frame = pd.read_parquet(recorded["out"] / "connections.parquet")
    expected_rows(frame, recorded["ports"])
    assert frame["duration_ns"].notna().all() and (frame["duration_ns"] > 0).all()
    assert (frame["end_ts"] >= frame["ts"]).all()
    refused = duckdb.connect().execute(
        f"SELECT count(*) FROM '{recorded['out']}/connections.parquet' "
        "WHERE result = 'refused'").fetchone()[0]
    assert refused == 1


@pytest.mark.parametrize("which", ["db", "out"])
def test_connections_survive_export_and_open(recorded, which):
    session = open_session(recorded[which])
    connections = window_connections(session, whole(session))
    frame = pd.DataFrame({f: [getattr(c, f) for c in connections]
                          for f in ("family", "direction", "dport", "sport", "daddr",
                                    "result", "state", "error")})
    expected_rows(frame, recorded["ports"])


def select_row(table: KeyedTable, key: RowKey) -> None:
    """Put the cursor on the row `key`: which row comes first depends on timing (connect and
    accept4 take about as long), and `c` opens the connections of the cursor's row."""
    table.move_cursor(next(i for i, row in enumerate(table.rows) if row.key == key))
    assert table.cursor_key == key


def shown_results(screen: ConnectionsScreen) -> list[str]:
    return [str(row.cells["result"]) for row in screen.query_one(KeyedTable).rows]


@pytest.mark.parametrize("which", ["db", "out"])
async def test_open_shows_the_connections_view(recorded, which):
    app = SikteApp(source=StoredSource(open_session(recorded[which])))
    async with app.run_test(size=(160, 48)) as pilot:
        def row_keys() -> list[RowKey]:
            return [row.key for row in app.screen.query_one(KeyedTable).rows]

        await until(pilot, lambda: {("connect", 0), ("accept4", 0)} <= set(row_keys()),
                    seen=row_keys)
        select_row(app.screen.query_one(KeyedTable), ("connect", 0))
        await pilot.press("c")
        screen = await until(pilot, lambda: isinstance(app.screen, ConnectionsScreen)
                             and app.screen)
        assert isinstance(screen, ConnectionsScreen)
        # A connect row: the outbound connections, N per family and the refused one.
        await until(pilot, lambda: len(shown_results(screen)) == 2 * N + 1,
                    seen=lambda: shown_results(screen))
        results = shown_results(screen)
        assert sum(r.startswith("refused") for r in results) == 1, results
        assert sum(r == "ok" for r in results) == 2 * N, results
        # `a`: every connection, the accepted ones too.
        await pilot.press("a")
        await until(pilot, lambda: len(shown_results(screen)) == 4 * N + 1,
                    seen=lambda: shown_results(screen))
        results = shown_results(screen)
        assert sum(r.startswith("refused") for r in results) == 1, results
        assert sum(r == "ok" for r in results) == 4 * N, results
        assert "1 failed" in str(screen.query_one("#connections-title").render())
