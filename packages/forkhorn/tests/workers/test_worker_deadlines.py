"""Deadlines against hostile clients on real sync and gthread servers: slowloris heads
(``header_timeout``), a stalled body (``body_timeout``), a client that stops reading
(``write_timeout``, the iterable still closed) and a pipelined flood; each test checks the
deadline fires and that the server keeps serving other clients."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from worker_servers import Server, start_server

__all__ = ["start_server"]

SLACK = 2.0  # seconds a deadline may fire late on a busy test machine

BIG_APP = """
import os

MARK = os.path.join(os.path.dirname(__file__), "closed.txt")


class Endless:
    def __iter__(self):
        chunk = b"z" * 65536
        for _ in range(20_000):
            yield chunk

    def close(self):
        with open(MARK, "a") as out:
            out.write("closed\\n")


def app(environ, start_response):
    if environ["PATH_INFO"] == "/big":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return Endless()
    if environ["PATH_INFO"] == "/echo":
        body = environ["wsgi.input"].read()
    else:
        body = b"ok"
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
"""


def slow_client(port: int, head: bytes = b"GET / HTTP/1.1\r\nHost: x\r\n") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    if head:
        sock.sendall(head)
    return sock


def wait_closed(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    """What the server sent until it closed the connection, and when (monotonic)."""
    sock.settimeout(limit)
    chunks: list[bytes] = []
    try:
        while data := sock.recv(65536):
            chunks.append(data)
    except ConnectionResetError:
        pass
    return b"".join(chunks), time.monotonic()


def timed_get(server: Server) -> float:
    started = time.monotonic()
    status, _ = server.get("/", timeout=5)
    assert status == 200
    return time.monotonic() - started


def test_sync_header_timeout_frees_the_worker(start_server: Callable[..., Server]) -> None:
    server = start_server("-w", "1", "--header-timeout", "1")
    started = time.monotonic()
    loris = slow_client(server.port)
    time.sleep(0.3)
    loris.sendall(b"X-A: 1\r\n")  # trickles, never ends its head
    data, closed = wait_closed(loris, 10)
    loris.close()
    assert data.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert closed - started <= 1 + SLACK
    assert timed_get(server) < 2


def test_sync_silent_client_is_closed_at_header_timeout(
    start_server: Callable[..., Server],
) -> None:
    server = start_server("-w", "1", "--header-timeout", "0.5")
    started = time.monotonic()
    silent = slow_client(server.port, head=b"")
    data, closed = wait_closed(silent, 10)
    silent.close()
    assert data == b""  # nothing came: closed without an answer
    assert 0.4 <= closed - started <= 0.5 + SLACK
    assert timed_get(server) < 2


def test_sync_slowloris_queue_is_worked_through(start_server: Callable[..., Server]) -> None:
    # 6 slowloris connections on one sync worker: each holds it at most header_timeout,
    # then a normal client is served
    server = start_server("-w", "1", "--header-timeout", "0.3")
    started = time.monotonic()
    lorises = [slow_client(server.port) for _ in range(6)]
    try:
        for loris in lorises:
            data, _ = wait_closed(loris, 10)
            assert data == b"" or data.startswith(b"HTTP/1.1 408 ")
        assert time.monotonic() - started <= 6 * 0.3 + SLACK
        assert timed_get(server) < 2
    finally:
        for loris in lorises:
            loris.close()


def test_gthread_slowloris_holds_no_thread(start_server: Callable[..., Server]) -> None:
    server = start_server("-w", "1", "-k", "gthread", "--threads", "2", "--header-timeout", "1.5")
    lorises = [slow_client(server.port) for _ in range(40)]
    try:
        started = time.monotonic()
        for loris in lorises:
            loris.sendall(b"X-B: 2\r\n")  # each wakes a thread that must not stay
        latencies = [timed_get(server) for _ in range(10)]
        assert max(latencies) < 0.5, latencies
        for loris in lorises:
            data, closed = wait_closed(loris, 10)
            assert data.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
        assert closed - started <= 1.5 + SLACK
    finally:
        for loris in lorises:
            loris.close()
    assert timed_get(server) < 2


@pytest.mark.parametrize("worker", ["sync", "gthread"])
def test_stalled_body_gets_408(start_server: Callable[..., Server], worker: str,
                               tmp_path: Path) -> None:  # fmt: skip
    (tmp_path / "bigapp.py").write_text(BIG_APP)
    server = start_server("-w", "1", "-k", worker, "--body-timeout", "0.5", app="bigapp:app")
    started = time.monotonic()
    client = slow_client(
        server.port, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\nabc"
    )
    data, closed = wait_closed(client, 10)
    client.close()
    assert data.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert closed - started <= 0.5 + SLACK
    assert timed_get(server) < 2


@pytest.mark.parametrize("worker", ["sync", "gthread"])
def test_client_that_stops_reading_is_dropped_and_the_body_closed(
    start_server: Callable[..., Server], worker: str, tmp_path: Path
) -> None:
    (tmp_path / "bigapp.py").write_text(BIG_APP)
    threads = ["--threads", "2"] if worker == "gthread" else []
    server = start_server("-w", "1", "-k", worker, *threads, "--write-timeout", "0.5",
                          "--timeout", "60", app="bigapp:app")  # fmt: skip
    reader = slow_client(server.port, b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    mark = tmp_path / "closed.txt"
    deadline = time.monotonic() + 0.5 + SLACK + 3
    while not mark.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    reader.close()
    assert mark.exists(), "the app's iterable was not closed: " + server.log()[-2000:]
    assert mark.read_text() == "closed\n"
    assert timed_get(server) < 2


def test_gthread_pipelined_flood_ends_at_write_timeout(
    start_server: Callable[..., Server],
) -> None:
    server = start_server("-w", "1", "-k", "gthread", "--threads", "2", "--write-timeout", "0.5")
    flood = slow_client(server.port, head=b"")
    flood.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    flood.setblocking(False)
    requests = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 500
    deadline = time.monotonic() + 10
    stalled_since = 0.0
    sent = 0
    while time.monotonic() < deadline:
        try:
            sent += flood.send(requests)
            stalled_since = 0.0
        except BlockingIOError:
            # every buffer is full: the server reads no further ahead than it answers
            now = time.monotonic()
            stalled_since = stalled_since or now
            if now - stalled_since > 0.3:
                break
            time.sleep(0.02)
        except OSError:
            break  # reset: the server already gave up on us
    assert timed_get(server) < 2  # the other thread still serves
    time.sleep(0.5 + SLACK)  # write_timeout passes while we read nothing
    flood.setblocking(True)
    data, _ = wait_closed(flood, 10)  # socket.timeout (a failure) if it never closes
    flood.close()
    answered = data.count(b"HTTP/1.1 200 OK\r\n")
    assert answered < sent // len(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "never gave up"
    assert timed_get(server) < 2
