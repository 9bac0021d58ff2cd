"""WSGI apps the arbiter tests serve (imported by the server processes via PYTHONPATH)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    path = environ.get("PATH_INFO", "/")
    if path == "/sleep":
        time.sleep(float(environ.get("QUERY_STRING") or "0.1"))
    elif path == "/hang":
        # Hang like an app stuck in C code: no timer signal can interrupt it.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        hang_forever()
    if path == "/ids":
        # JSON by hand: this module is imported after the worker dropped privileges, and a
        # stdlib module the master did not import (json) may not be readable then (a
        # Python installed under /root, as on the CI machines)
        groups = ", ".join(str(group) for group in sorted(os.getgroups()))
        body = (f'{{"pid": {os.getpid()}, "uid": {os.getuid()}, "gid": {os.getgid()}, '
                f'"groups": [{groups}]}}\n').encode()  # fmt: skip
    else:
        body = f"pid={os.getpid()}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def hang_forever() -> None:
    while True:
        time.sleep(60)
