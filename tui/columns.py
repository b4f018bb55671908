"""What every table is made of: Column, Row and its key, and the live view's groupings
and metric columns (which rows.py fills and live.py shows).

Pure Python (no Textual): KeyedTable (table.py) draws these; the screens build them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass

# A row's identity: the values that name it, in order, e.g. (pid, "openat") or (conn_id,).
RowKey = tuple[str | int, ...]

GAP = 2  # spaces between a table's columns (KeyedTable draws them)


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    numeric: bool = True
    width: int = 7  # fixed, so the table never measures every row
    # When the terminal is narrow, columns go from the highest priority down (0: always
    # shown); the sort column always stays. See KeyedTable.
    priority: int = 0
    optional: bool = False  # hidden while no row has a value ("" or "-")


class Row:
    """One table row: `key` is stable across snapshots (a tuple: the row's identity, e.g.
    (pid, syscall), never joined into a string); `values` are raw (for sorting and filters);
    `cells` are the formatted texts, made when the row is drawn."""

    __slots__ = ("_cells", "key", "values")

    def __init__(self, key: RowKey, values: Mapping[str, object],
                 cells: Mapping[str, str] | Callable[[], Mapping[str, str]]) -> None:
        self.key = key
        self.values = values
        self._cells = cells

    @property
    def cells(self) -> Mapping[str, str]:
        cells = self._cells
        return cells() if callable(cells) else cells


@dataclass(frozen=True, slots=True)
class Grouping:
    key: str
    label: str
    identity: tuple[Column, ...]


_NAME = Column("name", "syscall", False, 22)  # the longest syscall names are ~22 characters
_COMM = Column("comm", "comm", False, 15)  # the kernel keeps 15 characters of a comm
_PID = Column("pid", "pid")
_CONTAINER = Column("container", "container", False, 14, priority=1, optional=True)
GROUPINGS = (
    Grouping("syscall", "by syscall", (_NAME,)),
    Grouping("process", "by process", (_PID, _COMM, _CONTAINER)),
    Grouping("thread", "by thread", (_PID, Column("tid", "tid"), _COMM, _CONTAINER)),
    # At 80 columns the comm goes first here: pid and syscall already name the row.
    Grouping("pid_syscall", "process × syscall",
             (_PID, dataclasses.replace(_COMM, priority=1), _NAME)),
    # As htop and csysdig do: many short-lived processes of one name (make, a shell loop)
    # become one row; procs says how many processes it holds.
    Grouping("comm", "by command", (_COMM, Column("procs", "procs"))),
)

METRICS = (
    # calls, errors, total, p99 and max fit 80 columns; the others follow as room allows.
    Column("count", "calls", True, 9),
    Column("rate", "rate/s", priority=2),
    Column("errors", "errors", True, 9),
    Column("err_pct", "err%", priority=4),
    Column("total_ns", "total"),
    Column("time_pct", "%time", priority=5),
    Column("avg_ns", "avg", priority=3),
    Column("p50_ns", "p50", priority=7),
    Column("p95_ns", "p95", priority=6),
    Column("p99_ns", "p99"),
    Column("max_ns", "max"),
)


def columns(grouping: Grouping) -> tuple[Column, ...]:
    return grouping.identity + METRICS


def grouping_columns(grouping: Grouping) -> frozenset[str]:
    return frozenset(c.key for c in grouping.identity)
