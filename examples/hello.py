"""A hello-world WSGI app: ``Hello, World!`` on ``/``, 404 elsewhere.

From the repository root: ``forkhorn -w 2 --chdir examples hello:app`` (the README's first
command) or ``forkhorn -w 2 examples.hello:app``. The benchmark serves its own app,
``bench/app.py``, which Gunicorn loads too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

HELLO = b"Hello, World!\n"
NOT_FOUND = b"Not Found\n"


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ.get("PATH_INFO", "/") == "/":
        status, body = "200 OK", HELLO
    else:
        status, body = "404 Not Found", NOT_FOUND
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


application = app
