"""start_response validation, framing choices and the bytes the serializer writes."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from typing import Any

import pytest
from forkhorn.http.errors import error_response
from forkhorn.http.request import Request
from forkhorn.wsgi.input import EmptyInput
from forkhorn.wsgi.response import (
    ClientDisconnected,
    FileWrapper,
    InvalidResponse,
    Response,
    ResponseContext,
)
from wsgi_support import RecordingLog


class CaptureSocket:
    def __init__(self, fail: bool = False) -> None:
        self.sends: list[bytes] = []
        self.fail = fail

    def sendall(self, data: bytes, flags: int = 0) -> None:
        if self.fail:
            raise BrokenPipeError("peer gone")
        self.sends.append(bytes(data))

    def send(self, data: bytes, flags: int = 0) -> int:
        self.sendall(data)
        return len(data)

    def sendmsg(self, parts: list[bytes], ancillary: Any = (), flags: int = 0) -> int:
        self.sendall(b"".join(parts))
        return sum(len(p) for p in parts)

    def gettimeout(self) -> float | None:
        return None

    def settimeout(self, timeout: float | None) -> None:
        pass

    @property
    def data(self) -> bytes:
        return b"".join(self.sends)


def make(
    method: str = "GET", version: tuple[int, int] = (1, 1), keep_alive: bool = True, **kw: Any
) -> tuple[Response, CaptureSocket, RecordingLog]:
    log = RecordingLog()
    sock = CaptureSocket(**kw)
    req = Request(method, "/p", "/p", "", version, [])
    return Response(ResponseContext(log, tls=False), sock, req, keep_alive, EmptyInput()), sock, log


def head_and_body(data: bytes) -> tuple[list[bytes], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n"), body


@pytest.mark.parametrize(
    "status", ["200", "2000 OK", "20 OK", "abc OK", "200 OK\r\nX: y", "200\tOK", b"200 OK", 200]
)
def test_invalid_status_is_refused(status: Any) -> None:
    resp, _, _ = make()
    with pytest.raises(InvalidResponse):
        resp.start_response(status, [])


@pytest.mark.parametrize(
    "header",
    [
        ("X-Bad\r\nInjected", "v"),
        ("X Space", "v"),
        ("", "v"),
        ("X-Ok", "a\r\nSet-Cookie: evil"),
        ("X-Ok", "nul\x00"),
        ("X-Ok", "\u20ac"),
        (b"X-Bytes", "v"),
        ("X-Ok", b"bytes"),
        ("Content-Length", "12a"),
    ],
)
def test_invalid_headers_are_refused(header: Any) -> None:
    resp, _, _ = make()
    with pytest.raises((InvalidResponse, TypeError)):
        resp.start_response("200 OK", [header])


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Transfer-Encoding", "chunked"),
        ("Keep-Alive", "timeout=5"),
        ("Upgrade", "h2c"),
        ("TE", "trailers"),
        ("Trailer", "X-Sum"),
        ("Proxy-Authenticate", "Basic"),
        ("Connection", "Upgrade"),
    ],
)
def test_hop_by_hop_headers_are_dropped_with_one_warning(name: str, value: str) -> None:
    # as Gunicorn does: an app (a proxy copying upstream headers, say) keeps working, and
    # the response is framed by the server alone
    log = RecordingLog()
    ctx = ResponseContext(log, tls=False)
    for _ in range(2):  # two responses of one worker: one warning
        sock = CaptureSocket()
        req = Request("GET", "/p", "/p", "", (1, 1), [])
        resp = Response(ctx, sock, req, True, EmptyInput())
        resp.start_response("200 OK", [(name, value), ("X-Kept", "1")])
        resp.send_whole(b"abc")
        lines, body = head_and_body(sock.data)
        assert lines[0] == b"HTTP/1.1 200 OK" and body == b"abc"
        assert b"X-Kept: 1" in lines and b"Content-Length: 3" in lines
        assert not [line for line in lines if line.lower().startswith(name.lower().encode())]
        assert resp.keep_alive
    assert log.records == [
        (
            "warning",
            f"The app set the hop-by-hop header {name!r} ({value!r}); it is dropped: the "
            "server frames the response and owns the connection (PEP 3333). Logged once "
            "per worker.",
        )
    ]


def test_connection_close_from_the_app_closes() -> None:
    resp, sock, _ = make()
    resp.start_response("200 OK", [("Connection", "close")])
    resp.send_whole(b"x")
    lines, _ = head_and_body(sock.data)
    assert b"Connection: close" in lines
    assert not resp.keep_alive


def test_obs_text_and_tab_in_values_are_allowed() -> None:
    resp, sock, _ = make()
    resp.start_response("200 OK", [("X-Latin", "caf\xe9\tok  ")])
    resp.send_whole(b"")
    assert b"X-Latin: caf\xe9\tok" in sock.data


def test_head_and_first_chunk_leave_in_one_send() -> None:
    resp, sock, _ = make()
    resp.start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    resp.write(b"hello")
    resp.finish()
    assert len(sock.sends) == 1
    lines, body = head_and_body(sock.sends[0])
    assert lines[0] == b"HTTP/1.1 200 OK"
    assert b"Server: forkhorn" in lines
    assert any(line.startswith(b"Date: ") and line.endswith(b" GMT") for line in lines)
    assert b"Content-Length: 5" in lines
    assert not any(line.startswith(b"Connection") for line in lines)  # 1.1 keep-alive
    assert body == b"hello"


def test_nothing_is_sent_before_the_first_non_empty_chunk() -> None:
    resp, sock, _ = make()
    resp.start_response("200 OK", [])
    resp.write(b"")
    assert sock.sends == []


def test_chunked_on_http11_without_length() -> None:
    resp, sock, _ = make()
    resp.start_response("200 OK", [])
    resp.write(b"abc")
    resp.write(b"")
    resp.write(b"defgh")
    resp.finish()
    lines, body = head_and_body(sock.data)
    assert b"Transfer-Encoding: chunked" in lines
    assert body == b"3\r\nabc\r\n5\r\ndefgh\r\n0\r\n\r\n"
    assert resp.keep_alive


def test_close_delimited_on_http10_without_length() -> None:
    resp, sock, _ = make(version=(1, 0))
    resp.start_response("200 OK", [])
    resp.write(b"abc")
    resp.finish()
    lines, body = head_and_body(sock.data)
    assert lines[0] == b"HTTP/1.0 200 OK"
    assert b"Connection: close" in lines
    assert body == b"abc"
    assert not resp.keep_alive


def test_http10_keep_alive_is_announced() -> None:
    resp, sock, _ = make(version=(1, 0))
    resp.start_response("200 OK", [("Content-Length", "1")])
    resp.write(b"x")
    assert b"Connection: keep-alive" in head_and_body(sock.data)[0]


def test_whole_body_gets_a_content_length() -> None:
    resp, sock, _ = make()
    resp.start_response("200 OK", [])
    resp.send_whole(b"hello")
    lines, body = head_and_body(sock.data)
    assert b"Content-Length: 5" in lines and body == b"hello"
    assert b"Transfer-Encoding: chunked" not in lines


def test_empty_body_gets_content_length_zero() -> None:
    resp, sock, _ = make()
    resp.start_response("200 OK", [])
    resp.finish()
    assert b"Content-Length: 0" in head_and_body(sock.data)[0]


def test_more_than_content_length_is_cut_and_closes() -> None:
    resp, sock, log = make()
    resp.start_response("200 OK", [("Content-Length", "4")])
    resp.write(b"abc")
    resp.write(b"defg")
    resp.write(b"hij")
    resp.finish()
    assert head_and_body(sock.data)[1] == b"abcd"
    assert not resp.keep_alive
    assert log.levels().count("warning") == 1


def test_less_than_content_length_closes() -> None:
    resp, _, log = make()
    resp.start_response("200 OK", [("Content-Length", "10")])
    resp.write(b"abc")
    resp.finish()
    assert not resp.keep_alive
    assert "warning" in log.levels()


@pytest.mark.parametrize(
    ("method", "status", "keeps_length"),
    [("HEAD", "200 OK", True), ("GET", "204 No Content", False), ("GET", "304 Not Modified", True),
     ("GET", "103 Early Hints", False)],
)  # fmt: skip
def test_no_body_for_head_204_304_1xx(method: str, status: str, keeps_length: bool) -> None:
    resp, sock, _ = make(method=method)
    resp.start_response(status, [("Content-Length", "5")])
    resp.write(b"hello")
    resp.finish()
    lines, body = head_and_body(sock.data)
    assert body == b""
    assert (b"Content-Length: 5" in lines) is keeps_length
    assert b"Transfer-Encoding: chunked" not in lines
    assert resp.keep_alive


def test_head_without_length_is_neither_chunked_nor_closed() -> None:
    resp, sock, _ = make(method="HEAD")
    resp.start_response("200 OK", [])
    resp.send_whole(b"")
    lines, _ = head_and_body(sock.data)
    assert not any(line.startswith((b"Content-Length", b"Transfer-Encoding")) for line in lines)
    assert resp.keep_alive


def test_app_server_and_date_replace_ours() -> None:
    resp, sock, _ = make()
    resp.start_response("200 OK", [("Server", "mine"), ("Date", "Thu, 01 Jan 1970 00:00:00 GMT")])
    resp.send_whole(b"")
    lines, _ = head_and_body(sock.data)
    assert [line for line in lines if line.startswith(b"Server")] == [b"Server: mine"]
    assert len([line for line in lines if line.startswith(b"Date")]) == 1


def test_second_start_response_needs_exc_info() -> None:
    resp, _, _ = make()
    resp.start_response("200 OK", [])
    with pytest.raises(AssertionError):
        resp.start_response("500 Oops", [])


def test_exc_info_replaces_headers_not_sent_yet() -> None:
    resp, sock, _ = make()
    resp.start_response("200 OK", [("X-A", "1")])
    try:
        raise ValueError("boom")
    except ValueError:
        resp.start_response("500 Internal Server Error", [("X-B", "2")], sys.exc_info())
    resp.send_whole(b"err")
    lines, _ = head_and_body(sock.data)
    assert lines[0] == b"HTTP/1.1 500 Internal Server Error"
    assert b"X-B: 2" in lines and b"X-A: 1" not in lines


def test_exc_info_reraises_once_headers_are_sent() -> None:
    resp, _, _ = make()
    resp.start_response("200 OK", [])
    resp.write(b"partial")
    try:
        raise KeyError("original")
    except KeyError:
        info = sys.exc_info()
    with pytest.raises(KeyError, match="original"):
        resp.start_response("500 Internal Server Error", [], info)


def test_write_refuses_str() -> None:
    resp, _, _ = make()
    resp.start_response("200 OK", [])
    with pytest.raises(TypeError):
        resp.write("text")  # type: ignore[arg-type]


def test_write_before_start_response() -> None:
    resp, _, _ = make()
    with pytest.raises(AssertionError):
        resp.write(b"x")


def test_send_failure_is_client_disconnected() -> None:
    resp, _, _ = make(fail=True)
    resp.start_response("200 OK", [])
    with pytest.raises(ClientDisconnected):
        resp.write(b"x")
    assert resp.headers_sent and not resp.keep_alive


def test_large_body_goes_without_joining() -> None:
    resp, sock, _ = make()
    body = b"x" * (1 << 20)
    resp.start_response("200 OK", [("Content-Length", str(len(body)))])
    resp.write(body)
    assert head_and_body(sock.data)[1] == body


def test_file_wrapper_iterates_blocks(tmp_path: Any) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"abcdefghij")
    with path.open("rb") as handle:
        wrapper = FileWrapper(handle, 4)
        assert list(wrapper) == [b"abcd", b"efgh", b"ij"]
        wrapper.close()
        assert handle.closed


def test_error_response_is_complete_and_closes() -> None:
    ctx = ResponseContext(RecordingLog(), tls=False)
    data = error_response(431, headers=ctx.server_header + ctx.date_header())
    assert data is not None
    lines, body = head_and_body(data)
    assert lines[0] == b"HTTP/1.1 431 Request Header Fields Too Large"
    assert b"Server: forkhorn" in lines
    assert any(line.startswith(b"Date: ") for line in lines)
    assert b"Connection: close" in lines
    assert b"Content-Length: %d" % len(body) in lines


# -- file bodies over real sockets (sync and gthread: the stdlib socket class) --------------


def _socket_pair(server_sndbuf: int) -> tuple[socket.socket, socket.socket]:
    """(server side, client side) of a loopback TCP connection; the client reads nothing
    until told, through a small receive buffer."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
        client.connect(listener.getsockname())
        server, _ = listener.accept()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, server_sndbuf)
    return server, client


def _random_file(tmp_path: Any, size: int) -> Any:
    path = tmp_path / "f.bin"
    path.write_bytes(os.urandom(size))
    return path


def _file_response(server: socket.socket, write_timeout: float) -> Response:
    ctx = ResponseContext(RecordingLog(), tls=False, write_timeout=write_timeout)
    req = Request("GET", "/f", "/f", "", (1, 1), [])
    resp = Response(ctx, server, req, True, EmptyInput())
    resp.start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return resp


def _read_body(client: socket.socket, size: int) -> bytes:
    stream = client.makefile("rb")
    while stream.readline() != b"\r\n":
        pass
    return stream.read(size)


def test_a_file_that_fits_in_the_socket_buffer_does_not_wait_for_the_client(
    tmp_path: Any,
) -> None:
    # socket.sendfile polls once more after the last block: with the send buffer mostly
    # full, that poll waits until the client reads (here: never, so until write_timeout)
    server, client = _socket_pair(server_sndbuf=1 << 20)
    with server, client:
        size = server.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) * 3 // 4
        path = _random_file(tmp_path, size)
        resp = _file_response(server, write_timeout=3.0)
        with path.open("rb") as handle:
            started = time.monotonic()
            assert resp.send_file(FileWrapper(handle))
            assert time.monotonic() - started < 1.0
            assert handle.tell() == size  # left after the bytes sent, as socket.sendfile does
        assert _read_body(client, size) == path.read_bytes()


def test_a_file_larger_than_the_buffers_waits_for_a_slow_reader(tmp_path: Any) -> None:
    server, client = _socket_pair(server_sndbuf=1 << 16)
    with server, client:
        path = _random_file(tmp_path, 4 << 20)
        resp = _file_response(server, write_timeout=5.0)
        received: list[bytes] = []

        def read_slowly() -> None:
            time.sleep(0.2)  # the sender meets a full buffer first
            received.append(_read_body(client, 4 << 20))

        reader = threading.Thread(target=read_slowly)
        reader.start()
        with path.open("rb") as handle:
            assert resp.send_file(FileWrapper(handle))
        reader.join(10)
        assert received == [path.read_bytes()]


def test_a_client_that_stops_reading_a_file_is_dropped_after_write_timeout(
    tmp_path: Any,
) -> None:
    server, client = _socket_pair(server_sndbuf=1 << 16)
    with server, client:
        path = _random_file(tmp_path, 8 << 20)
        resp = _file_response(server, write_timeout=0.5)
        with path.open("rb") as handle:
            started = time.monotonic()
            with pytest.raises(ClientDisconnected, match="write_timeout"):
                resp.send_file(FileWrapper(handle))
        assert 0.4 < time.monotonic() - started < 3.0
        assert server.gettimeout() is None  # the socket's own timeout is back
