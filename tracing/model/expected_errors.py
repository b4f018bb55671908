"""Errors that are part of a syscall's normal use, not failures.

A non-blocking `read` with nothing to read returns EAGAIN, a non-blocking `connect` returns
EINPROGRESS, and a blocking call that a signal interrupts returns EINTR (or, as the
raw_syscalls tracepoint sees it before the kernel restarts the call, ERESTARTSYS and its
kin). sikte-tui counts them as errors, as strace does; these helpers let the views mark rows
whose only errors are such codes, so "errors only" can leave them out.

The exact counts (maps) do not say which errno a call returned: only the individual events
do. A row counts as "expected errors only" when every one of its errors was seen as an event
with an expected code; with events dropped or not kept, its errors stay unexpected (shown).
Pure numpy over EVENT_DTYPE batches: no bcc, no Textual.
"""

from __future__ import annotations

import errno

import numpy as np

from tracing.model.stats import StatKey, key_numbers

# ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND and ERESTART_RESTARTBLOCK: kernel-internal
# codes a syscall returns when a signal interrupted it and the kernel restarts it (or turns
# it into EINTR) on the way back to user space; the tracepoint sees them first.
_RESTART_CODES = (512, 513, 514, 516)

EXPECTED_ERRNOS: frozenset[int] = frozenset(
    {errno.EAGAIN, errno.EINPROGRESS, errno.EINTR, *_RESTART_CODES})  # EWOULDBLOCK == EAGAIN
EXPECTED_NAMES = "EAGAIN, EINPROGRESS, EINTR"  # as documented; the restart codes go with EINTR

_EXPECTED_RETS = np.array(sorted(-e for e in EXPECTED_ERRNOS), dtype=np.int64)


def expected_error_counts(events: np.ndarray) -> dict[StatKey, int]:
    """Per entry (pid, tid, nr, abi): how many of these events failed with an expected
    code."""
    if not len(events):
        return {}
    picked = events[np.isin(events["ret"], _EXPECTED_RETS)]
    if not len(picked):
        return {}
    keys = np.stack([picked["pid"].astype(np.uint64), picked["tid"].astype(np.uint64),
                     key_numbers(picked), picked["abi"].astype(np.uint64)], axis=1)
    unique, counts = np.unique(keys, axis=0, return_counts=True)
    return {StatKey(int(p), int(t), int(n), int(a)): int(c)
            for (p, t, n, a), c in zip(unique.tolist(), counts.tolist(), strict=True)}
