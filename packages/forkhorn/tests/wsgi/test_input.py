"""``wsgi.input``: reads with sizes, lines, iteration, chunked bodies, truncation, 100-continue."""

from __future__ import annotations

import platform
import socket
import threading
import tracemalloc
from collections.abc import Iterator

import pytest
from forkhorn.http.body import ChunkedDecoder
from forkhorn.http.errors import IncompleteBody, LimitRequestBody
from forkhorn.http.parser import ParserLimits
from forkhorn.wsgi.handler import Connection
from forkhorn.wsgi.input import CONTINUE, EmptyInput, InputStream, RequestBodyError
from wsgi_support import make_config


@pytest.fixture
def pair() -> Iterator[tuple[Connection, socket.socket]]:
    server, client = socket.socketpair()
    server.settimeout(5)
    client.settimeout(5)
    yield Connection(server, ("127.0.0.1", 1), ("127.0.0.1", 2)), client
    server.close()
    client.close()


def fixed(conn: Connection, length: int, expect: bool = False) -> InputStream:
    return InputStream(conn, length, None, expect)


def chunked(conn: Connection, **settings: object) -> InputStream:
    limits = ParserLimits.from_config(make_config(**settings))
    return InputStream(conn, None, ChunkedDecoder(limits), False)


def test_read_all_takes_the_buffer_then_the_socket(pair: tuple[Connection, socket.socket]) -> None:
    conn, client = pair
    conn.buf = b"hello "
    client.sendall(b"world, and the next request")
    body = fixed(conn, 11)
    assert body.read() == b"hello world"
    assert body.complete
    assert body.read() == b""
    # bytes past the body are never consumed by it
    assert conn.buf + conn.sock.recv(100) == b", and the next request"


def test_read_with_sizes_never_returns_more(pair: tuple[Connection, socket.socket]) -> None:
    conn, client = pair
    client.sendall(b"0123456789")
    body = fixed(conn, 10)
    assert body.read(3) == b"012"
    assert body.read(0) == b""
    assert body.read(4) == b"3456"
    assert body.read(100) == b"789"
    assert body.read(1) == b""


def test_body_leaves_pipelined_bytes_in_the_buffer(pair: tuple[Connection, socket.socket]) -> None:
    conn, _ = pair
    conn.buf = b"abcGET / HTTP/1.1\r\n"
    body = fixed(conn, 3)
    assert body.read(10) == b"abc"
    assert conn.buf == b"GET / HTTP/1.1\r\n"


def test_large_reads_join_pending_buffer_and_socket_exactly(
    pair: tuple[Connection, socket.socket],
) -> None:
    """The large-read path (one buffer filled by ``recv_into``) returns exact ``bytes``:
    what a small read left pending, the connection's buffer, then the socket."""
    conn, client = pair
    body_bytes = bytes(range(256)) * 4096  # 1 MiB, every offset distinguishable
    conn.buf = body_bytes[:1000]
    body = fixed(conn, len(body_bytes))
    assert body.read(10) == body_bytes[:10]  # leaves 990 buffer bytes pending
    sender = threading.Thread(target=client.sendall, args=(body_bytes[1000:] + b"NEXT",))
    sender.start()
    try:
        rest = body.read(len(body_bytes) - 20)
        assert type(rest) is bytes and rest == body_bytes[10:-10]
        assert body.read() == body_bytes[-10:] and body.complete
    finally:
        sender.join(5)
    assert conn.buf + conn.sock.recv(100) == b"NEXT"


@pytest.mark.skipif(platform.python_implementation() != "CPython", reason="BytesIO sharing")
def test_a_large_body_is_read_into_the_bytes_returned_without_a_copy(
    pair: tuple[Connection, socket.socket],
) -> None:
    """Peak memory of ``read()`` stays near one body: a buffer filled and then copied to
    ``bytes`` would hold two (and fault pages in again per request, see ``_read_fixed``)."""
    conn, client = pair
    size = 4 * 1024 * 1024
    payload = b"x" * size
    body = fixed(conn, size)
    sender = threading.Thread(target=client.sendall, args=(payload,))
    tracemalloc.start()
    try:
        sender.start()
        data = body.read()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        sender.join(5)
    assert data == payload and body.complete
    assert peak < size * 1.5, f"peak {peak} bytes for a {size}-byte body"


def test_readline_readlines_and_iteration(pair: tuple[Connection, socket.socket]) -> None:
    conn, client = pair
    data = b"one\ntwo\nthree\nfour"
    client.sendall(data)
    body = fixed(conn, len(data))
    assert body.readline() == b"one\n"
    assert body.readline(2) == b"tw"
    assert body.readline() == b"o\n"
    assert list(body) == [b"three\n", b"four"]
    assert body.readline() == b""

    conn.buf = b"a\nb\nc\n"
    assert fixed(conn, 6).readlines() == [b"a\n", b"b\n", b"c\n"]
    conn.buf = b"a\nb\nc\n"
    assert fixed(conn, 6).readlines(1) == [b"a\n"]


def test_body_cut_short_raises_never_returns_short(pair: tuple[Connection, socket.socket]) -> None:
    conn, client = pair
    client.sendall(b"only")
    client.shutdown(socket.SHUT_WR)
    body = fixed(conn, 10)
    with pytest.raises(RequestBodyError) as caught:
        body.read()
    assert isinstance(caught.value, OSError)
    assert isinstance(body.error, IncompleteBody)
    with pytest.raises(RequestBodyError):
        body.read(1)  # and it stays broken


def test_readline_on_a_cut_body_raises(pair: tuple[Connection, socket.socket]) -> None:
    conn, client = pair
    client.sendall(b"no newline")
    client.shutdown(socket.SHUT_WR)
    with pytest.raises(RequestBodyError):
        fixed(conn, 100).readline()


def test_chunked_body(pair: tuple[Connection, socket.socket]) -> None:
    conn, client = pair
    client.sendall(b"5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\n\r\nNEXT")
    body = chunked(conn)
    assert body.read(3) == b"hel"
    assert body.readline() == b"lo world"
    assert body.read() == b""
    assert body.complete
    assert conn.buf == b"NEXT"


def test_chunked_body_cut_short(pair: tuple[Connection, socket.socket]) -> None:
    conn, client = pair
    client.sendall(b"5\r\nhel")
    client.shutdown(socket.SHUT_WR)
    body = chunked(conn)
    with pytest.raises(RequestBodyError):
        body.read()
    assert body.error is not None and body.error.status == 400


def test_chunked_body_over_the_limit_keeps_the_413(pair: tuple[Connection, socket.socket]) -> None:
    conn, client = pair
    client.sendall(b"10\r\n" + b"x" * 16 + b"\r\n0\r\n\r\n")
    body = chunked(conn, limit_request_body=8)
    with pytest.raises(RequestBodyError):
        body.read()
    assert isinstance(body.error, LimitRequestBody)
    assert body.error.status == 413


def test_100_continue_sent_on_first_read_only(pair: tuple[Connection, socket.socket]) -> None:
    conn, client = pair
    body = fixed(conn, 4, expect=True)
    assert body.awaiting_continue
    client.sendall(b"data")
    assert body.read(2) == b"da"
    assert client.recv(100) == CONTINUE
    assert body.read() == b"ta"
    client.setblocking(False)
    with pytest.raises(BlockingIOError):
        client.recv(100)  # only once


def test_no_100_continue_when_the_body_is_already_here(
    pair: tuple[Connection, socket.socket],
) -> None:
    conn, client = pair
    conn.buf = b"data"
    body = fixed(conn, 4, expect=True)
    assert body.read() == b"data"
    client.setblocking(False)
    with pytest.raises(BlockingIOError):
        client.recv(100)


def test_drain_within_the_limit(pair: tuple[Connection, socket.socket]) -> None:
    conn, client = pair
    client.sendall(b"x" * 100 + b"NEXT")
    body = fixed(conn, 100)
    assert body.read(10) == b"x" * 10
    assert body.drain(1000)
    assert body.complete
    assert conn.buf + conn.sock.recv(100) == b"NEXT"


def test_drain_refuses_large_bodies_and_waiting_clients(
    pair: tuple[Connection, socket.socket],
) -> None:
    conn, _ = pair
    assert not fixed(conn, 10_000).drain(100)
    assert not fixed(conn, 10, expect=True).drain(100)  # the client waits for 100-continue


def test_empty_input() -> None:
    body = EmptyInput()
    assert body.read() == b"" and body.read(5) == b""
    assert body.readline() == b"" and body.readlines() == []
    assert list(body) == []
    assert body.complete and body.drain(0)
