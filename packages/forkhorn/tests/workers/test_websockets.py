"""Websockets on the core workers: the shared suite's Flask-Sock test, on sync and gthread;
and what a websocket upgrade request changes for an app that answers it as HTTP."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from forkhorn.testing.servers import start_server  # noqa: F401 (the suite's fixture)
from forkhorn.testing.suite import test_a_flask_sock_websocket_is_served  # noqa: F401


@pytest.fixture(params=["sync", "gthread"])
def worker_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize("worker_name", ["gthread"])  # (sync reuses no connection anyway)
def test_an_upgrade_request_answered_as_http_ends_its_connection(
    start_server: Any,  # noqa: F811 (the fixture imported above)
) -> None:
    # The worker cannot tell whether the app switched protocols on the socket: a
    # connection that asked for a websocket is never read again as HTTP.
    server = start_server("-w", "1", "--threads", "2")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
                     b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")  # fmt: skip
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.count(b"HTTP/1.1 200 OK") == 1
    assert b"\r\nConnection: close\r\n" in data.partition(b"\r\n\r\n")[0]
    assert server.stop() == 0
