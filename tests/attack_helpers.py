"""Another user's attacks on the files root writes (needs root): a root-only canary that must
stay as it was, a shared directory like /tmp, and symbolic links planted there as `nobody`.
Used by the unit tests of writing user files and the ebpf tests of `sikte-tui record`."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

NOBODY = 65534
CANARY_TEXT = "root's secret, unchanged\n"


def make_canary(directory: Path) -> Path:
    """A root-only file (0600 in a 0700 directory) with known content, under `directory`."""
    secret = directory / "root-only"
    secret.mkdir(mode=0o700)
    path = secret / "canary"
    path.write_text(CANARY_TEXT)
    path.chmod(0o600)
    return path


def assert_intact(canary: Path) -> None:
    """The canary as make_canary left it: content, mode, owner, and alone in its directory."""
    st = canary.lstat()
    assert canary.read_text() == CANARY_TEXT
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o600, 0, 0)
    assert sorted(os.listdir(canary.parent)) == ["canary"]


@contextlib.contextmanager
def shared_dir() -> Iterator[Path]:
    """A directory like /tmp: root's, world-writable, sticky (a test's tmp_path is root-only,
    so a test user could not reach anything under it); removed when done."""
    path = Path(tempfile.mkdtemp(prefix="sikte-shared-", dir="/tmp"))
    path.chmod(0o1777)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def plant_link(link: Path, target: Path) -> None:
    """A symlink as user nobody would make it."""
    os.symlink(target, link)
    os.lchown(link, NOBODY, NOBODY)
