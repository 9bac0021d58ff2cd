"""The WSGI application every benchmark run serves (forkhorn and Gunicorn alike).

Routes (BENCHMARKS.md): ``/`` a 14-byte hello with Content-Length; ``/big`` 1 MiB from memory;
``/bigfile`` the same 1 MiB read from a real file through ``wsgi.file_wrapper`` (so servers
that can use ``sendfile`` do); ``/echo`` reads the whole request body and sends it back;
``/sleep`` sleeps 10 ms (``time.sleep``: gevent/eventlet workers monkey-patch it) then answers.

Invariants: every response carries Content-Length, so keep-alive is possible on every route;
the app keeps no per-request state; the only module-level data are immutable constants.
The file behind ``/bigfile`` is created on first use (atomically, any worker may race).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterable
from typing import Any

HELLO = b"Hello, World!\n"
BIG_SIZE = 1024 * 1024
BIG = b"x" * BIG_SIZE
SLEEP_SECONDS = 0.01
FILE_BLOCK = 64 * 1024

StartResponse = Callable[..., Any]
Environ = dict[str, Any]


def _headers(length: int, content_type: str = "text/plain") -> list[tuple[str, str]]:
    return [("Content-Type", content_type), ("Content-Length", str(length))]


def _big_file_path() -> str:
    """Path of the 1 MiB file, written once (tmp name + rename so readers never see half)."""
    path = os.path.join(tempfile.gettempdir(), f"forkhorn-bench-{BIG_SIZE}.bin")
    if os.path.exists(path) and os.path.getsize(path) == BIG_SIZE:
        return path
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path))
    with os.fdopen(fd, "wb") as out:
        out.write(BIG)
    os.replace(tmp, path)
    return path


def _hello(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", _headers(len(HELLO)))
    return [HELLO]


def _big(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", _headers(BIG_SIZE, "application/octet-stream"))
    return [BIG]


def _bigfile(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    # Not a `with`: the server closes it through the wrapper once the body is sent.
    handle = open(_big_file_path(), "rb")  # noqa: SIM115
    start_response("200 OK", _headers(BIG_SIZE, "application/octet-stream"))
    wrapper = environ.get("wsgi.file_wrapper")
    if wrapper is None:
        return iter(lambda: handle.read(FILE_BLOCK), b"")
    return wrapper(handle, FILE_BLOCK)


def _echo(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    body = stream.read(int(length)) if length else stream.read()
    start_response("200 OK", _headers(len(body), "application/octet-stream"))
    return [body]


def _sleep(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    time.sleep(SLEEP_SECONDS)
    return _hello(environ, start_response)


def _not_found(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    body = b"Not Found\n"
    start_response("404 Not Found", _headers(len(body)))
    return [body]


ROUTES: dict[str, Callable[[Environ, StartResponse], Iterable[bytes]]] = {
    "/": _hello,
    "/big": _big,
    "/bigfile": _bigfile,
    "/echo": _echo,
    "/sleep": _sleep,
}


def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """WSGI entry point: ``bench.app:app``."""
    return ROUTES.get(environ.get("PATH_INFO", "/"), _not_found)(environ, start_response)
