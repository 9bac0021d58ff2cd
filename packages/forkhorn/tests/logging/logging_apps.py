"""WSGI apps and a logger class the logging tests serve (imported by server processes)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from forkhorn.logging import Logger


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    path = environ.get("PATH_INFO", "/")
    if path == "/print":
        print("printed by the app", flush=True)
        print("to stderr by the app", file=sys.stderr, flush=True)
    body = b"ok\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


class TaggedLogger(Logger):
    """A ``logger_class``: every error-log message gets a tag."""

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        super().info("[tagged] " + msg, *args, **kwargs)
