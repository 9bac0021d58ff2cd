"""The WSGI apps the worker tests serve (imported by the server's workers, not by pytest).

Routes of ``app``: ``/`` hello; ``/sleep?SECONDS`` sleeps (``time.sleep``: patched, so
cooperative); ``/modules`` tells what this process has loaded and what the environ says;
``/echo`` returns the request body; ``/file?PATH`` sends the file at (URL-quoted) ``PATH``
through ``wsgi.file_wrapper`` (a test app: never serve it to anyone).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote
from wsgiref.validate import validator

HELLO = b"Hello, World!\n"


def _respond(
    start_response: Callable[..., Any], body: bytes, status: str = "200 OK"
) -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path == "/sleep":
        time.sleep(float(environ.get("QUERY_STRING") or "0.2"))
        return _respond(start_response, b"slept\n")
    if path == "/modules":
        info = {
            "pid": os.getpid(),
            "gevent": "gevent" in sys.modules,
            "eventlet": "eventlet" in sys.modules,
            "importlib.metadata": "importlib.metadata" in sys.modules,
            # patched: the socket class is the library's own (imported is not enough)
            "socket": socket.socket.__module__,
            "multithread": environ["wsgi.multithread"],
            "multiprocess": environ["wsgi.multiprocess"],
            "url_scheme": environ["wsgi.url_scheme"],
        }
        return _respond(start_response, json.dumps(info).encode())
    if path == "/echo":
        return _respond(start_response, environ["wsgi.input"].read())
    if path == "/file":
        handle = open(unquote(environ["QUERY_STRING"]), "rb")  # noqa: SIM115 (closed by the server)
        size = os.fstat(handle.fileno()).st_size
        start_response("200 OK", [("Content-Length", str(size))])
        return environ["wsgi.file_wrapper"](handle, 65536)  # type: ignore[no-any-return]
    return _respond(start_response, HELLO)


def _strict(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """PEP 3333 to the letter (wsgiref.validate insists, e.g., on read() with a size)."""
    if environ["PATH_INFO"] == "/echo":
        return _respond(start_response, environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"])))
    return _respond(start_response, HELLO)


#: ``_strict`` behind ``wsgiref.validate``: any breach of PEP 3333 by server or app warns
checked = validator(_strict)


def echo_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Every path: 200 with the request body (read whole, chunked or not)."""
    return _respond(start_response, environ["wsgi.input"].read())
