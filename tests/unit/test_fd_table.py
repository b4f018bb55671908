"""The descriptor table's names for each kind of call (files, directory descriptors,
sockets and their endpoints, pipes, duplicates, anonymous descriptors) and the path table."""

from __future__ import annotations

import errno
import fcntl
import os
import socket

from tests.fd_helpers import PID, Calls, by_path, inet, io, names, path, tracker
from tracing.decode.argspec import checked_in_specs
from tracing.decode.sockaddr import short_address
from tracing.model.captures import KIND_SOCKADDR, IoTotals, pack_field
from tracing.model.fd_table import CLOSE_RANGE_CLOEXEC
from tracing.model.file_tracker import FileTracker
from tracing.model.paths import OTHER_ID, UNKNOWN_ID, PathTable


def socket_tracker() -> FileTracker:
    return FileTracker(checked_in_specs(), "x86_64", endpoint=short_address)


def test_relative_paths_join_their_directory_descriptor_only() -> None:
    files = tracker()
    (Calls().openat(b"/etc/", 3, os.O_DIRECTORY).openat(b"passwd", 4, dfd=3)
     .openat(b"here.txt", 5).openat(b"x", 6, dfd=9).apply(files))
    assert names(files) == {3: b"/etc/", 4: b"/etc/passwd", 5: b"here.txt", 6: b"x"}


def test_a_faulted_or_missing_path_is_unknown() -> None:
    files = tracker()
    calls = Calls().call("openat", (0xFFFFFF9C, 0x10, 0), 3, pack_field(1, 2, b"", status=2))
    calls.call("openat", (0xFFFFFF9C, 0x10, 0), 4).apply(files)
    table = files.table.tables[PID]
    assert (table[3].path_id, table[4].path_id) == (UNKNOWN_ID, UNKNOWN_ID)


def test_sockets_are_named_by_family_then_by_endpoint() -> None:
    files = socket_tracker()
    calls = Calls().call("socket", (socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_CLOEXEC),
                         3)
    calls.call("socket", (socket.AF_INET6, socket.SOCK_DGRAM), 4)
    calls.call("socket", (socket.AF_UNIX, socket.SOCK_STREAM), 5)
    calls.apply(files)
    assert names(files) == {3: b"socket:[AF_INET]", 4: b"socket:[AF_INET6]",
                            5: b"socket:[AF_UNIX]"}
    assert files.table.tables[PID][3].cloexec
    # A non-blocking connect names its socket with EINPROGRESS; a refused one does not.
    unix = socket.AF_UNIX.to_bytes(2, "little") + b"/run/x.sock\0"
    (Calls(ts=100).connect(3, inet("127.0.0.1", 8080), -errno.EINPROGRESS)
     .connect(5, unix).connect(4, inet("10.0.0.1", 53), -errno.ECONNREFUSED).apply(files))
    assert names(files) == {3: b"TCP:[127.0.0.1:8080]", 4: b"socket:[AF_INET6]",
                            5: b"UNIX:[/run/x.sock]"}


def test_an_accepted_socket_is_named_by_its_peer() -> None:
    files = socket_tracker()
    calls = Calls().call("socket", (socket.AF_INET, socket.SOCK_STREAM), 3)
    calls.call("bind", (3, 0x10, 16), 0, pack_field(1, KIND_SOCKADDR, inet("0.0.0.0", 80)))
    calls.call("accept4", (3, 0x20, 0x30, socket.SOCK_CLOEXEC), 4,
               pack_field(1, KIND_SOCKADDR, inet("10.1.2.3", 5555)))
    calls.apply(files)
    assert names(files) == {3: b"TCP:[0.0.0.0:80]", 4: b"TCP:[10.1.2.3:5555]"}
    assert files.table.tables[PID][4].cloexec


def test_without_an_address_reader_sockets_keep_their_family_name() -> None:
    files = tracker()
    calls = Calls().call("socket", (socket.AF_INET, socket.SOCK_STREAM), 3)
    calls.connect(3, inet("127.0.0.1", 1)).apply(files)
    assert names(files) == {3: b"socket:[AF_INET]"}


def test_socketpairs_and_anonymous_descriptors() -> None:
    files = tracker()
    calls = Calls().call("socketpair", (socket.AF_UNIX, socket.SOCK_STREAM, 0, 0x10), 0,
                         pack_field(3, 6, (7).to_bytes(4, "little") + (8).to_bytes(4, "little")))
    calls.call("eventfd2", (0, os.O_CLOEXEC), 9).call("epoll_create1", (0,), 10)
    calls.apply(files)
    assert names(files) == {7: b"UNIX:[socketpair 1]", 8: b"UNIX:[socketpair 1]",
                            9: b"anon_inode:[eventfd2]", 10: b"anon_inode:[epoll_create1]"}
    assert files.table.tables[PID][9].cloexec


def test_duplicates_copy_the_name_with_their_own_cloexec() -> None:
    files = tracker()
    calls = Calls().openat(b"/f", 3, os.O_CLOEXEC).call("dup", (3,), 4)
    calls.call("dup3", (3, 5, os.O_CLOEXEC), 5)
    calls.call("fcntl", (3, fcntl.F_DUPFD_CLOEXEC, 10), 10)
    calls.call("fcntl", (3, fcntl.F_DUPFD, 20), 20)
    calls.call("fcntl", (4, fcntl.F_SETFD, fcntl.FD_CLOEXEC), 0)
    calls.call("fcntl", (5, fcntl.F_GETFL, 0), os.O_RDONLY)
    calls.apply(files)
    assert names(files) == {3: b"/f", 4: b"/f", 5: b"/f", 10: b"/f", 20: b"/f"}
    table = files.table.tables[PID]
    assert {fd: e.cloexec for fd, e in table.items()} == {3: True, 4: True, 5: True, 10: True,
                                                          20: False}


def test_close_drops_even_when_it_fails_and_failed_calls_change_nothing() -> None:
    files = tracker()
    (Calls().openat(b"/a", 3).openat(b"/b", 4).close(3, ret=-errno.EINTR)
     .call("dup2", (4, 7), -errno.EBADF).call("openat", (0xFFFFFF9C, 0, 0), -errno.ENOENT)
     .apply(files))
    assert names(files) == {4: b"/b"}


def test_close_range_keeps_the_totals_owner_until_reuse() -> None:
    files = tracker()
    calls = Calls().openat(b"/a", 3).openat(b"/b", 4).openat(b"/c", 5)
    calls.call("close_range", (4, 0xFFFFFFFF, 0), 0).apply(files)
    assert names(files) == {3: b"/a"}
    files.live({(PID, 4): IoTotals(calls=2), (PID, 5): IoTotals(calls=3)})
    assert by_path(files)[b"/b"][2] == 2 and by_path(files)[b"/c"][2] == 3
    Calls(ts=100).openat(b"/d", 4, handover=io(4, IoTotals(calls=2))).apply(files)
    files.live({(PID, 5): IoTotals(calls=3)})
    assert {p: s[2] for p, s in by_path(files).items()} == {b"/a": 0, b"/b": 2, b"/c": 3,
                                                              b"/d": 0}


def test_close_range_cloexec_marks_instead_of_closing() -> None:
    files = tracker()
    calls = Calls().openat(b"/a", 3).openat(b"/b", 4)
    calls.call("close_range", (4, 4, CLOSE_RANGE_CLOEXEC), 0).apply(files)
    table = files.table.tables[PID]
    assert (table[3].cloexec, table[4].cloexec) == (False, True)


def test_the_path_table_interns_and_is_bounded() -> None:
    paths = PathTable(max_paths=4)
    assert paths.add(b"/x") == 2 and paths.add(b"/x") == 2
    assert paths.add(b"(other)") == 3  # a real file of that name is not the overflow
    assert paths.add(b"/y") == OTHER_ID and paths.add(b"/z") == OTHER_ID
    assert paths.overflow == 2
    assert (paths.name(OTHER_ID), paths.name(UNKNOWN_ID), paths.name(99)) == (b"(other)", b"",
                                                                              b"")
    assert len(paths) == 4


def test_path_text_escapes_bytes_that_are_not_utf8() -> None:
    paths = PathTable()
    raw = paths.add(b"/tmp/\xff\xfe caf\xc3\xa9")
    assert paths.text(raw) == "/tmp/\\xff\\xfe café"
    paths.text(raw).encode("utf-8")  # no lone surrogates


def test_a_path_field_of_another_argument_is_not_the_open_path() -> None:
    files = tracker()
    Calls().call("openat", (0xFFFFFF9C, 0x10, 0), 3, path(1, b"/right")).apply(files)
    assert names(files) == {3: b"/right"}
