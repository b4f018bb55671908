"""The connection model without the kernel: the set keeps the newest state of each, within
a limit that forgets the oldest ended ones first; the per-remote summary."""

from __future__ import annotations

from tracing.model.connections import Connection, ConnectionSet, summarize


def conn(conn_id: int, *, ended: bool = True, dport: int = 443, result: str = "ok",
         direction: str = "out") -> Connection:
    return Connection(conn_id, ts_ns=conn_id * 1000, pid=1, tid=1, comm="c", cgroup_id=0,
                      family=4, saddr="10.0.0.1", sport=40000 + conn_id, daddr="10.0.0.2",
                      dport=dport, direction=direction,
                      state="CLOSE" if ended else "ESTABLISHED",
                      end_ts_ns=conn_id * 1000 + 500 if ended else 0,
                      result=result if ended else "")


def test_the_newest_state_wins():
    kept = ConnectionSet()
    kept.update([conn(1, ended=False)])
    kept.update([conn(1)])
    assert [c.state for c in kept] == ["CLOSE"] and len(kept) == 1


def test_the_limit_forgets_the_oldest_ended_connections_only():
    kept = ConnectionSet(limit=100)
    kept.update([conn(0, ended=False)])  # the oldest, but still open: kept
    kept.update(conn(i) for i in range(1, 110))
    assert len(kept) == 110  # within the 10% slack
    kept.update([conn(110)])
    assert len(kept) == 100 and kept.forgotten == 11
    ids = sorted(c.conn_id for c in kept)
    assert ids[0] == 0 and ids[1] == 12


def test_summary_per_remote_endpoint():
    rows = summarize([conn(1), conn(2, result="refused"), conn(3, ended=False),
                      conn(4, dport=80), conn(5, direction="in")])
    https = next(r for r in rows if r.remote == "10.0.0.2:443")
    assert (https.connections, https.failures, https.open, https.avg_duration_ns) == (
        3, 1, 1, 500)
    assert [r.remote for r in rows] == ["10.0.0.2:443", "10.0.0.2", "10.0.0.2:80"]
