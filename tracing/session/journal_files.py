"""A new journal's files: its name in the sessions folder, the file and SQLite's side files
made safely before SQLite opens them by name, and whether it sits in the user's sessions
folder (which gives it that folder's cap). The Journal that writes them is in journal.py.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

from tracing.boundary.userfiles import Dir, Owner, ensure_sessions_dir, open_dir, sessions_dir
from tracing.errors import UserError
from tracing.session.schema import JOURNAL_SUFFIXES


def default_journal_name(targets: Iterable[str], wall_time: float) -> str:
    """A file name that sorts by time and says what was traced: 20261123-101500-ls.sikte.db"""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(wall_time))
    first = next(iter(targets), "trace")
    word = os.path.basename(first.split()[0]) if first.split() else "trace"
    slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in word)[:32] or "trace"
    return f"{stamp}-{slug}.sikte.db"


def new_journal_path(owner: Owner, targets: tuple[str, ...]) -> Path:
    """A new file in the user's sessions folder, named after the time and what is traced
    (with -2, -3... when the name, or one of SQLite's side files of it, is taken)."""
    with ensure_sessions_dir(owner) as directory:
        name = base = default_journal_name(targets, time.time())
        n = 2
        while any(directory.lstat(f"{name}{s}") for s in JOURNAL_SUFFIXES):
            name = base.replace(".sikte.db", f"-{n}.sikte.db")
            n += 1
        return directory.path / name


def precreate(path: Path, owner: Owner) -> Dir:
    """SQLite opens the journal and its side files by name, some of them later: all are
    made here first, new (O_EXCL, no link followed), 0600 and the user's, in a directory
    no other user can change, so SQLite only ever opens files we made."""
    directory = open_dir(path.parent, owner, create=True, trusted=True)
    made: list[str] = []
    try:
        for suffix in JOURNAL_SUFFIXES:
            name = f"{path.name}{suffix}"
            try:
                directory.create(name).close()
            except FileExistsError:
                raise UserError(f"{path.parent / name} already exists; choose another "
                                "--db-path or remove it") from None
            made.append(name)
    except BaseException:
        for name in made:
            directory.unlink(name)
        directory.close()
        raise
    return directory


def in_sessions_folder(path: Path, owner: Owner) -> bool:
    """The journal goes into the user's sessions folder (by identity, not by spelling)."""
    try:
        here = os.stat(path.parent)
        there = os.stat(sessions_dir(owner))
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)
