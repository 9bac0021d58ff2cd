"""The sync worker in a real server: close per response, real timeout, graceful stop."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

from worker_servers import Server, start_server

__all__ = ["start_server"]


def test_every_response_closes_the_connection(start_server: Callable[..., Server]) -> None:
    server = start_server("-w", "1")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.count(b"HTTP/1.1 200 OK") == 1  # one request per connection
    assert b"\r\nConnection: close\r\n" in data
    _pid, _, multithread = data.partition(b"\r\n\r\n")[2].split()
    assert multithread == b"False"
    assert server.terminate() == 0


def test_request_timeout_answers_504_and_the_worker_survives(
    start_server: Callable[..., Server],
) -> None:
    server = start_server("-w", "1", "--timeout", "1")
    pid_before = server.get("/")[1].split()[0]
    started = time.monotonic()
    status, _ = server.get("/sleep?10", timeout=8)
    assert status == 504
    assert time.monotonic() - started < 4
    assert server.get("/")[1].split()[0] == pid_before  # not killed: the request was
    assert "Request timed out after 1s: GET /sleep" in server.log()
    server.terminate()


def test_slow_requests_within_timeout_keep_the_heartbeat(
    start_server: Callable[..., Server],
) -> None:
    server = start_server("-w", "1", "--timeout", "1")
    pid_before = server.get("/")[1].split()[0]
    assert server.get("/sleep?0.8")[0] == 200
    assert server.get("/")[1].split()[0] == pid_before
    server.terminate()


def test_graceful_stop_finishes_the_request_in_flight(
    start_server: Callable[..., Server],
) -> None:
    server = start_server("-w", "1")
    result: list[tuple[int, bytes]] = []
    client = threading.Thread(target=lambda: result.append(server.get("/sleep?1", timeout=8)))
    client.start()
    time.sleep(0.3)
    assert server.terminate(timeout=10) == 0
    client.join(8)
    assert result and result[0][0] == 200


def test_validator_wrapped_app_without_warnings(start_server: Callable[..., Server]) -> None:
    server = start_server("-w", "1", app="app:checked", python_flags=("-W", "error"))
    assert server.get("/")[0] == 200
    conn = server.connection()
    conn.request("POST", "/echo", body=b"payload")
    response = conn.getresponse()
    assert (response.status, response.read()) == (200, b"payload")
    conn.close()
    server.terminate()
    log = server.log()
    assert "Traceback" not in log and "Warning" not in log
