"""A saved session's activity over time (tracing.model.timeseries) from its timeline: the
same slots a live trace builds from its snapshots, so the charts read alike.

The timeline stores one row per entry that changed in an interval, at the interval's end;
an interval without calls leaves no row, so the slots' covered time is their width (up to the
session's end), not the sum of stored intervals.
"""

from __future__ import annotations

import numpy as np

from tracing.model.timeseries import BASE_SLOT_NS, MAX_SLOTS, SessionSeries
from tracing.session.stored_session import StoredSession
from tracing.session.window import whole


def stored_series(session: StoredSession, slot_ns: int = BASE_SLOT_NS,
                  max_slots: int = MAX_SLOTS) -> SessionSeries:
    full = whole(session)
    # The width the slots would double to anyway: chosen first, each row is placed once.
    while (full.end_ns - full.start_ns) > slot_ns * max_slots:
        slot_ns *= 2
    series = SessionSeries(full.start_ns, slot_ns, max_slots)
    tl = session.timeline
    if not tl.empty:
        # Rows past the session's end (a session cut short) are its last slot's.
        ts = np.minimum(tl["ts_ns"].to_numpy(np.int64), full.end_ns).tolist()
        columns = [tl[c].to_numpy(np.int64).tolist()
                   for c in ("nr", "abi", "count", "errors", "total_ns")]
        for t, nr, abi, count, errors, total, hist in zip(ts, *columns, tl["hist"],
                                                          strict=True):
            series.add_entry(t, nr, abi, count, errors, total, hist)
    series.close(full.end_ns)
    return series
