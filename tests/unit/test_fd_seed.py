"""Seeding the descriptor table from /proc/PID/fd: real descriptors of this process, their
O_CLOEXEC flags, and processes that are gone."""

from __future__ import annotations

import os
import subprocess
import tempfile

from tracing.system.fd_seed import read_cloexec, read_fds


def test_this_process_descriptors_are_read_with_their_names() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        name = os.path.join(tmp, "a file with \"quotes\" and\nnewline")
        fd = os.open(name, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600)
        r, w = os.pipe()
        os.set_inheritable(w, True)  # clears O_CLOEXEC
        try:
            fds = read_fds(os.getpid())
            assert fds[fd] == os.fsencode(name)
            assert fds[r].startswith(b"pipe:[") and fds[r] == fds[w]
            assert read_cloexec(os.getpid(), [fd, r, w]) == {fd, r}
        finally:
            for n in (fd, r, w):
                os.close(n)


def test_the_count_is_bounded_lowest_numbers_first() -> None:
    fds = read_fds(os.getpid(), max_fds=2)
    everything = read_fds(os.getpid())
    assert list(fds) == sorted(everything)[:2]


def test_a_process_that_is_gone_has_no_descriptors() -> None:
    child = subprocess.Popen(["/bin/true"])
    child.wait()
    assert read_fds(child.pid) == {}
    assert read_cloexec(child.pid, [0, 1, 2]) == set()


def test_a_pid_that_never_existed_has_no_descriptors() -> None:
    assert read_fds(2**22 + 12345) == {}
