"""`sikte-tui demo`: a bundled workload that fills every view of sikte-tui when traced.

    sudo sikte-tui -- sikte-tui demo
    sudo sikte-tui record -- .venv/bin/sikte-tui demo --duration 5

Each round runs six phases, each with fixed counts: file I/O, failing syscalls (ENOENT,
EBADF, ECONNREFUSED, EEXIST), TCP to a local server (IPv4, and IPv6 when it works), short-lived
child processes (one exits with code 3), worker threads, and a pure-Python CPU burn
(`burn_cpu`). Small sleeps between phases keep it off the CPU except in the burn. Needs no
root and nothing outside the standard library; its temp files and server are removed at the
end, on Ctrl+C (exit 130), SIGTERM and SIGHUP (exit 128 + the signal).
"""

from __future__ import annotations

import argparse
import errno
import math
import os
import selectors
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import NoReturn, cast

from tracing.errors import UserError

FILES_PER_ROUND = 5
CONNECTIONS_PER_ROUND = 3  # per address family, plus as many that connect and close at once
WORKER_THREADS = 3
CHILD_EXIT_CODE = 3
BURN_SECONDS = 0.5
PAUSE_SECONDS = 0.05
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", default="20", metavar="S",
                        help="run for S seconds (default: 20; 0: until Ctrl+C)")
    parser.add_argument("--quiet", action="store_true", help="print nothing")
    # argparse has no other hook for its usage errors; the replacement has error's signature.
    parser.error = _one_line_error  # type: ignore[method-assign]


def _one_line_error(message: str) -> NoReturn:
    raise UserError(f"demo: {message}", exit_code=2)


def run(args: argparse.Namespace) -> int:
    duration = _parse_duration(args.duration)
    say = _printer(args.quiet)
    try:
        with _stop_signals(), Demo(say) as demo:
            rounds = demo.run_for(duration)
    except KeyboardInterrupt:
        return 130
    except _Stopped as stop:
        return 128 + stop.signum
    say(f"demo: done, {rounds} rounds")
    return 0


def _parse_duration(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise UserError(f"demo: --duration takes seconds >= 0 (0: until Ctrl+C), not {text!r}")
    return seconds


def _printer(quiet: bool) -> Callable[[str], None]:
    def say(line: str) -> None:
        if not quiet:
            print(line, flush=True)

    return say


class _Stopped(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def _stop_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP unwind like Ctrl+C, so the temp dir and server are removed."""

    def stop(signum: int, _frame: object) -> None:
        raise _Stopped(signum)

    previous = {sig: signal.signal(sig, stop) for sig in STOP_SIGNALS - {signal.SIGINT}}
    # Ctrl+C raises KeyboardInterrupt even where SIGINT came ignored (a background job).
    previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def burn_cpu(seconds: float) -> int:
    """Pure-Python CPU work for about `seconds` (the clock is read through the vDSO, so no
    syscalls); returns how many primes it found, so the work has a result."""
    deadline = time.perf_counter() + seconds
    found, n = 0, 2
    while time.perf_counter() < deadline:
        for _ in range(2000):
            found += all(n % d for d in range(2, math.isqrt(n) + 1))
            n += 1
    return found


class EchoServer:
    """TCP echo server on ephemeral ports of 127.0.0.1 and ::1 (when IPv6 works), in a thread."""

    def __init__(self) -> None:
        self.addresses: list[tuple[int, tuple[str, int]]] = []
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()
        for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            self._listen(family, host)
        self._thread = threading.Thread(target=self._serve, name="demo-server", daemon=True)
        self._thread.start()

    def _listen(self, family: int, host: str) -> None:
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError:  # no IPv6 in this kernel or namespace
            return
        try:
            sock.bind((host, 0))
            sock.listen(16)
        except OSError:  # IPv6 present but ::1 not configured
            sock.close()
            return
        self._selector.register(sock, selectors.EVENT_READ)
        self.addresses.append((family, sock.getsockname()[:2]))

    def _serve(self) -> None:
        _name_thread("demo-server")
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.1):
                # Only listening sockets are registered (_listen).
                self._echo_one(cast(socket.socket, key.fileobj))

    @staticmethod
    def _echo_one(listener: socket.socket) -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(2)
            try:
                while data := conn.recv(4096):
                    conn.sendall(data)
            except OSError:  # the client went away or stalled; the next one is independent
                return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for key in list(self._selector.get_map().values()):
            cast(socket.socket, key.fileobj).close()
        self._selector.close()


class Demo:
    """The workload's state: a temp dir, the echo server, and a port where nothing listens."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self._cleanup = ExitStack()

    def __enter__(self) -> Demo:
        with self._cleanup as cleanup:  # on a failure (or Ctrl+C) here, undo what was done
            self.tmp = Path(tempfile.mkdtemp(prefix="sikte-demo-"))
            cleanup.callback(shutil.rmtree, self.tmp, ignore_errors=True)
            # Bound but not listening: connecting to it is refused, and no one else can take it.
            self._refuser = cleanup.enter_context(socket.socket(socket.AF_INET))
            self._refuser.bind(("127.0.0.1", 0))
            self.server = EchoServer()
            cleanup.callback(self.server.close)
            self._cleanup = cleanup.pop_all()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._cleanup.close()

    def run_for(self, duration: float) -> int:
        deadline = time.monotonic() + duration if duration else math.inf
        rounds = 0
        while time.monotonic() < deadline:
            rounds += 1
            self.one_round(rounds, deadline)
        return rounds

    def one_round(self, n: int, deadline: float) -> None:
        phases: list[Callable[[], str]] = [self.files, self.failures, self.tcp, self.children,
                                           self.threads]
        for phase in phases:
            self.say(f"[{n}] {phase()}")
            time.sleep(PAUSE_SECONDS)
        seconds = max(0.0, min(BURN_SECONDS, deadline - time.monotonic()))
        found = burn_cpu(seconds)
        self.say(f"[{n}] cpu: burn_cpu for {seconds:.1f} s found {found} primes")

    def files(self) -> str:
        for i in range(FILES_PER_ROUND):
            _file_cycle(self.tmp, f"f{i}")
        os.listdir(self.tmp)
        os.getppid()
        os.getpid()
        time.sleep(0.001)
        return (f"files: wrote, fsynced, read, renamed and removed {FILES_PER_ROUND} files "
                f"in {self.tmp}, listed it")

    def failures(self) -> str:
        _expect_error(errno.ENOENT, lambda: os.open(self.tmp / "missing", os.O_RDONLY))
        _expect_error(errno.ENOENT, lambda: os.stat(self.tmp / "missing"))
        _expect_error(errno.EEXIST, lambda: os.mkdir(self.tmp))
        _write_read_only(self.tmp / "read-only")
        port = self._refuser.getsockname()[1]
        _expect_error(errno.ECONNREFUSED, lambda: _connect(socket.AF_INET, ("127.0.0.1", port)))
        return f"failures: ENOENT x2, EEXIST, EBADF, ECONNREFUSED on 127.0.0.1:{port}"

    def tcp(self) -> str:
        for family, address in self.server.addresses:
            for _ in range(CONNECTIONS_PER_ROUND):
                _ping(family, address)
                _connect(family, address).close()
        where = ", ".join(f"[{a[0]}]:{a[1]}" for _, a in self.server.addresses)
        return f"tcp: {2 * CONNECTIONS_PER_ROUND} connections to each of {where}"

    def children(self) -> str:
        true_code = subprocess.run(["/bin/true"], check=False).returncode
        fork_code = _fork_child(self.tmp)
        return f"children: /bin/true exited {true_code}, a forked child exited {fork_code}"

    def threads(self) -> str:
        workers = [threading.Thread(target=_worker, args=(self.tmp, i), name=f"demo-worker-{i}")
                   for i in range(WORKER_THREADS)]
        try:
            for worker in workers:
                worker.start()
        finally:  # on Ctrl+C too, so none writes into the temp dir as it is removed
            for worker in workers:
                if worker.ident is not None:
                    worker.join()
        return f"threads: {WORKER_THREADS} worker threads did file I/O and sleeps"


def _file_cycle(tmp: Path, name: str) -> None:
    path, renamed = tmp / name, tmp / f"{name}.renamed"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, b"sikte-tui demo\n" * 64)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.stat(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.read(fd, 4096)
    finally:
        os.close(fd)
    os.rename(path, renamed)
    os.unlink(renamed)


def _expect_error(code: int, call: Callable[[], object]) -> None:
    try:
        call()
    except OSError as err:
        if err.errno != code:
            raise
        return
    raise RuntimeError(f"expected {errno.errorcode[code]}, but the call succeeded")


def _write_read_only(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o600)
    try:
        _expect_error(errno.EBADF, lambda: os.write(fd, b"x"))
    finally:
        os.close(fd)


def _connect(family: int, address: tuple[str, int]) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.connect(address)  # blocking, so a connect that works does not fail EINPROGRESS
    except OSError:
        sock.close()
        raise
    sock.settimeout(2)
    return sock


def _ping(family: int, address: tuple[str, int]) -> None:
    message = b"ping from sikte-tui demo\n"
    with _connect(family, address) as sock:
        sock.sendall(message)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
    if received != message:
        raise RuntimeError(f"the echo server answered {received!r}")


def _fork_child(tmp: Path) -> int:
    """Fork (no exec) a child that makes a few syscalls and exits with CHILD_EXIT_CODE.

    The stop signals stay blocked in the child, which lives for milliseconds: a Ctrl+C that
    reaches it must not run the parent's Python handlers in this copy of the process."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        with warnings.catch_warnings():  # Python 3.12+ warns about fork in a threaded process
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:
            _child_main(tmp)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _child_main(tmp: Path) -> NoReturn:
    # Only plain os calls here: other threads' locks may be held in this copy of the process.
    try:
        _name_thread("demo-child")
        os.getppid()
        os.listdir(tmp)
        time.sleep(0.01)
    finally:
        os._exit(CHILD_EXIT_CODE)


def _worker(tmp: Path, index: int) -> None:
    _name_thread(f"demo-worker-{index}")
    for i in range(3):
        _file_cycle(tmp, f"w{index}-{i}")
        os.getppid()
        time.sleep(0.002)


def _name_thread(name: str) -> None:
    """Set the kernel's name (comm) of the calling thread, which the TUI shows."""
    try:
        with open(f"/proc/self/task/{threading.get_native_id()}/comm", "w") as comm:
            comm.write(name[:15])
    except OSError:  # no /proc: the thread keeps its parent's name
        return
