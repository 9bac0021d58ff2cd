"""The connection handler end to end over a socketpair: framing, keep-alive, errors, close()."""

from __future__ import annotations

import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any
from wsgiref.validate import validator

import pytest
from forkhorn.plugins.hookspec import hookimpl
from forkhorn.plugins.manager import build_plugin_manager
from wsgi_support import RecordingLog, Served, read_reply

App = Callable[..., Any]


def hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    body = f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


class ClosingBody:
    """An app iterable that counts its close() calls."""

    def __init__(self, chunks: list[Any], fail_at: int | None = None) -> None:
        self.chunks = chunks
        self.fail_at = fail_at
        self.closed = 0

    def __iter__(self) -> Iterator[bytes]:
        for index, chunk in enumerate(self.chunks):
            if index == self.fail_at:
                raise RuntimeError("app failed mid-body")
            yield chunk

    def close(self) -> None:
        self.closed += 1


def test_keep_alive_serves_several_requests(serve: Callable[..., Served]) -> None:
    served = serve(hello, keepalive=True)
    stream = served.client.makefile("rb")
    for path in ("/a", "/b", "/c"):
        served.send(f"GET {path} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
        reply = read_reply(stream)
        assert (reply.status, reply.body) == (200, f"GET {path}".encode())
        assert reply.header("connection") is None
    served.client.shutdown(socket.SHUT_WR)
    served.join()
    assert served.worker.nr == 3
    assert served.worker.started == [("GET", "/a"), ("GET", "/b"), ("GET", "/c")]


def test_pipelined_requests_are_answered_in_order(serve: Callable[..., Served]) -> None:
    served = serve(hello, keepalive=True)
    served.send(
        b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"
        b"POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /3 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
    )
    stream = served.client.makefile("rb")
    bodies = [read_reply(stream).body for _ in range(3)]
    assert bodies == [b"GET /1", b"POST /2", b"GET /3"]
    assert stream.read() == b""  # closed after the request that asked for it
    served.join()


def test_without_keepalive_every_response_closes(serve: Callable[..., Served]) -> None:
    served = serve(hello, keepalive=False)
    served.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n")
    stream = served.client.makefile("rb")
    reply = read_reply(stream)
    assert reply.header("connection") == "close"
    assert stream.read() == b""
    served.join()


def test_http10_closes_unless_keep_alive_asked(serve: Callable[..., Served]) -> None:
    served = serve(hello, keepalive=True)
    served.send(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n")
    stream = served.client.makefile("rb")
    assert read_reply(stream).header("connection") == "keep-alive"
    assert read_reply(stream).header("connection") == "close"
    assert stream.read() == b""
    served.join()


def test_100_continue_only_when_the_app_reads(serve: Callable[..., Served]) -> None:
    def echo(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        body = environ["wsgi.input"].read() if environ["PATH_INFO"] == "/read" else b"no"
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    served = serve(echo, keepalive=True)
    served.send(
        b"POST /read HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
    )
    assert served.client.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
    served.send(b"body")
    stream = served.client.makefile("rb")
    assert read_reply(stream).body == b"body"

    # not read: no 100, and the connection closes (the client still holds its body)
    served.send(
        b"POST /skip HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
    )
    reply = read_reply(stream)
    assert reply.status == 200 and reply.body == b"no"
    assert reply.header("connection") == "close"
    served.join()


def test_unread_small_body_is_drained_and_the_connection_kept(
    serve: Callable[..., Served],
) -> None:
    served = serve(hello, keepalive=True)
    served.send(b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nxxxxx")
    served.send(b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n")
    stream = served.client.makefile("rb")
    assert read_reply(stream).body == b"POST /a"
    assert read_reply(stream).body == b"GET /b"
    served.client.shutdown(socket.SHUT_WR)
    served.join()


@pytest.mark.parametrize(
    ("method", "status"),
    [("HEAD", "200 OK"), ("GET", "204 No Content"), ("GET", "304 Not Modified")],
)
def test_no_body_on_the_wire(serve: Callable[..., Served], method: str, status: str) -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response(status, [("Content-Type", "text/plain")])
        return [b"should not be sent"]

    served = serve(app, keepalive=True)
    served.send(
        f"{method} / HTTP/1.1\r\nHost: h\r\n\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n".encode()
    )
    stream = served.client.makefile("rb")
    reply = read_reply(stream, method)
    assert reply.status == int(status[:3])
    # the next response starts right after the head: nothing leaked in between
    assert stream.readline().startswith(b"HTTP/1.1 ")
    served.client.close()


def test_generator_body_is_chunked_and_closed_once(serve: Callable[..., Served]) -> None:
    body = ClosingBody([b"a", b"", b"bc"])

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> ClosingBody:
        start_response("200 OK", [])
        return body

    served = serve(app, keepalive=True)
    served.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    reply = read_reply(served.client.makefile("rb"))
    assert reply.header("transfer-encoding") == "chunked"
    assert reply.body == b"abc"
    served.client.shutdown(socket.SHUT_WR)
    served.join()
    assert body.closed == 1


def test_write_callable(serve: Callable[..., Served]) -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        write = start_response("200 OK", [("Content-Length", "11")])
        write(b"hello ")
        return [b"world"]

    served = serve(app, keepalive=True)
    served.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert read_reply(served.client.makefile("rb")).body == b"hello world"
    served.client.close()


def test_content_length_truncation_closes(serve: Callable[..., Served]) -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Length", "3")])
        return [b"too", b"long"]

    served = serve(app, keepalive=True)
    served.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    stream = served.client.makefile("rb")
    assert read_reply(stream).body == b"too"
    assert stream.read() == b""
    served.join()
    assert "warning" in served.log.levels()


def test_app_exception_before_headers_gives_500(serve: Callable[..., Served]) -> None:
    body = ClosingBody([b"x"], fail_at=0)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> ClosingBody:
        start_response("200 OK", [])
        return body

    served = serve(app, keepalive=True)
    served.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    stream = served.client.makefile("rb")
    reply = read_reply(stream)
    assert reply.status == 500 and reply.header("connection") == "close"
    assert stream.read() == b""
    served.join()
    assert body.closed == 1
    [(_, message)] = [r for r in served.log.records if r[0] == "exception"]
    assert "GET /" in message and "RuntimeError: app failed mid-body" in message


def test_app_exception_after_headers_cuts_the_connection(serve: Callable[..., Served]) -> None:
    body = ClosingBody([b"first", b"second"], fail_at=1)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> ClosingBody:
        start_response("200 OK", [])
        return body

    served = serve(app, keepalive=True)
    served.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    data = served.read_all()
    assert data.startswith(b"HTTP/1.1 200 OK")
    assert b"first" in data and not data.endswith(b"0\r\n\r\n")  # never a clean end
    served.join()
    assert body.closed == 1
    assert "exception" in served.log.levels()


def test_app_raising_before_returning(serve: Callable[..., Served]) -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        raise KeyError("no")

    served = serve(app)
    served.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert read_reply(served.client.makefile("rb")).status == 500
    served.join()


@pytest.mark.parametrize("body", [["text"], [b"a", "b"], ("text",)])
def test_a_str_in_the_body_list_is_named_in_the_error(
    serve: Callable[..., Served], body: Any
) -> None:
    # The commonest WSGI mistake: the log says what was wrong, not what join() found.
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return body

    served = serve(app)
    served.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert read_reply(served.client.makefile("rb")).status == 500
    served.join()
    [(_, message)] = [r for r in served.log.records if r[0] == "exception"]
    assert "TypeError: body chunks must be bytes, got str" in message
    assert "During handling" not in message  # one traceback, not join()'s too


def test_invalid_app_header_gives_500(serve: Callable[..., Served]) -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("X-Split", "a\r\nSet-Cookie: x=1")])
        return [b"body"]

    served = serve(app)
    served.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    reply = read_reply(served.client.makefile("rb"))
    assert reply.status == 500
    assert reply.header("set-cookie") is None
    served.join()


def test_exc_info_error_page(serve: Callable[..., Served]) -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html")])
        try:
            raise ValueError("x")
        except ValueError:
            import sys

            start_response("503 Service Unavailable", [("Retry-After", "1")], sys.exc_info())
        return [b"later"]

    served = serve(app, keepalive=True)
    served.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    reply = read_reply(served.client.makefile("rb"))
    assert (reply.status, reply.header("retry-after"), reply.body) == (503, "1", b"later")
    served.client.close()


def test_client_disconnect_still_closes_the_iterable_once(serve: Callable[..., Served]) -> None:
    produced = threading.Event()

    class Endless(ClosingBody):
        def __iter__(self) -> Iterator[bytes]:
            while True:
                produced.set()
                yield b"x" * 65536

    body = Endless([])

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Endless:
        start_response("200 OK", [])
        return body

    served = serve(app, keepalive=True)
    served.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert produced.wait(5)
    served.client.close()
    served.thread.join(5)
    assert not served.thread.is_alive()
    assert served.error is None
    assert body.closed == 1
    assert "exception" not in served.log.levels()


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: br, chunked\r\n\r\n", 501),
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: h\r\n\r\n", 414),
        (b"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 400),
        (b"G\x00T / HTTP/1.1\r\n\r\n", 400),
    ],
)
def test_parse_errors_answer_their_status_and_close(
    serve: Callable[..., Served], request_bytes: bytes, status: int
) -> None:
    calls: list[int] = []

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        calls.append(1)
        return hello(environ, start_response)

    served = serve(app, keepalive=True)
    served.send(request_bytes)
    data = served.read_all()
    assert data.startswith(b"HTTP/1.1 %d " % status)
    assert b"\r\nConnection: close\r\n" in data
    served.join()
    assert calls == []
    assert served.log.levels() == ["info"]  # once, no traceback
    assert "127.0.0.1:50000" in served.log.records[0][1]


def test_large_body_refused_before_reading(serve: Callable[..., Served]) -> None:
    served = serve(hello, keepalive=True, limit_request_body=10)
    served.send(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n")
    assert served.read_all().startswith(b"HTTP/1.1 413 ")
    served.join()


def test_peer_closing_mid_head_closes_silently(serve: Callable[..., Served]) -> None:
    served = serve(hello, keepalive=True)
    served.send(b"GET / HTTP/1.1\r\nHo")
    served.client.shutdown(socket.SHUT_WR)
    assert served.read_all() == b""
    served.join()
    assert "info" not in served.log.levels() and "exception" not in served.log.levels()


def test_app_reading_a_truncated_body_gets_an_error(serve: Callable[..., Served]) -> None:
    seen: list[BaseException] = []

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        try:
            environ["wsgi.input"].read()
        except OSError as exc:
            seen.append(exc)
            raise
        return []

    served = serve(app, keepalive=True)
    served.send(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nshort")
    served.client.shutdown(socket.SHUT_WR)
    served.read_all()
    served.join()
    assert len(seen) == 1
    assert "exception" not in served.log.levels()  # the client's fault, not the app's


def test_file_wrapper_uses_sendfile(serve: Callable[..., Served], tmp_path: Any) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(bytes(range(256)) * 1000)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](path.open("rb"))

    served = serve(app, keepalive=True)
    served.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\nHEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
    stream = served.client.makefile("rb")
    reply = read_reply(stream)
    assert reply.header("content-length") == "256000"
    assert reply.body == path.read_bytes()
    head = read_reply(stream, "HEAD")
    assert head.header("content-length") == "256000"
    served.client.close()


def test_hooks_and_access_log(serve: Callable[..., Served]) -> None:
    events: list[str] = []

    class Plugin:
        @hookimpl
        def forkhorn_pre_request(self, worker: Any, req: Any) -> None:
            events.append(f"pre {req.path}")

        @hookimpl
        def forkhorn_post_request(self, worker: Any, req: Any, environ: Any, resp: Any) -> None:
            events.append(f"post {resp.status}")

    manager = build_plugin_manager(autoload=False)
    manager.register(Plugin())
    log = RecordingLog(access_enabled=True)

    class AppStub:
        plugin_manager = manager

    served = Served.__new__(Served)
    Served.__init__(served, hello, keepalive=True, log=log, worker_app=AppStub())
    try:
        served.send(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
        read_reply(served.client.makefile("rb"))
        served.client.shutdown(socket.SHUT_WR)
        served.join()
    finally:
        served.client.close()
    assert events == ["pre /x", "post 200 OK"]
    [(environ, status, _, sent, took)] = log.access_records
    assert environ["PATH_INFO"] == "/x" and status == "200 OK" and sent == len(b"GET /x")
    assert took >= 0


def test_validator_wrapped_app_passes_without_warning(serve: Callable[..., Served]) -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        data = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"got " + data

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        served = serve(validator(app), keepalive=True)
        served.send(b"POST /v?q=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi")
        assert read_reply(served.client.makefile("rb")).body == b"got hi"
        served.client.shutdown(socket.SHUT_WR)
        served.join()
    assert "exception" not in served.log.levels()


def test_alive_false_stops_reuse(serve: Callable[..., Served]) -> None:
    served = serve(hello, keepalive=True)
    served.worker.alive = False
    served.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    stream = served.client.makefile("rb")
    assert read_reply(stream).header("connection") == "close"
    start = time.monotonic()
    assert stream.read() == b""
    assert time.monotonic() - start < 2
    served.join()
