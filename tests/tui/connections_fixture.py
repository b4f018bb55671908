"""Synthetic TCP connections on top of the recorded replay fixture, for the Connections view's
tests: three more processes (curl; nginx in the docker container "web"; python3 in an
unnamed containerd container) with connect/accept4 syscalls, and eight connections whose
states move on from one snapshot to the next. The recorded data (tests/tui/data) is not
changed: the other snapshot tests depend on it.

Connections, by the snapshot that last changes them (times from the trace's start):

  1 curl    out 10.0.0.5:41000 -> 93.184.216.34:443   SYN_SENT, ESTABLISHED (2), CLOSE ok (3)
  2 curl    out 10.0.0.5:41002 -> 10.0.0.9:5432       refused ECONNREFUSED, 1 ms (1)
  3 nginx   in  172.17.0.2:80 <- 192.168.1.50:51515   ESTABLISHED, stays open (1)
  4 python3 out [::1]:40404 -> [::1]:8080             timeout ETIMEDOUT, 200 ms (2)
  5 nginx   in  172.17.0.2:80 <- 192.168.1.50:51517   ESTABLISHED (2), CLOSE ok 300 ms (3)
  6 python3 out 10.0.0.5:41010 -> 93.184.216.34:443   ESTABLISHED, stays open (3)
  7 curl    out 10.0.0.5:41020 -> 10.0.0.10:6379      unreachable EHOSTUNREACH, 3 ms (4)
  8 nginx   in  172.17.0.2:80 <- 10.1.2.3:40000       reset ECONNRESET, 40 ms (4)
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

from tracing.model.connections import INBOUND, OUTBOUND, Connection
from tracing.model.stats import ProcessInfo, Snapshot, StatKey, SyscallStats

CURL, NGINX, PYTHON = 4242, 5151, 6161
WEB_ID = "3f2a9c1b7d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4"
APP_ID = "8d1e0c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d"
CONNECT, ACCEPT4 = 42, 288  # x86_64
MS = 1_000_000

_CONTAINERS = {
    CURL: {},
    NGINX: {"cgroup_path": f"/system.slice/docker-{WEB_ID}.scope", "container_id": WEB_ID,
            "container_name": "web", "container_runtime": "docker"},
    PYTHON: {"cgroup_path": f"/kubepods/pod1/{APP_ID}", "container_id": APP_ID,
             "container_runtime": "containerd"},
}
_COMMS = {CURL: "curl", NGINX: "nginx", PYTHON: "python3"}
_STATS = {
    StatKey(CURL, CURL, CONNECT): SyscallStats(3, 2, 90_000, 20_000, 40_000, ()),
    StatKey(PYTHON, PYTHON, CONNECT): SyscallStats(2, 1, 50_000, 20_000, 30_000, ()),
    StatKey(NGINX, NGINX, ACCEPT4): SyscallStats(3, 0, 30_000, 9_000, 11_000, ()),
}


def _conn(conn_id: int, start_ms: int, pid: int, local: tuple[str, int],
          remote: tuple[str, int], direction: str, state: str, start_ns: int,
          end_ms: int | None = None, result: str = "", error: str = "") -> Connection:
    family = 6 if ":" in local[0] else 4
    return Connection(
        conn_id, start_ns + start_ms * MS, pid, pid, _COMMS[pid], 1000 + pid, family,
        local[0], local[1], remote[0], remote[1], direction, state,
        end_ts_ns=start_ns + end_ms * MS if end_ms is not None else 0, result=result,
        error=error, **_CONTAINERS[pid])


def _changes(start_ns: int) -> list[tuple[Connection, ...]]:
    """The connections each of the four snapshots carries (new or changed)."""
    def c(*args, **kwargs) -> Connection:
        return _conn(*args, start_ns=start_ns, **kwargs)

    curl_443 = (1, 10, CURL, ("10.0.0.5", 41000), ("93.184.216.34", 443), OUTBOUND)
    nginx_51517 = (5, 40, NGINX, ("172.17.0.2", 80), ("192.168.1.50", 51517), INBOUND)
    return [
        (c(*curl_443, "SYN_SENT"),
         c(2, 20, CURL, ("10.0.0.5", 41002), ("10.0.0.9", 5432), OUTBOUND, "CLOSE", end_ms=21,
           result="refused", error="ECONNREFUSED"),
         c(3, 25, NGINX, ("172.17.0.2", 80), ("192.168.1.50", 51515), INBOUND, "ESTABLISHED")),
        (c(*curl_443, "ESTABLISHED"),
         c(4, 30, PYTHON, ("::1", 40404), ("::1", 8080), OUTBOUND, "CLOSE", end_ms=230,
           result="timeout", error="ETIMEDOUT"),
         c(*nginx_51517, "ESTABLISHED")),
        (c(*curl_443, "CLOSE", end_ms=500, result="ok"),
         c(*nginx_51517, "CLOSE", end_ms=340, result="ok"),
         c(6, 510, PYTHON, ("10.0.0.5", 41010), ("93.184.216.34", 443), OUTBOUND,
           "ESTABLISHED")),
        (c(7, 600, CURL, ("10.0.0.5", 41020), ("10.0.0.10", 6379), OUTBOUND, "CLOSE",
           end_ms=603, result="unreachable", error="EHOSTUNREACH"),
         c(8, 610, NGINX, ("172.17.0.2", 80), ("10.1.2.3", 40000), INBOUND, "CLOSE",
           end_ms=650, result="reset", error="ECONNRESET")),
    ]


def _processes(snapshot: Snapshot) -> dict[int, ProcessInfo]:
    extra = {pid: ProcessInfo(pid, 1, comm, f"/usr/bin/{comm}", (comm,), "x86_64",
                              snapshot.start_ts_ns,
                              container=_CONTAINERS[pid].get("container_name")
                              or _CONTAINERS[pid].get("container_id", "")[:12])
             for pid, comm in _COMMS.items()}
    return {**snapshot.processes, **extra}


def with_connections(snapshots: list[Snapshot]) -> list[Snapshot]:
    """The recorded snapshots (four) with the synthetic processes, syscalls and
    connections: the syscalls all in the first snapshot, the connections as listed above."""
    changes = _changes(snapshots[0].start_ts_ns)
    out = []
    for i, s in enumerate(snapshots):
        stats = {**s.stats, **_STATS}
        interval = {**s.interval, **_STATS} if i == 0 else dict(s.interval)
        out.append(dataclasses.replace(
            s, stats=MappingProxyType(stats), interval=MappingProxyType(interval),
            processes=MappingProxyType(_processes(s)), connections=changes[i]))
    return out
