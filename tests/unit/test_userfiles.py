"""One way to write a user's file (issue 12): the attacks of another user on what root writes
for the invoking user, run for real: symlinks planted by `nobody`, a root-only canary that must
stay as it was, and the modes and owners of what sikte-tui makes.

These need root (to act as another user and to chown the planted links) but load no BPF."""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.attack_helpers import (
    CANARY_TEXT,
    NOBODY,
    assert_intact,
    make_canary,
    plant_link,
    shared_dir,
)
from tracing.boundary.userfiles import (
    Owner,
    acting_as,
    check_new_file,
    invoking_user,
    open_dir,
    write_file,
)
from tracing.errors import UserError
from tracing.session.export import export_parquet
from tracing.session.journal import Journal, JournalOptions, start_journal
from tracing.session.replay import load_snapshots
from tracing.session.stored import open_session

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")

FIXTURE = Path(__file__).resolve().parents[1] / "tui" / "data" / "session.jsonl.gz"


@pytest.fixture(scope="module")
def snapshots():
    return load_snapshots(FIXTURE)


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    return make_canary(tmp_path)


@pytest.fixture
def shared() -> Iterator[Path]:
    with shared_dir() as path:
        yield path


@pytest.fixture
def as_sudo_nobody(monkeypatch: pytest.MonkeyPatch) -> Owner:
    """Run as `sudo` invoked by nobody would."""
    monkeypatch.setenv("SUDO_UID", str(NOBODY))
    monkeypatch.setenv("SUDO_GID", str(NOBODY))
    return invoking_user()


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


# -- who the user is ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["SUDO_GID", "SUDO_UID"])
def test_a_malformed_sudo_id_is_one_line_exit_2(monkeypatch, name):
    monkeypatch.setenv("SUDO_UID", "1000")
    monkeypatch.setenv("SUDO_GID", "1000")
    monkeypatch.setenv(name, "abc")
    with pytest.raises(UserError) as err:
        invoking_user()
    assert str(err.value).startswith(f"{name}=abc is not a number; ")
    assert err.value.exit_code == 2 and "\n" not in str(err.value)


def test_a_malformed_sudo_gid_fails_the_cli_in_one_line(monkeypatch, capsys, tmp_path,
                                                       snapshots, make_journal):
    from cli.main import main

    db = make_journal(tmp_path / "s.sikte.db", snapshots)
    monkeypatch.setenv("SUDO_UID", "1000")
    monkeypatch.setenv("SUDO_GID", "abc")
    assert main(["export", str(db), "--output", str(tmp_path / "pq")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "SUDO_GID=abc is not a number" in err[0]
    assert not (tmp_path / "pq").exists()


def test_sudo_ids_name_the_user(as_sudo_nobody):
    assert (as_sudo_nobody.uid, as_sudo_nobody.gid) == (NOBODY, NOBODY)


# -- per-thread credentials ---------------------------------------------------------------------


def test_acting_as_the_user_is_this_thread_only(canary):
    """The kernel refuses this thread what nobody may not do, while a thread started before
    still reads root's file: nothing else in sikte-tui loses root."""
    nobody = Owner(NOBODY, NOBODY, Path("/"))
    go, done = threading.Event(), threading.Event()
    seen: list[str] = []

    def other_thread() -> None:
        assert go.wait(10)
        seen.append(canary.read_text())
        seen.append(_fsuid())
        done.set()

    thread = threading.Thread(target=other_thread)
    thread.start()
    with acting_as(nobody):
        assert _fsuid() == str(NOBODY)
        with pytest.raises(PermissionError):
            canary.read_text()
        go.set()
        assert done.wait(10)
    thread.join(10)
    assert seen == [CANARY_TEXT, "0"]
    assert _fsuid() == "0" and canary.read_text() == CANARY_TEXT  # root again after it


def _fsuid() -> str:
    """This thread's filesystem uid (the 4th field of Uid: in its own status file)."""
    for line in Path("/proc/thread-self/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return line.split()[4]
    raise AssertionError("no Uid line")


# -- writing a file (--folded and the like) ----------------------------------------------------


@pytest.mark.parametrize("sudo", [False, True], ids=["root", "sudo-nobody"])
def test_a_planted_symlink_is_never_written_through(shared, canary, monkeypatch, sudo):
    if sudo:
        monkeypatch.setenv("SUDO_UID", str(NOBODY))
        monkeypatch.setenv("SUDO_GID", str(NOBODY))
    flame = shared / "flame.txt"
    plant_link(flame, canary)
    with pytest.raises(UserError, match=r"flame.txt exists and is a symbolic link"):
        write_file(flame, b"main;f 1\n")
    assert_intact(canary)
    assert flame.is_symlink() and os.readlink(flame) == str(canary)


def test_a_planted_link_in_the_middle_of_the_path_is_not_followed(shared, canary):
    plant_link(shared / "d", canary.parent)
    with pytest.raises(UserError, match=r"d is a symbolic link owned by uid 65534"):
        write_file(shared / "d" / "canary", b"x")
    with pytest.raises(UserError, match=r"symbolic link owned by uid 65534"):
        write_file(shared / "d" / "new", b"x")
    assert_intact(canary)
    assert sorted(os.listdir(canary.parent)) == ["canary"]


def test_the_cli_refuses_folded_through_a_planted_link(shared, canary, capsys, tmp_path,
                                                       snapshots, make_journal):
    from cli.main import main

    db = make_journal(tmp_path / "s.sikte.db", snapshots)
    flame = shared / "flame.txt"
    plant_link(flame, canary)
    assert main(["export", str(db), "--folded", str(flame)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--folded" in err[0] and "symbolic link" in err[0], err
    assert_intact(canary)


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o277])
def test_files_are_the_users_and_private_whatever_the_umask(shared, as_sudo_nobody, mask):
    out = shared / "folded.txt"
    with umask(mask):
        write_file(out, b"a;b 1\n")
        write_file(out, b"a;b 2\n")  # the user's own file is replaced whole
        with open_dir(shared / "new" / "deeper", as_sudo_nobody, create=True):
            pass
    assert out.read_bytes() == b"a;b 2\n"
    for path, want in ((out, 0o600), (shared / "new", 0o700), (shared / "new/deeper", 0o700)):
        st = path.lstat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (want, NOBODY, NOBODY), path
    assert sorted(os.listdir(shared)) == ["folded.txt", "new"]  # no temporary left


def test_folded_into_a_missing_directory_says_so(shared):
    with pytest.raises(UserError, match="no directory"):
        check_new_file(shared / "none" / "f.txt")


def test_another_users_file_is_not_replaced(shared):
    theirs = shared / "theirs.txt"
    theirs.write_text("keep")
    os.chown(theirs, NOBODY, NOBODY)
    with pytest.raises(UserError, match="a file of uid 65534"):
        write_file(theirs, b"x")
    assert theirs.read_text() == "keep"


# -- the journal --------------------------------------------------------------------------------


def test_db_path_through_a_dangling_link_creates_nothing(shared, canary):
    target = canary.parent / "newfile"
    db = shared / "Y.sikte.db"
    plant_link(db, target)
    with pytest.raises(UserError, match=r"Y.sikte.db already exists"):
        start_journal(JournalOptions(db_path=db), ["x"], {})
    assert not target.exists() and sorted(os.listdir(canary.parent)) == ["canary"]
    assert sorted(p.name for p in shared.iterdir()) == ["Y.sikte.db"]  # ours removed


@pytest.mark.parametrize("suffix", ["-wal", "-shm", "-journal"])
def test_a_planted_sqlite_side_file_is_refused(shared, canary, suffix):
    db = shared / "j.sikte.db"
    plant_link(Path(f"{db}{suffix}"), canary)
    with pytest.raises(UserError, match=f"j.sikte.db{suffix} already exists"):
        Journal(db, {})
    assert_intact(canary)
    assert not db.exists()


def test_db_path_in_a_directory_others_can_change_is_refused(tmp_path):
    open_to_all = tmp_path / "open"
    open_to_all.mkdir()
    open_to_all.chmod(0o777)  # not sticky: anyone may swap the journal's files
    with pytest.raises(UserError, match="other users can change"):
        Journal(open_to_all / "j.sikte.db", {})
    assert list(open_to_all.iterdir()) == []
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, NOBODY, NOBODY)
    with pytest.raises(UserError, match="other users can change"):
        Journal(theirs / "j.sikte.db", {})


def test_journal_files_are_the_users_and_private(shared, as_sudo_nobody, snapshots,
                                                 monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(shared / "data"))
    with umask(0o022):
        journal = start_journal(JournalOptions(), ["ls"], {})
        for s in snapshots[:3]:
            journal.put(s)
        assert journal.sync()
        files = sorted(journal.path.parent.iterdir())  # while it is written: -wal, -shm too
        assert [p.name.removeprefix(journal.path.name) for p in files] == ["", "-shm", "-wal"]
        for path in files:
            st = path.lstat()
            assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o600, NOBODY, NOBODY)
        journal.close()
    assert [p.name for p in journal.path.parent.iterdir()] == [journal.path.name]
    for directory in (shared / "data", shared / "data" / "sikte-tui", journal.path.parent):
        st = directory.lstat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o700, NOBODY), directory
    assert open_session(journal.path).meta["targets"] == list(snapshots[2].targets)


@pytest.mark.parametrize("link_owner", [NOBODY, 0], ids=["nobodys", "roots"])
def test_a_sessions_directory_that_is_a_link_is_refused(shared, canary, monkeypatch,
                                                       link_owner):
    base = shared / "data" / "sikte-tui"
    base.mkdir(parents=True)
    os.symlink(canary.parent, base / "sessions")
    os.lchown(base / "sessions", link_owner, link_owner)
    monkeypatch.setenv("XDG_DATA_HOME", str(shared / "data"))
    with pytest.raises(UserError, match=r"sessions is a symbolic link"):
        start_journal(JournalOptions(), ["ls"], {})
    assert sorted(os.listdir(canary.parent)) == ["canary"]
    assert_intact(canary)


# -- the Parquet export -------------------------------------------------------------------------


@pytest.fixture
def session(tmp_path, snapshots, make_journal):
    return open_session(make_journal(tmp_path / "s.sikte.db", snapshots))


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_export_is_the_users_and_private(session, shared, as_sudo_nobody, mask):
    out = shared / "made" / "pq"
    with umask(mask):
        export_parquet(session, out)
    assert (mode(out.parent), out.parent.lstat().st_uid) == (0o700, NOBODY)
    assert (mode(out), out.lstat().st_uid, out.lstat().st_gid) == (0o700, NOBODY, NOBODY)
    names = sorted(os.listdir(out))
    assert names == sorted(["session.json", "processes.parquet", "syscalls.parquet",
                            "timeline.parquet", "events.parquet", "samples.parquet",
                            "connections.parquet", "files.parquet", "threads.parquet"])
    for name in names:
        st = (out / name).lstat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o600, NOBODY, NOBODY)
    assert os.listdir(out.parent) == ["pq"]


def test_a_link_planted_at_the_output_during_the_export_is_not_touched(shared, canary,
                                                                       session):
    """The old export renamed, then chmod-ed the output by name: a link swapped in there
    made root chmod its target. Now nothing is changed by name after the rename."""
    out = shared / "pq"

    def plant(_fraction: float, what: str) -> None:
        if what == "events.parquet":
            plant_link(out, canary)

    with pytest.raises(UserError) as err:
        export_parquet(session, out, progress=plant)
    assert "\n" not in str(err.value)
    assert_intact(canary)
    assert out.is_symlink() and os.readlink(out) == str(canary)
    assert sorted(p.name for p in shared.iterdir()) == ["pq"]  # the staging is gone


def test_force_refuses_a_directory_that_is_not_a_session(shared, session):
    out = shared / "work"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="work is not a sikte-tui session; refusing to "
                                        "replace it with --force"):
        export_parquet(session, out, force=True)
    assert os.listdir(out) == ["notes.txt"] and (out / "notes.txt").read_text() == "mine"


def test_force_refuses_a_session_with_a_planted_link_inside(shared, session, canary):
    out = shared / "pq"
    export_parquet(session, out)
    (out / "events.parquet").unlink()
    os.symlink(canary, out / "events.parquet")
    with pytest.raises(UserError, match="not a sikte-tui session"):
        export_parquet(session, out, force=True)
    assert (out / "events.parquet").is_symlink()
    assert_intact(canary)


def test_force_refuses_another_users_session(shared, session):
    out = shared / "pq"
    export_parquet(session, out)
    for path in (out, *out.iterdir()):
        os.lchown(path, NOBODY, NOBODY)
    with pytest.raises(UserError, match="not a sikte-tui session"):
        export_parquet(session, out, force=True)


def test_force_refuses_a_planted_link_to_a_session(shared, tmp_path, session):
    real = tmp_path / "real"
    export_parquet(session, real)
    out = shared / "pq"
    plant_link(out, real)
    with pytest.raises(UserError, match="not a sikte-tui session"):
        export_parquet(session, out, force=True)
    assert out.is_symlink() and len(os.listdir(real)) == 9


def test_force_replaces_an_earlier_session(session, shared, as_sudo_nobody):
    out = shared / "pq"
    export_parquet(session, out)
    first = (out / "session.json").lstat().st_ino
    export_parquet(session, out, force=True)
    assert (out / "session.json").lstat().st_ino != first
    assert sorted(p.name for p in shared.iterdir()) == ["pq"]  # the old one and trash gone
    assert (mode(out), out.lstat().st_uid) == (0o700, NOBODY)


def test_open_dir_follows_only_the_users_or_roots_links(shared, as_sudo_nobody):
    (shared / "real").mkdir()
    os.chown(shared / "real", NOBODY, NOBODY)
    plant_link(shared / "mine", shared / "real")  # nobody is the user here: theirs to follow
    with open_dir(shared / "mine" / "sub", as_sudo_nobody, create=True) as directory:
        assert directory.fd >= 0
    assert (shared / "real" / "sub").is_dir()


def test_nothing_is_changed_by_name_after_the_rename(tmp_path, canary, session, monkeypatch):
    """The race of issue 12: in a directory nobody owns, nobody swaps the finished export for
    a link to root's file right after the rename; the old code then chmod-ed it 0755."""
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, NOBODY, NOBODY)
    out = theirs / "pq"
    real_rename = os.rename

    def rename_then_swap(src, dst, *args, **kwargs):
        real_rename(src, dst, *args, **kwargs)
        if os.fspath(dst).endswith("pq") and not out.is_symlink():
            real_rename(out, theirs / "moved")
            plant_link(out, canary)

    monkeypatch.setattr(os, "rename", rename_then_swap)
    export_parquet(session, out)
    monkeypatch.undo()
    assert_intact(canary)
    moved = theirs / "moved"
    assert mode(moved) == 0o700 and {mode(p) for p in moved.iterdir()} == {0o600}


def test_force_replaces_an_empty_directory_of_the_users_only(shared, session):
    mine, theirs = shared / "mine", shared / "theirs"
    mine.mkdir()
    theirs.mkdir()
    os.chown(theirs, NOBODY, NOBODY)
    export_parquet(session, mine, force=True)
    assert len(os.listdir(mine)) == 9
    with pytest.raises(UserError, match="theirs is not a sikte-tui session"):
        export_parquet(session, theirs, force=True)
    assert os.listdir(theirs) == []
