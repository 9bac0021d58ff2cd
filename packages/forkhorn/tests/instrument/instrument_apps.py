"""WSGI apps the metrics tests serve (imported by the server processes via PYTHONPATH)."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from typing import Any


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    path = environ.get("PATH_INFO", "/")
    status = "200 OK"
    if path == "/sleep":
        time.sleep(float(environ.get("QUERY_STRING") or "0.1"))
    elif path == "/missing":
        status = "404 Not Found"
    elif path == "/hang":
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})  # stuck like C code
        while True:
            time.sleep(60)
    body = b"ok\n"
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
