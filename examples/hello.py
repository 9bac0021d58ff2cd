"""The benchmark app (BENCHMARKS.md): ``forkhorn -w 2 examples.hello:app`` or, from this
directory, ``forkhorn hello:app``.

- ``/``      ``Hello, World!\\n`` with Content-Length
- ``/big``   1 MiB of bytes, one prebuilt body
- ``/echo``  reads the whole request body and returns it
- ``/sleep`` sleeps 10 ms, then answers like ``/`` (under gevent/eventlet the sleep is green)

Everything is prebuilt at import so the app costs as little as possible per request: the
benchmarks measure the server, not this file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

HELLO = b"Hello, World!\n"
BIG = b"x" * (1024 * 1024)
TEXT_HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO)))]
BIG_HEADERS = [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(BIG)))]
NOT_FOUND = b"Not Found\n"

StartResponse = Callable[..., Any]


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "/")
    if path == "/":
        start_response("200 OK", TEXT_HEADERS)
        return [HELLO]
    if path == "/big":
        start_response("200 OK", BIG_HEADERS)
        return [BIG]
    if path == "/echo":
        body = read_body(environ)
        start_response(
            "200 OK",
            [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(body)))],
        )
        return [body]
    if path == "/sleep":
        time.sleep(0.01)
        start_response("200 OK", TEXT_HEADERS)
        return [HELLO]
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "10")])
    return [NOT_FOUND]


def read_body(environ: dict[str, Any]) -> bytes:
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    if length:
        return stream.read(int(length))  # type: ignore[no-any-return]
    # chunked: read to the end of the body
    return b"".join(iter(lambda: stream.read(65536), b""))


application = app
