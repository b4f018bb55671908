"""The Docker Engine API client: container names and images from GET /containers/json.

Everything here talks to the outside and is bounded: a request has a total deadline
(DOCKER_DEADLINE_S, whatever pace the socket answers at), a size bound, a back-off after
failures, and is made only to a socket root owns (check_docker_socket) and serves
(check_docker_peer, SO_PEERCRED). The HTTP/1.1 answer is read by a small reader of our own
(Content-Length, chunked, or up to the close) that keeps to both bounds.

No bcc, no Textual. Nothing is read at import time or construction: the first look-up does.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

DOCKER_SOCKET = "/var/run/docker.sock"

# A request's whole life (connect, send, the complete answer) fits in DOCKER_DEADLINE_S: a
# per-read timeout alone would let a socket that sends a byte every 0.3 s keep it forever.
DOCKER_DEADLINE_S = 1.0
# The largest answer read: /containers/json of a thousand containers is a few megabytes.
DOCKER_MAX_RESPONSE = 16 << 20
_MAX_HEAD = 64 << 10  # the status line and headers
# After a failed request the next waits this long, doubling up to the maximum: a broken or
# hostile socket is not asked at every look-up.
DOCKER_BACKOFF_S = 5.0
DOCKER_MAX_BACKOFF_S = 120.0


class DockerError(Exception):
    """Why a request to the Docker socket failed or was not made, in a few words."""


@dataclass(frozen=True, slots=True)
class DockerContainer:
    id: str
    name: str
    image: str


def check_docker_socket(path: str) -> None:
    """DockerError unless `path` is a unix socket owned by root, itself and not through a
    symbolic link: anyone can make a socket, and its answers name the containers the views
    show. The peer's credentials are checked again once connected (check_docker_peer)."""
    st = os.lstat(path)  # FileNotFoundError and the like are the caller's OSError
    if stat.S_ISLNK(st.st_mode):
        raise DockerError("is a symbolic link; only root's own socket is trusted")
    if not stat.S_ISSOCK(st.st_mode):
        raise DockerError("is not a socket")
    if st.st_uid != 0:
        raise DockerError(f"belongs to uid {st.st_uid}, not root; not trusted")


def check_docker_peer(sock: socket.socket) -> None:
    """DockerError unless the process that listens on the connected socket runs as root: the
    name may have been replaced between check_docker_socket and connect()."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    if uid != 0:
        raise DockerError(f"is served by uid {uid}, not root; not trusted")


class _Reader:
    """Reads an HTTP answer from a socket within a total deadline and a size bound (of the
    body; the head may add _MAX_HEAD)."""

    def __init__(self, sock: socket.socket, deadline: float, max_bytes: int) -> None:
        self._sock = sock
        self._deadline = deadline
        self._left = max_bytes + _MAX_HEAD  # bytes that may still be received
        self._max_bytes = max_bytes
        self.buf = bytearray()
        self.eof = False

    def fill(self) -> None:
        """At least one more byte in buf, or eof; TimeoutError past the deadline."""
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        if self._left <= 0:
            raise DockerError(f"answer larger than {self._max_bytes:,} bytes")
        self._sock.settimeout(remaining)
        chunk = self._sock.recv(min(65536, self._left))
        if not chunk:
            self.eof = True
        self._left -= len(chunk)
        self.buf += chunk

    def until(self, marker: bytes, limit: int) -> bytes:
        """Everything up to and without `marker`, taken out of buf."""
        while (end := self.buf.find(marker)) < 0:
            if len(self.buf) > limit:
                raise DockerError("malformed answer (a line too long)")
            self.fill()
            if self.eof:
                raise DockerError("answer cut short")
        found = bytes(self.buf[:end])
        del self.buf[: end + len(marker)]
        return found

    def exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            self.fill()
            if self.eof:
                raise DockerError("answer cut short")
        found = bytes(self.buf[:n])
        del self.buf[:n]
        return found

    def to_eof(self) -> bytes:
        while not self.eof:
            self.fill()
        found = bytes(self.buf)
        self.buf.clear()
        return found


def _read_answer(reader: _Reader, max_bytes: int) -> tuple[int, bytes]:
    """(status, body) of an HTTP/1.x answer: Content-Length, chunked, or up to the close."""
    head = reader.until(b"\r\n\r\n", _MAX_HEAD).decode("latin-1").split("\r\n")
    parts = head[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise DockerError("not an HTTP answer")
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return int(parts[1]), _read_chunked(reader)
    length = headers.get("content-length")
    if length is None:
        return int(parts[1]), reader.to_eof()
    if not length.isdigit():
        raise DockerError("malformed Content-Length")
    if int(length) > max_bytes:
        raise DockerError(f"answer larger than {max_bytes:,} bytes")
    return int(parts[1]), reader.exactly(int(length))


def _read_chunked(reader: _Reader) -> bytes:
    body = bytearray()
    while True:
        size_text = reader.until(b"\r\n", 1024).split(b";")[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise DockerError("malformed chunk size") from None
        if size == 0:
            return bytes(body)  # trailers, if any, are not needed
        body += reader.exactly(size)
        reader.exactly(2)  # the CRLF after each chunk


def parse_containers_json(body: bytes) -> dict[str, DockerContainer]:
    """GET /containers/json's answer -> containers by full id. ValueError when malformed."""
    items = json.loads(body)
    if not isinstance(items, list):
        raise ValueError("expected a list of containers")
    found = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("Id"), str):
            continue
        names = item.get("Names") or []
        name = names[0] if isinstance(names, list) and names and isinstance(names[0], str) else ""
        image = item.get("Image")
        found[item["Id"]] = DockerContainer(item["Id"], name.lstrip("/"),
                                            image if isinstance(image, str) else "")
    return found


class DockerClient:
    """Container names and images from the Docker Engine API (GET /containers/json?all=1).

    Silently absent when there is no socket. The list is cached: asked for an id it does not
    hold, it fetches again, but at most once per `min_interval` seconds, and it never uses a
    list older than `max_age` seconds while it could fetch. Each request has a total
    `deadline` and a size bound; a failed one leaves the last list, the reason in `error`,
    and no new request before a back-off (DOCKER_BACKOFF_S, doubling) has passed. The socket
    must be root's (check_docker_socket, check_docker_peer).

    Blocking: call it from a worker thread (BackgroundResolver), never the engine's."""

    def __init__(self, socket_path: str | None = None, deadline: float = DOCKER_DEADLINE_S,
                 min_interval: float = 2.0, max_age: float = 30.0,
                 max_response: int = DOCKER_MAX_RESPONSE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        # Read here, not as a default argument: tests point the module's DOCKER_SOCKET at
        # a fake daemon.
        self.socket_path = socket_path if socket_path is not None else DOCKER_SOCKET
        self.deadline = deadline
        self.max_response = max_response
        self._min_interval = min_interval
        self._max_age = max_age
        self._clock = clock
        self._containers: dict[str, DockerContainer] = {}
        self._fetched_at: float | None = None
        self._retry_at: float | None = None  # set after a failure
        self._backoff = 0.0
        self._lock = threading.Lock()  # the socket of the request in flight, for abort()
        self._sock: socket.socket | None = None
        self._aborted = False
        self.fetches = 0  # requests made
        self.error = ""  # why the last request failed, "" when it did not

    @property
    def available(self) -> bool:
        return os.path.lexists(self.socket_path)

    def get(self, container_id: str) -> DockerContainer | None:
        found = self._containers.get(container_id)
        if self._due(stale_only=found is not None):
            self.refresh()
            found = self._containers.get(container_id)
        return found

    def _due(self, stale_only: bool) -> bool:
        now = self._clock()
        if self._retry_at is not None and now < self._retry_at:
            return False
        if self._fetched_at is None:
            return True
        age = now - self._fetched_at
        return age >= self._max_age if stale_only else age >= self._min_interval

    def refresh(self) -> None:
        self._fetched_at = self._clock()
        if not self.available or self._aborted:
            self._containers, self.error = {}, ""
            return
        self.fetches += 1
        try:
            self._containers = parse_containers_json(self._request("/containers/json?all=1"))
        except (OSError, DockerError, ValueError) as err:
            self._failed(f"{self.socket_path}: {err or type(err).__name__}")
        else:
            self.error, self._retry_at, self._backoff = "", None, 0.0

    def _failed(self, reason: str) -> None:
        self.error = reason
        self._backoff = min(DOCKER_MAX_BACKOFF_S, max(DOCKER_BACKOFF_S, 2 * self._backoff))
        self._retry_at = self._clock() + self._backoff

    def _request(self, path: str) -> bytes:
        deadline = time.monotonic() + self.deadline
        check_docker_socket(self.socket_path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with self._lock:
            self._sock = sock
            aborted = self._aborted  # abort() came before this socket was there to shut
        try:
            if aborted:
                raise DockerError("stopped")
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            sock.connect(self.socket_path)
            check_docker_peer(sock)
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n"
                         "Accept: application/json\r\n\r\n".encode())
            status, body = _read_answer(_Reader(sock, deadline, self.max_response),
                                        self.max_response)
        except TimeoutError:  # the socket's timeout is what was left of the deadline
            raise DockerError(f"no complete answer within {self.deadline:g} s") from None
        finally:
            with self._lock:
                self._sock = None
            sock.close()
        if status != 200:
            raise DockerError(f"HTTP {status} for {path}")
        return body

    def abort(self) -> None:
        """End the request in flight now (from another thread) and make no more."""
        with self._lock:
            self._aborted = True
            if self._sock is not None:
                with contextlib.suppress(OSError):  # already closed: nothing to end
                    self._sock.shutdown(socket.SHUT_RDWR)
