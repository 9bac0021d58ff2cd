"""The master's metrics endpoint: a tiny non-blocking HTTP/1.x responder for ``select``.

Theory of operation
-------------------
The master's loop already sleeps in ``select``; this server adds its listening socket and
its open connections to that call (``read_fds``/``write_fds``) and does the ready work in
``handle``, so no thread runs in the master (forking a threaded process is unsafe, and
scrapes never race the master's bookkeeping). Each connection: read the request head
(up to ``MAX_HEAD`` bytes), answer ``GET``/``HEAD`` of ``/metrics`` (or ``/``) with the
exposition, 404 other paths, 405 other methods, always ``Connection: close``; write as
far as the socket takes, then close.

Invariants
----------
* Nothing blocks: the sockets are non-blocking; a slow client only keeps its own
  connection, which is dropped after ``CLIENT_TIMEOUT`` seconds; at most
  ``MAX_CONNECTIONS`` are open (more are closed on accept).
* A failure to render is answered 500 and logged; it never escapes into the master loop.
* The listening socket is not inherited across exec (Python's default), and workers close
  their inherited copy (``close_in_child``) so only the master holds the port.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import time
from collections.abc import Callable, Iterable
from typing import Any

from forkhorn.instrument.prometheus import CONTENT_TYPE

MAX_HEAD = 8192
MAX_CONNECTIONS = 16
CLIENT_TIMEOUT = 10.0
PATHS = ("/metrics", "/")


class MetricsBindError(Exception):
    pass


def bind_metrics_socket(address: str) -> socket.socket:
    """Listen on ``HOST:PORT``, ``[IPV6]:PORT`` or ``unix:PATH`` (non-blocking)."""
    try:
        if address.startswith("unix:"):
            path = address[len("unix:") :]
            try:
                if stat.S_ISSOCK(os.stat(path).st_mode):
                    os.unlink(path)  # a stale socket of an earlier run
            except FileNotFoundError:
                pass
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.bind(path)
            except OSError:
                sock.close()
                raise
            sock.listen(MAX_CONNECTIONS)
        else:
            host, _, port = address.rpartition(":")
            host = host[1:-1] if host.startswith("[") else host
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.create_server(
                (host or "0.0.0.0", int(port)), family=family, backlog=MAX_CONNECTIONS
            )
    except (OSError, ValueError) as exc:
        raise MetricsBindError(f"cannot listen on metrics_bind {address!r}: {exc}") from exc
    sock.setblocking(False)
    return sock


class _Client:
    __slots__ = ("deadline", "inbox", "outbox", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbox = b""
        self.outbox: bytes | None = None  # None: still reading the request
        self.deadline = time.monotonic() + CLIENT_TIMEOUT


class MetricsServer:
    """``render()`` -> the exposition body; ``log`` gets errors."""

    def __init__(self, address: str, render: Callable[[], bytes], log: Any) -> None:
        self.address = address
        self.render = render
        self.log = log
        self.sock = bind_metrics_socket(address)
        self._clients: dict[socket.socket, _Client] = {}

    # --- select integration -------------------------------------------------------------

    def read_fds(self) -> list[socket.socket]:
        return [self.sock, *(s for s, c in self._clients.items() if c.outbox is None)]

    def write_fds(self) -> list[socket.socket]:
        return [s for s, c in self._clients.items() if c.outbox is not None]

    def handle(self, readable: Iterable[Any], writable: Iterable[Any]) -> None:
        for sock in readable:
            if sock is self.sock:
                self._accept()
            elif sock in self._clients:
                self._read(self._clients[sock])
        for sock in writable:
            client = self._clients.get(sock)
            if client is not None:
                self._write(client)
        self._expire()

    # --- connections ----------------------------------------------------------------------

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO):
                    continue
                self.log.warning("metrics endpoint: accept failed: %s", exc)
                return
            if len(self._clients) >= MAX_CONNECTIONS:
                conn.close()
                continue
            conn.setblocking(False)
            self._clients[conn] = _Client(conn)

    def _read(self, client: _Client) -> None:
        try:
            data = client.sock.recv(MAX_HEAD)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(client)
            return
        if not data:
            self._close(client)
            return
        client.inbox += data
        end = client.inbox.find(b"\r\n\r\n")
        if end < 0:
            end = client.inbox.find(b"\n\n")
        if end < 0:
            if len(client.inbox) > MAX_HEAD:
                client.outbox = self._response(431, "Request Header Fields Too Large", b"")
                self._write(client)
            return
        client.outbox = self._answer(client.inbox[:end])
        self._write(client)

    def _answer(self, head: bytes) -> bytes:
        parts = head.split(b"\r\n", 1)[0].split()
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            return self._response(400, "Bad Request", b"bad request\n")
        method, target = parts[0], parts[1]
        if method not in (b"GET", b"HEAD"):
            return self._response(405, "Method Not Allowed", b"GET or HEAD only\n",
                                  extra="Allow: GET, HEAD\r\n")  # fmt: skip
        path = target.split(b"?", 1)[0].decode("latin-1")
        if path not in PATHS:
            return self._response(404, "Not Found", b"metrics are at /metrics\n")
        try:
            body = self.render()
        except Exception:
            self.log.exception("metrics endpoint: rendering failed")
            return self._response(500, "Internal Server Error", b"rendering failed\n")
        return self._response(200, "OK", body, content_type=CONTENT_TYPE,
                              head_only=method == b"HEAD")  # fmt: skip

    @staticmethod
    def _response(status: int, reason: str, body: bytes, content_type: str = "text/plain",
                  extra: str = "", head_only: bool = False) -> bytes:  # fmt: skip
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n"
        ).encode("latin-1")
        return head if head_only else head + body

    def _write(self, client: _Client) -> None:
        data = client.outbox
        if not data:
            self._close(client)
            return
        try:
            sent = client.sock.send(data)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(client)
            return
        client.outbox = data[sent:]
        if not client.outbox:
            self._close(client)

    def _expire(self) -> None:
        now = time.monotonic()
        for client in [c for c in self._clients.values() if c.deadline <= now]:
            self._close(client)

    def _close(self, client: _Client) -> None:
        self._clients.pop(client.sock, None)
        try:
            client.sock.close()
        except OSError:
            pass

    def close_in_child(self) -> None:
        """In a freshly forked worker: drop the inherited sockets (without unlinking)."""
        for sock in [self.sock, *self._clients]:
            try:
                sock.close()
            except OSError:
                pass
        self._clients.clear()

    def close(self) -> None:
        for client in list(self._clients.values()):
            self._close(client)
        unix_path = self.address[len("unix:") :] if self.address.startswith("unix:") else None
        try:
            self.sock.close()
        except OSError:
            pass
        if unix_path:
            try:
                os.unlink(unix_path)
            except OSError:
                pass
