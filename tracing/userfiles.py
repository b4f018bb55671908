"""Where a user's sessions live, and who owns what sikte-tui writes for them.

Under `sudo`, files written for the user (journals, exports) belong to the invoking user
(SUDO_UID, SUDO_GID) and live in that user's data directory, not root's.
"""

from __future__ import annotations

import contextlib
import os
import pwd
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Owner:
    uid: int
    gid: int
    home: Path


def invoking_user() -> Owner:
    """The user sikte-tui works for: the sudo caller when run under sudo as root."""
    uid, gid = os.getuid(), os.getgid()
    if uid == 0 and os.environ.get("SUDO_UID", "").isdigit():
        uid = int(os.environ["SUDO_UID"])
        gid = int(os.environ.get("SUDO_GID", uid)) if os.environ.get(
            "SUDO_GID", "").isdigit() else uid
    try:
        home = Path(pwd.getpwuid(uid).pw_dir)
    except KeyError:  # a uid without a passwd entry
        home = Path(os.environ.get("HOME", "/"))
    if uid == os.getuid():
        home = Path(os.environ.get("HOME", str(home)))
    return Owner(uid, gid, home)


def sessions_dir(owner: Owner | None = None) -> Path:
    """$XDG_DATA_HOME/sikte-tui/sessions of the invoking user (~/.local/share by default).

    sudo resets the environment, so XDG_DATA_HOME is honoured when it was kept (sudo -E)."""
    owner = owner or invoking_user()
    base = os.environ.get("XDG_DATA_HOME") or str(owner.home / ".local" / "share")
    return Path(base) / "sikte-tui" / "sessions"


def give_to(path: Path, owner: Owner | None = None) -> None:
    """Make path belong to the invoking user (a no-op unless we are root working for
    someone else). Errors are ignored: ownership is a courtesy, the data is what matters."""
    owner = owner or invoking_user()
    if os.geteuid() != 0 or (owner.uid, owner.gid) == (0, 0):
        return
    with contextlib.suppress(OSError):
        os.chown(path, owner.uid, owner.gid, follow_symlinks=False)


def give_tree_to(path: Path, owner: Owner | None = None) -> None:
    """give_to for a directory and everything in it."""
    give_to(path, owner)
    if path.is_dir():
        for child in path.rglob("*"):
            give_to(child, owner)


def make_dirs_for(path: Path, owner: Owner | None = None) -> None:
    """Create the missing parents of path, each owned by the invoking user."""
    missing = []
    parent = path.parent
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    for directory in reversed(missing):
        directory.mkdir(exist_ok=True)
        give_to(directory, owner)
