"""WSGI apps and a logger class the logging tests serve (imported by server processes)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from forkhorn.logging import Logger


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    path = environ.get("PATH_INFO", "/")
    if path == "/print":
        print("printed by the app", flush=True)
        print("to stderr by the app", file=sys.stderr, flush=True)
    if path == "/wsgi-errors":
        environ["wsgi.errors"].write("said on wsgi.errors\n")
        environ["wsgi.errors"].flush()
    if path == "/request-id":
        body = str(environ.get("forkhorn.request_id")).encode()
    elif path == "/slow":
        # cut by the per-request timeout long before; short steps, because a thread can
        # only be interrupted (gthread) when it returns to Python between them
        end = time.monotonic() + 30
        while time.monotonic() < end:
            time.sleep(0.01)
        body = b"too late\n"
    else:
        body = b"ok\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


class TaggedLogger(Logger):
    """A ``logger_class``: every error-log message gets a tag."""

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        super().info("[tagged] " + msg, *args, **kwargs)
