"""The saved sessions in a directory, newest first, described from their metadata only
(reading a whole journal to list it would be slow)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from tracing.errors import UserError
from tracing.stored import connect_journal, read_meta


@dataclass(frozen=True)
class SessionSummary:
    path: Path
    start_wall_time: float
    duration_s: float
    targets: tuple[str, ...]
    state: str
    exit_code: int | None
    size_bytes: int
    problem: str = ""  # why it cannot be opened, if it cannot


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.iterdir() if p.is_file())
    return sum(p.stat().st_size for p in path.parent.glob(f"{path.name}*") if p.is_file())


def _summary(path: Path, meta: dict) -> SessionSummary:
    start = float(meta.get("start_wall_time") or 0.0)
    end = float(meta.get("end_wall_time") or start)
    return SessionSummary(path, start, max(end - start, 0.0),
                          tuple(meta.get("targets") or ()), str(meta.get("state", "?")),
                          meta.get("exit_code"), _size(path))


def describe_session(path: Path) -> SessionSummary:
    try:
        if path.is_dir():
            meta = json.loads((path / "session.json").read_text())
        else:
            db = connect_journal(path)
            try:
                meta = read_meta(db)
            finally:
                db.close()
    except (UserError, OSError, ValueError, sqlite3.Error) as err:
        return SessionSummary(path, path.stat().st_mtime, 0.0, (), "unreadable", None,
                              _size(path), str(err))
    return _summary(path, meta)


def list_sessions(directory: Path) -> list[SessionSummary]:
    """Journals (*.sikte.db) and Parquet session directories, newest first."""
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir()
             if p.name.endswith(".sikte.db") or (p.is_dir() and (p / "session.json").exists())]
    return sorted((describe_session(p) for p in found),
                  key=lambda s: (s.start_wall_time, s.path.name), reverse=True)
