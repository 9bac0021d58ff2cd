"""Load for the reliability suite: a threaded HTTP client and a slowloris, both bounded.

``LoadClient`` threads send GETs in a loop, on new connections (``Connection: close``) or
keep-alive ones, and sort what happened to each request:

- ``ok``: a complete 2xx response (Content-Length delimited);
- ``refused``: the connection was never established (refused, or no SYN-ACK within the
  connect timeout): how a stopped server answers, never a lost request;
- ``reset``: accepted, then reset or closed before the response was complete;
- ``timeout``: accepted, then no complete response within the read timeout;
- ``non2xx``: answered with another status;
- ``retried``: a *reused* keep-alive connection closed before the first byte of the
  response; the request was sent again on a new connection, as RFC 9112 section 9.3.1
  lets a client do for an idempotent request (and as browsers and urllib3 do).

``lost`` = reset + timeout + non2xx + other errors. Each response carries the worker's
pid; ``first_seen`` maps a pid to when it first answered (time to replacement).

``Slowloris(port, count)`` opens ``count`` connections from one thread and trickles a
request head that never ends, one header byte per connection per ``interval``.
"""

from __future__ import annotations

import errno
import select
import socket
import struct
import threading
import time

CONNECT_TIMEOUT = 3.0
_REFUSED = frozenset({errno.ECONNREFUSED, errno.ETIMEDOUT, errno.EHOSTUNREACH})


class _Reused(Exception):
    """A reused keep-alive connection was closed before any byte of the response."""


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class LoadClient:
    def __init__(
        self,
        port: int,
        threads: int = 4,
        path: str = "/",
        keepalive: bool = False,
        read_timeout: float = 15.0,
        pause: float = 0.0,
    ) -> None:
        self.port = port
        self.path = path
        self.keepalive = keepalive
        self.read_timeout = read_timeout
        self.pause = pause
        self.ok = self.refused = self.reset = self.timeout = self.non2xx = self.errors = 0
        self.retried = 0
        self.in_flight = 0
        self.failures: list[str] = []  # the first few, for the assertion message
        self.latencies: list[float] = []
        self.first_seen: dict[int, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(threads)]

    @property
    def lost(self) -> int:
        return self.reset + self.timeout + self.non2xx + self.errors

    def figures(self) -> dict[str, int]:
        return {"ok": self.ok, "lost": self.lost, "refused": self.refused,
                "reset": self.reset, "timeout": self.timeout, "non2xx": self.non2xx,
                "retried": self.retried}  # fmt: skip

    def __enter__(self) -> LoadClient:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.read_timeout + CONNECT_TIMEOUT + 5)

    def wait_requests(self, count: int, timeout: float = 20.0) -> None:
        start = self.ok
        deadline = time.monotonic() + timeout
        while self.ok < start + count:
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {count} more requests")
            time.sleep(0.01)

    def run_for(self, seconds: float) -> None:
        time.sleep(seconds)

    # -- one thread ---------------------------------------------------------------------

    def _fail(self, kind: str, detail: str) -> None:
        with self._lock:
            setattr(self, kind, getattr(self, kind) + 1)
            if len(self.failures) < 10:
                self.failures.append(f"{kind}: {detail}")

    def _connect(self) -> socket.socket | None:
        sock = socket.socket()
        sock.settimeout(CONNECT_TIMEOUT)
        try:
            sock.connect(("127.0.0.1", self.port))
        except OSError as exc:
            sock.close()
            if isinstance(exc, TimeoutError) or exc.errno in _REFUSED:
                with self._lock:
                    self.refused += 1
                return None
            self._fail("errors", f"connect: {exc!r}")
            return None
        sock.settimeout(self.read_timeout)
        return sock

    def _loop(self) -> None:
        close = "" if self.keepalive else "Connection: close\r\n"
        request = f"GET {self.path} HTTP/1.1\r\nHost: t\r\n{close}\r\n".encode()
        sock: socket.socket | None = None
        reused = False
        while not self._stop.is_set():
            if sock is None:
                sock = self._connect()
                reused = False
                if sock is None:
                    time.sleep(0.01)
                    continue
            started = time.monotonic()
            with self._lock:
                self.in_flight += 1
            try:
                keep = self._exchange(sock, request, reused)
            except _Reused:
                with self._lock:
                    self.retried += 1
                keep = False
            except TimeoutError as exc:
                self._fail("timeout", repr(exc))
                keep = False
            except OSError as exc:
                self._fail("reset", repr(exc))
                keep = False
            except ValueError as exc:
                self._fail("errors", str(exc))
                keep = False
            else:
                with self._lock:
                    self.latencies.append(time.monotonic() - started)
            finally:
                with self._lock:
                    self.in_flight -= 1
            if keep and self.keepalive:
                reused = True
            else:
                sock.close()
                sock = None
            if self.pause:
                time.sleep(self.pause)
        if sock is not None:
            sock.close()

    def _exchange(self, sock: socket.socket, request: bytes, reused: bool) -> bool:
        """Send one request, read its response; True: the connection may be reused."""
        try:
            sock.sendall(request)
            data = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            if reused:
                raise _Reused() from None
            raise
        if not data:
            if reused:
                raise _Reused()
            raise ConnectionError("closed before any byte of the response")
        while b"\r\n\r\n" not in data:
            more = sock.recv(65536)
            if not more:
                raise ConnectionError(f"closed inside the response head: {data[:60]!r}")
            data += more
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = None
        closing = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                closing = True
        while length is None or len(body) < length:
            more = sock.recv(65536)
            if not more:
                if length is None:
                    break
                raise ConnectionError(f"closed after {len(body)} of {length} body bytes")
            body += more
        if not 200 <= status < 300:
            self._fail("non2xx", f"status {status}")
            return False
        with self._lock:
            self.ok += 1
            if body.startswith(b"pid="):
                pid = int(body[4:].strip() or 0)
                self.first_seen.setdefault(pid, time.monotonic())
        return not closing and length is not None


class Slowloris:
    """``count`` connections that trickle a request head that never ends (one thread)."""

    def __init__(self, port: int, count: int, interval: float = 1.0) -> None:
        self.port = port
        self.count = count
        self.interval = interval
        self.socks: list[socket.socket] = []
        #: seconds from connect to the server closing the connection, per closed one
        self.closed_after: list[float] = []
        self._opened: dict[int, float] = {}
        self._closed: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Slowloris:
        for _ in range(self.count):
            sock = socket.socket()
            # RST on close: no TIME_WAIT pile-up, no FIN the server might wait on
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.settimeout(CONNECT_TIMEOUT)
            sock.connect(("127.0.0.1", self.port))
            sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n")
            sock.setblocking(False)
            self._opened[sock.fileno()] = time.monotonic()
            self.socks.append(sock)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for sock in self.socks:
            sock.close()

    @property
    def open(self) -> int:
        return len(self.socks) - len(self.closed_after)

    def _let_go(self, sock: socket.socket, poller: select.poll) -> None:
        """The server answered (408) or closed the connection: it let go of it."""
        fd = sock.fileno()
        if fd in self._closed:
            return
        self._closed.add(fd)
        poller.unregister(fd)
        self.closed_after.append(time.monotonic() - self._opened[fd])

    def _loop(self) -> None:
        poller = select.poll()  # not select(): the fd numbers may pass FD_SETSIZE
        by_fd = {sock.fileno(): sock for sock in self.socks}
        for fd in by_fd:
            poller.register(fd, select.POLLIN)
        beat = 0
        while not self._stop.wait(self.interval / 4):
            beat += 1
            for fd, _ in poller.poll(0):
                self._let_go(by_fd[fd], poller)
            if beat % 4:
                continue
            for fd, sock in by_fd.items():
                if fd not in self._closed:
                    try:
                        sock.send(b"X")  # one byte of a header name that never ends
                    except OSError:
                        self._let_go(sock, poller)
