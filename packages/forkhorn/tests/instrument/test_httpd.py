"""The metrics responder, driven by a select loop like the master's."""

from __future__ import annotations

import select
import socket
import threading
import time

import pytest
from forkhorn.instrument.httpd import MetricsBindError, MetricsServer


class Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def warning(self, msg: str, *args: object) -> None:
        self.lines.append(msg % args)

    def exception(self, msg: str, *args: object) -> None:
        self.lines.append(msg % args)


@pytest.fixture
def served():
    stop = threading.Event()
    servers: list[MetricsServer] = []

    def start(address: str, render=lambda: b"metric 1\n") -> MetricsServer:
        server = MetricsServer(address, render, Log())
        servers.append(server)

        def loop() -> None:
            while not stop.is_set():
                readable, writable, _ = select.select(server.read_fds(), server.write_fds(), [],
                                                      0.05)  # fmt: skip
                server.handle(readable, writable)

        threading.Thread(target=loop, daemon=True).start()
        return server

    yield start
    stop.set()
    time.sleep(0.1)
    for server in servers:
        server.close()


def ask(address, request: bytes) -> bytes:
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(address)
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def test_get_metrics(served):
    server = served("127.0.0.1:0")
    address = server.sock.getsockname()
    response = ask(address, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n" in response
    assert response.endswith(b"\r\n\r\nmetric 1\n")
    head = ask(address, b"HEAD /metrics?x=1 HTTP/1.0\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and head.endswith(b"\r\n\r\n")
    assert ask(address, b"GET /other HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 404")
    assert ask(address, b"POST /metrics HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 405")
    assert ask(address, b"garbage\r\n\r\n").startswith(b"HTTP/1.1 400")


def test_unix_socket_and_render_failure(served, tmp_path):
    def broken() -> bytes:
        raise RuntimeError("nope")

    path = str(tmp_path / "metrics.sock")
    server = served(f"unix:{path}", broken)
    assert ask(path, b"GET / HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 500")
    assert server.log.lines == ["metrics endpoint: rendering failed"]


def test_a_silent_client_does_not_block_others(served):
    server = served("127.0.0.1:0")
    address = server.sock.getsockname()
    with socket.create_connection(address, timeout=5):  # connects, never sends
        assert ask(address, b"GET /metrics HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 200")


def test_bind_error_is_reported():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(MetricsBindError, match="metrics_bind"):
            MetricsServer(f"127.0.0.1:{taken.getsockname()[1]}", lambda: b"", Log())
