"""The handler's deadlines against slow or hostile clients: ``header_timeout`` (blocking and
parked), ``body_timeout``/``min_body_rate``, ``write_timeout``, and the bounded buffer
under a pipelined flood. Each test asserts the deadline fires (within slack) and that the
handler ends cleanly, with the app's iterable closed."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from forkhorn.wsgi.handler import RECV_SIZE, Connection, ConnectionHandler
from wsgi_support import FakeWorker, RecordingLog, Served, make_config

SLACK = 1.5  # seconds a deadline may fire late on a busy test machine


def hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]


def echo(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


def read_until_closed(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and when it closed (monotonic)."""
    sock.settimeout(limit)
    chunks: list[bytes] = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks), time.monotonic()
        chunks.append(data)


def test_a_trickling_head_gets_408_at_header_timeout(serve: Callable[..., Served]) -> None:
    served = serve(hello, header_timeout=0.5)
    started = time.monotonic()
    served.send(b"GET / HTTP/1.1\r\nHost: x\r\n")  # one read, head incomplete
    time.sleep(0.2)
    served.send(b"X-Slow: 1\r\n")  # still incomplete, within the deadline
    data, closed = read_until_closed(served.client, 5)
    assert data.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"Connection: close" in data and b"Server: forkhorn" in data
    assert 0.45 <= closed - started <= 0.5 + SLACK
    served.join()


def test_a_head_completed_in_time_is_served(serve: Callable[..., Served]) -> None:
    served = serve(hello, header_timeout=2, keepalive=False)
    served.send(b"GET / HTTP/1.1\r\n")
    time.sleep(0.1)
    served.send(b"Host: x\r\n\r\n")
    data, _ = read_until_closed(served.client, 5)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(b"ok")
    served.join()


def test_parked_head_returns_to_the_worker_with_its_deadline() -> None:
    log = RecordingLog()
    worker = FakeWorker(hello, make_config(header_timeout=5), log)
    handler = ConnectionHandler(worker, park_partial_heads=True)
    server, client = socket.socketpair()
    try:
        server.settimeout(5)
        conn = Connection(server, ("127.0.0.1", 1), ("127.0.0.1", 2))
        client.sendall(b"GET / HTTP/1.1\r\nHo")
        assert handler.serve_one(conn) is True  # parked, no thread held
        assert conn.head_deadline > time.monotonic() + 4
        assert not conn.has_buffered_data  # wait in the poller, do not spin
        client.sendall(b"st: x\r\n\r\n")
        assert handler.serve_one(conn) is True  # the rest came: served
        assert conn.head_deadline == 0.0 and conn.buf == b""
        assert client.recv(4096).startswith(b"HTTP/1.1 200 OK\r\n")
        # a parked head past its deadline: the worker's sweep answers 408 without blocking
        client.sendall(b"GET / HTTP/1.1\r\n")
        assert handler.serve_one(conn) is True
        handler.time_out_head(conn)
        answer = client.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
        assert b"\r\nServer: forkhorn\r\n" in answer and b"\r\nDate: " in answer
        assert b"Connection: close\r\n" in answer
        assert conn.buf == b""  # the partial head is dropped with the connection
        assert log.records[-1] == (
            "info",
            "Invalid request from 127.0.0.1:1: request head not complete in 5s",
        )
    finally:
        server.close()
        client.close()


def test_the_head_buffer_grows_in_place_and_is_bounded(serve: Callable[..., Served]) -> None:
    # a head sent byte by byte is refused once a line is over its limit, not buffered on
    served = serve(hello, header_timeout=10, limit_request_field_size=200)
    served.send(b"GET / HTTP/1.1\r\nHost: x\r\nX: ")
    for _ in range(300):
        try:
            served.send(b"a")
        except OSError:
            break
    data, _ = read_until_closed(served.client, 5)
    assert data.startswith(b"HTTP/1.1 431 ")
    served.join()


def test_body_timeout_answers_408(serve: Callable[..., Served]) -> None:
    served = serve(echo, body_timeout=0.5)
    started = time.monotonic()
    served.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
    data, closed = read_until_closed(served.client, 5)
    assert data.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert 0.45 <= closed - started <= 0.5 + SLACK
    served.join()
    assert any("body_timeout" in msg for _, msg in served.log.records)


def test_min_body_rate_stops_a_trickling_body(serve: Callable[..., Served]) -> None:
    # a byte every 50 ms (20 B/s) never waits body_timeout, but is under 100 B/s
    served = serve(echo, body_timeout=0.5, min_body_rate=100)
    served.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
    started = time.monotonic()
    closed_early = False
    for _ in range(100):
        if select.select([served.client], [], [], 0)[0]:
            # the answer is in: stop, as a client would. A byte sent after the server's
            # linger ended would be unread at its close, and a socketpair then resets the
            # stream before the client has read the answer.
            break
        try:
            served.send(b"x")
        except OSError:
            closed_early = True
            break
        time.sleep(0.05)
        if time.monotonic() - started > 3:
            break
    data, closed = read_until_closed(served.client, 5)
    assert data.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), (closed_early, data[:80])
    assert closed - started <= 0.5 + 0.2 + SLACK
    served.join()
    assert any("min_body_rate" in msg for _, msg in served.log.records)


def test_a_fast_body_is_not_limited(serve: Callable[..., Served]) -> None:
    served = serve(echo, body_timeout=0.5, min_body_rate=1_000_000, keepalive=False)
    body = b"y" * 300_000
    served.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
    served.send(body)
    data, _ = read_until_closed(served.client, 5)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(body)
    served.join()


class Endless:
    """A big response body that records its close()."""

    def __init__(self) -> None:
        self.closed = 0

    def __iter__(self) -> Iterator[bytes]:
        chunk = b"z" * 65536
        for _ in range(10_000):  # 640 MiB: never fits in a socket buffer
            yield chunk

    def close(self) -> None:
        self.closed += 1


def test_write_timeout_drops_a_client_that_stops_reading(serve: Callable[..., Served]) -> None:
    body = Endless()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Endless:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return body

    served = serve(app, write_timeout=0.5)
    served.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    started = time.monotonic()
    served.thread.join(0.5 + SLACK + 1)
    assert not served.thread.is_alive(), "the handler is still blocked writing"
    assert time.monotonic() - started >= 0.45
    assert body.closed == 1
    assert any("write_timeout" in msg for _, msg in served.log.records)
    served.join()


def test_pipelined_flood_is_not_buffered_and_ends_at_write_timeout(
    serve: Callable[..., Served],
) -> None:
    big = b"w" * 16384

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Length", str(len(big)))])
        return [big]

    served = serve(app, write_timeout=0.5)
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    served.client.setblocking(False)
    sent = 0
    deadline = time.monotonic() + 0.5 + SLACK + 2
    sizes = []
    while served.thread.is_alive() and time.monotonic() < deadline:
        try:
            sent += served.client.send(request * 200)
        except BlockingIOError:
            time.sleep(0.01)  # the server does not read ahead: its buffers are bounded
        except OSError:
            break
        sizes.append(len(served.conn.buf))
    served.thread.join(SLACK)
    assert not served.thread.is_alive(), "the handler is still blocked writing"
    assert sent > 100 * len(request)
    assert max(sizes) <= RECV_SIZE + len(request)
    served.client.setblocking(True)
    served.join()


@pytest.mark.parametrize("setting", ["header_timeout", "body_timeout", "write_timeout"])
def test_zero_disables(setting: str, serve: Callable[..., Served]) -> None:
    served = serve(echo, keepalive=False, **{setting: 0})
    served.send(b"POST / HTTP/1.1\r\nHost: x\r\n")
    time.sleep(0.05)
    served.send(b"Content-Length: 2\r\n\r\n")
    time.sleep(0.05)
    served.send(b"hi")
    data, _ = read_until_closed(served.client, 5)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(b"hi")
    served.join()
