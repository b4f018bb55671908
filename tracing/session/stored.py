"""A saved session, read back: from a journal (SQLite) or a Parquet directory, into the
same plain tables (StoredSession), so `open` and `export` do not care which one they were
given. This module picks the reader; journal_reader.py and parquet_reader.py read, and
stored_session.py holds the tables.

Times stay on the kernel's monotonic clock (ns) inside; `wall_offset_ns` turns them into
UTC nanoseconds (`ts_ns + wall_offset_ns`), exactly, in both directions.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tracing.errors import UserError
from tracing.session.journal_reader import from_journal
from tracing.session.parquet_reader import from_parquet
from tracing.session.stored_session import StoredSession, wall_offset_ns

__all__ = ["StoredSession", "open_session", "wall_offset_ns"]


def open_session(path: Path) -> StoredSession:
    """A journal file or a Parquet directory; UserError with one line (exit 2) for anything
    else, however it is malformed: a session file is untrusted input."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise UserError(f"{path}: no such session file or directory; "
                        "'sikte-tui open' with no argument lists the saved sessions") from None
    except OSError as err:
        raise UserError(f"{path}: cannot read it ({err.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        return from_parquet(path)
    return from_journal(path)
