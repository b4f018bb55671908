"""Fake Docker Engine sockets for the container tests (unit and ebpf): one that answers like
the Docker daemon, and ones that misbehave for the deadline tests (trickles a byte every
0.3 s forever, floods, hangs up at once). Each is a unix socket at a path the test gives,
served from daemon threads."""

from __future__ import annotations

import contextlib
import json
import socket
import threading

TRICKLE_S = 0.3


class FakeDockerServer:
    """A unix socket that serves each connection with `mode`:

    - "trickle-body": a 200 head promising 100,000 bytes, then one byte every TRICKLE_S;
    - "trickle-head": the status line one byte every TRICKLE_S;
    - "flood": a 200 head without a length, then bytes as fast as they go;
    - "hangup": closes as soon as the request is read;
    - "ok": the JSON list `containers`, as the Docker daemon answers, with `status`.
    """

    def __init__(self, path: str, mode: str = "ok", containers: list[dict] | None = None) -> None:
        self.path = path
        self.mode = mode
        self.containers = containers if containers is not None else []
        self.status = "200 OK"
        self.accepted = 0  # connections taken
        self.requests: list[str] = []  # their request lines
        self.trickled = 0  # bytes sent one at a time
        self.open = 0  # connections being served now
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed
                return
            with self._lock:
                self.accepted += 1
                self.open += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        # OSError: the client gave up, which is what these servers are for.
        try:
            with conn, contextlib.suppress(OSError):
                request = self._read_request(conn)
                with self._lock:
                    self.requests.append(request.split(b"\r\n")[0].decode())
                getattr(self, "_" + self.mode.replace("-", "_"))(conn)
        finally:
            with self._lock:
                self.open -= 1

    @staticmethod
    def _read_request(conn: socket.socket) -> bytes:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = conn.recv(4096)
            if not chunk:
                break
            request += chunk
        return request

    def _trickle(self, conn: socket.socket, data: bytes) -> None:
        for i in range(len(data)):
            if self._stop.is_set():
                return
            conn.sendall(data[i:i + 1])
            with self._lock:
                self.trickled += 1
            self._stop.wait(TRICKLE_S)  # the server's pace, not a test's wait

    def _trickle_body(self, conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100000\r\n\r\n")
        self._trickle(conn, b"[" + b" " * 99_998 + b"]")

    def _trickle_head(self, conn: socket.socket) -> None:
        self._trickle(conn, b"HTTP/1.1 200 OK\r\n" * 10_000)

    def _flood(self, conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n[")
        block = b" " * 65536
        while not self._stop.is_set():
            conn.sendall(block)

    def _hangup(self, conn: socket.socket) -> None:
        conn.shutdown(socket.SHUT_RDWR)

    def _ok(self, conn: socket.socket) -> None:
        body = json.dumps(self.containers).encode()
        conn.sendall(f"HTTP/1.1 {self.status}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n".encode() + body)

    def close(self) -> None:
        self._stop.set()
        self.sock.close()


def docker_item(cid: str, name: str, image: str) -> dict:
    """A container as GET /containers/json lists it."""
    return {"Id": cid, "Names": [f"/{name}"], "Image": image, "State": "running",
            "Labels": {}}
