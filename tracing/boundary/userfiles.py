"""The one way sikte-tui creates files for the user: journals, exports, folded stacks.

sikte-tui runs as root, in directories other users may write (/tmp, a shared project dir).
Every file it makes for the user goes through here, so that:

- it is created with the invoking user's credentials (SUDO_UID/SUDO_GID under sudo): the
  calling thread's filesystem uid, gid and groups are switched (setfsuid, setfsgid and a raw
  setgroups act on one thread only), and the kernel then drops CAP_DAC_OVERRIDE and friends for
  that thread, so it refuses whatever the user could not do;
- no symbolic link is followed unless it belongs to the user or to root: paths are walked
  one component at a time from a directory handle (openat with O_NOFOLLOW), and files are
  created O_CREAT|O_EXCL|O_NOFOLLOW;
- files are 0600 and the directories sikte-tui makes 0700, whatever the umask (fchmod on the
  descriptor; nothing is ever chmod-ed or chown-ed by path).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import io
import json
import os
import pwd
import secrets
import shutil
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from tracing.errors import UserError

FILE_MODE = 0o600
DIR_MODE = 0o700
MAX_SYMLINKS = 40  # as the kernel's ELOOP limit
_PATH_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class Owner:
    uid: int
    gid: int
    home: Path


def _sudo_id(name: str) -> int | None:
    """SUDO_UID or SUDO_GID as a number; None when unset; a UserError when malformed."""
    value = os.environ.get(name, "")
    if value == "":
        return None
    if not value.isascii() or not value.isdigit() or int(value) >= 2**32 - 1:
        shown = value if value.isprintable() else ascii(value)
        raise UserError(f"{name}={shown} is not a number; unset it or run sikte-tui "
                        "through sudo, which sets it", exit_code=2)
    return int(value)


def invoking_user() -> Owner:
    """The user sikte-tui works for: the sudo caller when run under sudo as root."""
    uid, gid = os.getuid(), os.getgid()
    if uid == 0 and (sudo_uid := _sudo_id("SUDO_UID")) is not None:
        sudo_gid = _sudo_id("SUDO_GID")
        uid = sudo_uid
        gid = sudo_gid if sudo_gid is not None else _passwd_gid(uid)
    try:
        home = Path(pwd.getpwuid(uid).pw_dir)
    except KeyError:  # a uid without a passwd entry
        home = Path(os.environ.get("HOME", "/"))
    if uid == os.getuid():
        home = Path(os.environ.get("HOME", str(home)))
    return Owner(uid, gid, home)


def _passwd_gid(uid: int) -> int:
    try:
        return pwd.getpwuid(uid).pw_gid
    except KeyError:
        return uid


def sessions_dir(owner: Owner | None = None) -> Path:
    """$XDG_DATA_HOME/sikte-tui/sessions of the invoking user (~/.local/share by default).

    sudo resets the environment, so XDG_DATA_HOME is honoured when it was kept (sudo -E)."""
    owner = owner or invoking_user()
    base = os.environ.get("XDG_DATA_HOME") or str(owner.home / ".local" / "share")
    return Path(base) / "sikte-tui" / "sessions"


# -- per-thread filesystem credentials -----------------------------------------------------


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


@functools.cache
def _syscall_numbers() -> tuple[int, int, int]:
    from syscall_tables import host_arch, syscall_number

    arch = host_arch()
    setfsuid, setfsgid, setgroups = (syscall_number(n, arch)
                                     for n in ("setfsuid", "setfsgid", "setgroups"))
    if setfsuid is None or setfsgid is None or setgroups is None:
        raise OSError(f"no setfsuid/setfsgid/setgroups numbers for {arch}")
    return setfsuid, setfsgid, setgroups


def _set_fs_id(nr: int, value: int) -> None:
    """setfsuid/setfsgid report no errors: the call with -1 reads back what is in force."""
    libc = _libc()
    libc.syscall(ctypes.c_long(nr), ctypes.c_long(value))
    now = libc.syscall(ctypes.c_long(nr), ctypes.c_long(-1))
    if now != value:
        raise PermissionError(f"cannot switch the filesystem id to {value}")


def _set_thread_groups(groups: list[int]) -> None:
    """The raw syscall: glibc's setgroups() would change every thread of the process."""
    array = (ctypes.c_uint * max(1, len(groups)))(*groups)
    libc = _libc()
    if libc.syscall(ctypes.c_long(_syscall_numbers()[2]), ctypes.c_long(len(groups)),
                    array) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@functools.lru_cache(maxsize=8)
def _groups_of(uid: int, gid: int) -> tuple[int, ...]:
    """The user's supplementary groups (what the kernel would check for them)."""
    try:
        return tuple(os.getgrouplist(pwd.getpwuid(uid).pw_name, gid))
    except KeyError:
        return (gid,)


_thread = threading.local()


def needs_switch(owner: Owner) -> bool:
    """Root working for another user switches; a user working for themselves need not."""
    return os.geteuid() == 0 and (owner.uid, owner.gid) != (0, 0)


@contextlib.contextmanager
def acting_as(owner: Owner) -> Iterator[None]:
    """Within it, this thread (only) touches the filesystem as `owner`: files it creates are
    theirs and the kernel refuses what they may not do. Nests; other threads are unaffected."""
    depth = getattr(_thread, "depth", 0)
    if depth or not needs_switch(owner):
        _thread.depth = depth + 1
        try:
            yield
        finally:
            _thread.depth = depth
        return
    setfsuid, setfsgid, _ = _syscall_numbers()
    saved_groups = os.getgroups()
    try:
        _set_thread_groups(list(_groups_of(owner.uid, owner.gid)))
        _set_fs_id(setfsgid, owner.gid)
        _set_fs_id(setfsuid, owner.uid)  # last: it drops the capabilities the others need
        _thread.depth = 1
        yield
    finally:
        _thread.depth = 0
        _set_fs_id(setfsuid, 0)
        _set_fs_id(setfsgid, 0)
        _set_thread_groups(saved_groups)


# -- walking a path without following other users' links ----------------------------------


class UnsafePath(UserError):
    """A path sikte-tui will not write through; one line saying why and what to do."""


def _trusted_link(st: os.stat_result, owner: Owner) -> bool:
    return st.st_uid in (0, owner.uid)


def _shared_dir(st: os.stat_result, owner: Owner) -> bool:
    """Another user can swap the entries of this directory (owns it, or may write it without
    the sticky bit that keeps each entry to its owner)."""
    if st.st_uid not in (0, owner.uid):
        return True
    if st.st_mode & stat.S_ISVTX:
        return False
    return bool(st.st_mode & stat.S_IWOTH or (
        st.st_mode & stat.S_IWGRP and st.st_gid not in (0, owner.gid)))


class Dir:
    """A directory held open by a handle: entries are created, renamed and removed relative
    to it, so nothing swapped in along its path later can redirect them."""

    def __init__(self, fd: int, path: Path, owner: Owner) -> None:
        self.fd, self.path, self.owner = fd, path, owner

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Dir:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def lstat(self, name: str) -> os.stat_result | None:
        with acting_as(self.owner):
            try:
                return os.stat(name, dir_fd=self.fd, follow_symlinks=False)
            except FileNotFoundError:
                return None

    def create(self, name: str) -> BinaryIO:
        """A new file, 0600, open for writing; FileExistsError if the name is taken (by
        anything, a dangling link included)."""
        _plain_name(name)
        with acting_as(self.owner):
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, FILE_MODE, dir_fd=self.fd)
        try:
            os.fchmod(fd, FILE_MODE)  # a umask like 0277 would have made it 0400
        except OSError:
            os.close(fd)
            raise
        return open(fd, "wb")

    def mkdir(self, name: str) -> Dir:
        """A new directory, 0700, held open."""
        _plain_name(name)
        with acting_as(self.owner):
            os.mkdir(name, DIR_MODE, dir_fd=self.fd)
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                         dir_fd=self.fd)
        try:
            os.fchmod(fd, DIR_MODE)
        except OSError:
            os.close(fd)
            raise
        return Dir(fd, self.path / name, self.owner)

    def mkdtemp(self, prefix: str) -> tuple[str, Dir]:
        """A new directory with a name no one can guess, 0700: (its name, it)."""
        for _ in range(100):
            name = f"{prefix}{secrets.token_hex(4)}"
            try:
                return name, self.mkdir(name)
            except FileExistsError:
                continue
        raise FileExistsError(f"no free temporary name in {self.path}")

    def open_subdir(self, name: str) -> Dir:
        """An existing directory entry that is a real directory (not a link)."""
        _plain_name(name)
        with acting_as(self.owner):
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                         dir_fd=self.fd)
        return Dir(fd, self.path / name, self.owner)

    def rename(self, src: str, dst: str, dst_dir: Dir | None = None) -> None:
        """rename(2) replaces a link at dst itself, never what it points to."""
        with acting_as(self.owner):
            os.rename(src, dst, src_dir_fd=self.fd, dst_dir_fd=(dst_dir or self).fd)

    def unlink(self, name: str) -> None:
        with acting_as(self.owner), contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=self.fd)

    def remove_tree(self, name: str) -> None:
        """Delete a directory we made (rmtree from a handle never follows links inside)."""
        with acting_as(self.owner), contextlib.suppress(FileNotFoundError):
            shutil.rmtree(name, dir_fd=self.fd)

    def read_small(self, name: str, limit: int) -> bytes:
        """A regular file of ours in it, at most `limit` bytes."""
        with acting_as(self.owner):
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                         dir_fd=self.fd)
        with open(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(f"{self.path / name} is not a regular file")
            return f.read(limit + 1)


def _plain_name(name: str) -> None:
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise UserError(f"{name!r} is not a file name; give a path ending in a name")


def open_dir(path: Path, owner: Owner | None = None, *, create: bool = False,
             trusted: bool = False, real_tail: int = 0) -> Dir:
    """The directory `path`, walked one component at a time as `owner`.

    A symbolic link is followed only when it belongs to the user or root. `create` makes the
    missing directories (0700). `trusted` refuses a path through a directory another user
    could change (for files others open again by name later, like SQLite's). The last
    `real_tail` components must be real directories, links of anyone refused."""
    owner = owner or invoking_user()
    # Those who open by name later (SQLite) make relative names absolute from the working
    # directory: then its parents count too.
    path = Path(path).absolute() if trusted else Path(path)
    with acting_as(owner):
        fd = _walk(path, owner, create=create, trusted=trusted, real_tail=real_tail)
    return Dir(fd, path, owner)


def _walk(path: Path, owner: Owner, *, create: bool, trusted: bool, real_tail: int) -> int:
    parts = list(path.parts)
    start = "/" if path.is_absolute() else "."
    if path.is_absolute():
        parts = parts[1:]
    fd = os.open(start, _PATH_FLAGS | os.O_DIRECTORY)
    links = 0
    try:
        _check_dir(fd, path, start, owner, trusted)
        while parts:
            name = parts.pop(0)
            if name in ("", "."):
                continue
            strict = len(parts) < real_tail
            fd, followed = _step(fd, name, path, owner, create=create, strict=strict)
            if followed is not None:
                links += 1
                if links > MAX_SYMLINKS:
                    raise OSError(40, "too many levels of symbolic links")  # ELOOP
                target = Path(followed)
                if target.is_absolute():
                    os.close(fd)
                    fd = os.open("/", _PATH_FLAGS | os.O_DIRECTORY)
                    parts = list(target.parts[1:]) + parts
                else:
                    parts = list(target.parts) + parts
                continue
            _check_dir(fd, path, name, owner, trusted)
        return fd
    except BaseException:
        os.close(fd)
        raise


def _step(fd: int, name: str, path: Path, owner: Owner, *, create: bool,
          strict: bool) -> tuple[int, str | None]:
    """One component from the directory fd: (the new directory's fd, None), or (fd unchanged,
    a link's target to walk instead)."""
    try:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        if not create or name == "..":
            raise
        try:
            os.mkdir(name, DIR_MODE, dir_fd=fd)
            _tighten(fd, name)
        except FileExistsError:  # made meanwhile by someone: checked below like any other
            pass
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
    if stat.S_ISLNK(st.st_mode):
        if strict:
            raise UnsafePath(f"{path}: {name} is a symbolic link; sikte-tui keeps sessions "
                             "only in a real directory: remove the link")
        if not _trusted_link(st, owner):
            raise UnsafePath(
                f"{path}: {name} is a symbolic link owned by uid {st.st_uid}; sikte-tui does "
                "not write through links of other users: choose another path")
        return fd, os.readlink(name, dir_fd=fd)
    new = os.open(name, _PATH_FLAGS | os.O_DIRECTORY, dir_fd=fd)
    os.close(fd)
    return new, None


def _tighten(fd: int, name: str) -> None:
    """A directory we just made is 0700 whatever the umask (through a descriptor)."""
    dfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
    try:
        os.fchmod(dfd, DIR_MODE)
    finally:
        os.close(dfd)


def _check_dir(fd: int, path: Path, name: str, owner: Owner, trusted: bool) -> None:
    if trusted and _shared_dir(os.fstat(fd), owner):
        raise UnsafePath(f"{path}: {name} is a directory other users can change; sikte-tui "
                         "keeps journals only where they cannot: choose another path")


# -- files ----------------------------------------------------------------------------------


def check_new_file(path: Path, owner: Owner | None = None) -> None:
    """Fail early, before any work, where write_file would fail: a missing directory, a
    directory at the path, or something there that is not the user's own regular file."""
    owner = owner or invoking_user()
    try:
        with open_dir(path.parent, owner) as directory:
            _replaceable(directory, path.name, path)
    except FileNotFoundError:
        raise UserError(f"{path}: no directory {path.parent}; create it or choose another "
                        "file") from None
    except NotADirectoryError:
        raise UserError(f"{path}: {path.parent} is not a directory; choose another file"
                        ) from None


def _replaceable(directory: Dir, name: str, path: Path) -> None:
    _plain_name(name)
    st = directory.lstat(name)
    if st is None:
        return
    if stat.S_ISDIR(st.st_mode):
        raise UserError(f"{path} is a directory; give a file name")
    if not stat.S_ISREG(st.st_mode) or st.st_uid != directory.owner.uid:
        what = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a regular file"
        if stat.S_ISREG(st.st_mode):
            what = f"a file of uid {st.st_uid}"
        raise UnsafePath(f"{path} exists and is {what}; sikte-tui replaces only your own "
                         "files: remove it or choose another file")


def write_file(path: Path, data: bytes, owner: Owner | None = None) -> None:
    """Write `data` to `path` for the user: a new 0600 file renamed into place, so an existing
    file of theirs is replaced whole and anything else there is refused, never followed."""
    owner = owner or invoking_user()
    with open_dir(path.parent, owner) as directory:
        _replaceable(directory, path.name, path)
        temp = f".{path.name}.{secrets.token_hex(4)}"
        try:
            with directory.create(temp) as f:
                f.write(data)
            directory.rename(temp, path.name)
        except BaseException:
            directory.unlink(temp)
            raise


def ensure_sessions_dir(owner: Owner | None = None) -> Dir:
    """The user's sessions directory, created 0700 if missing; `sikte-tui` and `sessions`
    must be real directories (a link there is refused, whoever made it)."""
    owner = owner or invoking_user()
    path = sessions_dir(owner)
    try:
        return open_dir(path, owner, create=True, trusted=True, real_tail=2)
    except OSError as err:
        raise UserError(f"cannot use the sessions directory {path} ({err.strerror or err}); "
                        "fix it, or choose a file with --db-path", exit_code=1) from None


def read_json_object(directory: Dir, name: str, limit: int = 1 << 20) -> dict[str, Any] | None:
    """A small JSON object file of ours, or None if it is not one."""
    try:
        data = directory.read_small(name, limit)
        value = json.load(io.BytesIO(data)) if len(data) <= limit else None
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None
