"""Test support for the WSGI layer: a fake worker, a recording log, the real handler served
over a socketpair, and a small HTTP response reader."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any

from forkhorn.config import Config


class RecordingLog:
    """Stands in for ``forkhorn.logging.Logger``: records (level, message) pairs."""

    def __init__(self, access_enabled: bool = False) -> None:
        self.records: list[tuple[str, str]] = []
        self.access_records: list[tuple[Any, ...]] = []
        self.access_enabled = access_enabled

    def _record(self, level: str, msg: str, *args: Any) -> None:
        self.records.append((level, msg % args if args else msg))

    def debug(self, msg: str, *args: Any) -> None:
        self._record("debug", msg, *args)

    def info(self, msg: str, *args: Any) -> None:
        self._record("info", msg, *args)

    def warning(self, msg: str, *args: Any) -> None:
        self._record("warning", msg, *args)

    def error(self, msg: str, *args: Any) -> None:
        self._record("error", msg, *args)

    def exception(self, msg: str, *args: Any) -> None:
        import traceback

        self._record("exception", (msg % args if args else msg) + "\n" + traceback.format_exc())

    def access(self, environ: Any, status: str, headers: Any, sent: int, took: float) -> None:
        self.access_records.append((environ, status, headers, sent, took))

    def levels(self) -> list[str]:
        return [level for level, _ in self.records]


class FakeWorker:
    """The attributes of ``forkhorn.workers.base.Worker`` the handler reads."""

    def __init__(self, app: Callable[..., Any], cfg: Config, log: RecordingLog) -> None:
        self.wsgi = app
        self.cfg = cfg
        self.log = log
        self.alive = True
        self.nr = 0
        self.app = None
        self.started: list[tuple[str, str]] = []

    def count_request(self) -> None:
        self.nr += 1

    def request_started(self, method: str, path: str) -> None:
        self.started.append((method, path))

    def request_finished(self) -> None:
        pass


def make_config(**settings: Any) -> Config:
    cfg = Config()
    for name, value in settings.items():
        cfg.set(name, value)
    return cfg


class Served:
    """A handler serving one socketpair end in a thread; the test talks to ``client``."""

    def __init__(self, app: Callable[..., Any], *, keepalive: bool | None = None,
                 log: RecordingLog | None = None, server_addr: Any = ("127.0.0.1", 8000),
                 client_addr: Any = ("127.0.0.1", 50000), worker_app: Any = None,
                 **settings: Any) -> None:  # fmt: skip
        from forkhorn.wsgi.handler import Connection, ConnectionHandler

        self.log = log or RecordingLog()
        self.worker = FakeWorker(app, make_config(**settings), self.log)
        self.worker.app = worker_app  # what provides .plugin_manager
        self.handler = ConnectionHandler(self.worker, keepalive=keepalive)
        server_sock, self.client = socket.socketpair()
        self.client.settimeout(5)
        self.conn = Connection(server_sock, client_addr, server_addr)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.handler.serve(self.conn)
        except BaseException as exc:  # surfaced by join()
            self.error = exc

    def send(self, data: bytes) -> None:
        self.client.sendall(data)

    def read_all(self) -> bytes:
        """Everything until the server closes."""
        chunks: list[bytes] = []
        while True:
            data = self.client.recv(65536)
            if not data:
                return b"".join(chunks)
            chunks.append(data)

    def join(self) -> None:
        self.thread.join(5)
        assert not self.thread.is_alive(), "the handler did not finish"
        self.client.close()
        if self.error is not None:
            raise self.error


class HTTPReply:
    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes,
                 raw_head: bytes) -> None:  # fmt: skip
        self.status = status
        self.headers = headers
        self.body = body
        self.raw_head = raw_head

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


def read_reply(stream: Any, method: str = "GET") -> HTTPReply:
    """Parse one HTTP/1.x response from a buffered binary stream (``sock.makefile('rb')``)."""
    raw = stream.readline()
    assert raw, "connection closed before a response"
    head = [raw]
    status = int(raw.split(b" ")[1])
    headers = []
    while True:
        line = stream.readline()
        head.append(line)
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers.append((name, value.strip()))
    reply = HTTPReply(status, headers, b"", b"".join(head))
    if method == "HEAD" or status < 200 or status in (204, 304):
        return reply
    length = reply.header("content-length")
    if reply.header("transfer-encoding") == "chunked":
        parts = []
        while True:
            size = int(stream.readline().split(b";")[0], 16)
            if size == 0:
                assert stream.readline() == b"\r\n"
                break
            parts.append(stream.read(size))
            assert stream.readline() == b"\r\n"
        reply.body = b"".join(parts)
    elif length is not None:
        reply.body = stream.read(int(length))
    else:
        reply.body = stream.read()
    return reply
