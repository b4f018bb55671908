"""TCP connections of the traced processes: the data model and the per-remote summary.

Pure: no bcc, no Textual, no I/O. The engine (tracing/net/tcp_monitor.py, from bpf/tcp.bpf.c's
state changes) hands out a Connection each time one starts or changes; snapshots carry the
connections that are new or changed since the previous snapshot, and whoever keeps them
(ConnectionSet) keeps the newest per `conn_id`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

# include/net/tcp_states.h (a stable numbering: tracefs prints the same names).
TCP_STATES = {
    1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
    6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING",
    12: "NEW_SYN_RECV",
}

OUTBOUND = "out"  # this process connected
INBOUND = "in"  # this process accepted

# Results: "" while a connect is in progress or a connection is open, then one of these.
RESULT_OK = "ok"  # established, and (once it ends) closed after that
RESULT_REFUSED = "refused"  # ECONNREFUSED: a RST answered the SYN
RESULT_TIMEOUT = "timeout"  # ETIMEDOUT: no answer
RESULT_RESET = "reset"  # ECONNRESET: reset after it was established
RESULT_UNREACHABLE = "unreachable"  # EHOSTUNREACH, ENETUNREACH
RESULT_FAILED = "failed"  # any other error (the errno name is in `error`)


@dataclass(frozen=True, slots=True)
class Connection:
    """One TCP connection as far as it has come."""

    conn_id: int  # unique within the trace
    ts_ns: int  # when it started (connect, or accepted), monotonic ns
    pid: int  # the owner: the process that connected or accepted
    tid: int
    comm: str
    cgroup_id: int  # the owner's cgroup v2 id (the inode of its /sys/fs/cgroup directory)
    family: int  # 4 or 6
    saddr: str  # local address, as text ("127.0.0.1", "::1")
    sport: int
    daddr: str  # remote address
    dport: int
    direction: str  # OUTBOUND or INBOUND
    state: str  # the newest TCP state: "SYN_SENT", "ESTABLISHED", "CLOSE", ...
    end_ts_ns: int = 0  # when it reached CLOSE (0 while it lives)
    result: str = ""  # "" while in progress, else a RESULT_*
    error: str = ""  # the errno name of a failure ("ECONNREFUSED"), else ""
    cgroup_path: str = ""  # "/system.slice/docker-<id>.scope", "" when unknown
    container_id: str = ""  # "" outside containers
    container_name: str = ""  # from the runtime when it can tell, else ""
    container_runtime: str = ""  # "docker", "containerd", "podman", "kubepods", "systemd"...

    @property
    def ended(self) -> bool:
        return self.end_ts_ns > 0

    def duration_ns(self, now_ns: int) -> int:
        """How long it lived, or has lived so far (at monotonic `now_ns`)."""
        end = self.end_ts_ns or now_ns
        return max(end - self.ts_ns, 0)

    @property
    def remote(self) -> str:
        """The remote endpoint as one string: "10.0.0.1:443", "[::1]:8080"."""
        return endpoint(self.daddr, self.dport, self.family)

    @property
    def local(self) -> str:
        return endpoint(self.saddr, self.sport, self.family)

    @property
    def failed(self) -> bool:
        return self.result not in ("", RESULT_OK)


def endpoint(addr: str, port: int, family: int) -> str:
    return f"[{addr}]:{port}" if family == 6 else f"{addr}:{port}"


MAX_KEPT = 100_000  # connections a ConnectionSet keeps; beyond, the oldest ended ones go


class ConnectionSet:
    """The newest state of every connection, from snapshots' changed connections; at most
    `limit` of them, forgetting the oldest that ended (the journal keeps every one)."""

    def __init__(self, limit: int = MAX_KEPT) -> None:
        self._connections: dict[int, Connection] = {}
        self.limit = limit
        self.forgotten = 0  # ended connections let go to stay within the limit
        self.version = 0  # increases whenever the set changes

    def update(self, connections: Iterable[Connection]) -> None:
        for c in connections:
            self._connections[c.conn_id] = c
            self.version += 1
        if len(self._connections) > self.limit + self.limit // 10:  # in batches: O(1) a row
            self._forget_oldest_ended(len(self._connections) - self.limit)

    def _forget_oldest_ended(self, n: int) -> None:
        ended = [k for k, c in self._connections.items() if c.ended][:n]
        for k in ended:
            del self._connections[k]
        self.forgotten += len(ended)

    def reset(self) -> None:
        self._connections.clear()
        self.version += 1

    def __iter__(self) -> Iterator[Connection]:
        return iter(self._connections.values())

    def __len__(self) -> int:
        return len(self._connections)


@dataclass(frozen=True, slots=True)
class RemoteSummary:
    """Every connection to (or from) one remote endpoint."""

    remote: str  # "host:port" for outbound; the remote address alone for inbound
    direction: str
    connections: int
    failures: int
    open: int  # still open now
    avg_duration_ns: int  # over the ended ones (0 when none has)


def summarize(connections: Iterable[Connection]) -> list[RemoteSummary]:
    """Per remote endpoint: outbound ones by address and port, inbound ones by address (their
    ports are ephemeral); most connections first."""
    groups: dict[tuple[str, str], list[Connection]] = {}
    for c in connections:
        remote = c.remote if c.direction == OUTBOUND else c.daddr
        groups.setdefault((remote, c.direction), []).append(c)
    rows = []
    for (remote, direction), members in groups.items():
        ended = [c.end_ts_ns - c.ts_ns for c in members if c.ended]
        rows.append(RemoteSummary(
            remote, direction, len(members), sum(c.failed for c in members),
            sum(not c.ended for c in members), sum(ended) // len(ended) if ended else 0))
    rows.sort(key=lambda r: (-r.connections, r.remote, r.direction))
    return rows


def with_container(c: Connection, cgroup_path: str, container_id: str, name: str,
                   runtime: str) -> Connection:
    return dataclasses.replace(c, cgroup_path=cgroup_path, container_id=container_id,
                               container_name=name, container_runtime=runtime)
