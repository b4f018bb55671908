"""Whether this process may load tracing programs: root, or CAP_BPF + CAP_PERFMON."""

from __future__ import annotations

import os
from pathlib import Path

from tracing.errors import UserError

CAP_SYS_ADMIN = 21
CAP_PERFMON = 38
CAP_BPF = 39


def effective_caps() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def missing_privileges() -> str | None:
    """None when tracing is allowed, else what is missing, in words."""
    if os.geteuid() == 0:
        return None
    caps = effective_caps()
    if caps & (1 << CAP_SYS_ADMIN):
        return None
    missing = [name for bit, name in ((CAP_BPF, "CAP_BPF"), (CAP_PERFMON, "CAP_PERFMON"))
               if not caps & (1 << bit)]
    return None if not missing else "root, or " + " and ".join(missing)


def require_tracing_privileges() -> None:
    missing = missing_privileges()
    if missing:
        raise UserError(f"tracing needs {missing}: run with sudo")
