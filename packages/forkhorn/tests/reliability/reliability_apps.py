"""The WSGI app the reliability suite serves (imported by the server processes only).

Routes:
- ``/``: ``pid=<worker pid>`` (the load client learns which worker answered);
- ``/sleep?SECONDS``: sleeps, then as ``/``;
- ``/raise``: the app raises before ``start_response``;
- ``/hang``: never returns (a Python loop, so the per-request timeout can interrupt it);
- ``/broken?TOKEN``: an iterable that yields one chunk then raises;
- ``/stream?TOKEN``: 64 MiB in 64 KiB chunks, slowly (the client hangs up mid-response);
- ``/grow?MIB``: allocates MIB mebibytes and keeps them (max_worker_memory);
- ``/rss``: this worker's RSS in bytes.

``close()`` of the ``/broken`` and ``/stream`` iterables appends ``closed TOKEN`` to the
file named by ``$FORKHORN_RELIABILITY_SIDE_FILE``, so the test sees it was called.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

CHUNK = b"x" * 65536
_KEPT: list[bytearray] = []  # /grow: memory this worker keeps on purpose


def _note(line: str) -> None:
    path = os.environ.get("FORKHORN_RELIABILITY_SIDE_FILE")
    if path:
        # O_APPEND: one small write per line, atomic across the workers
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{line}\n".encode())
        finally:
            os.close(fd)


class _Tracked:
    """An iterable whose ``close()`` is recorded in the side file."""

    def __init__(self, token: str, chunks: int, fail_after: int | None, pause: float) -> None:
        self.token = token
        self.chunks = chunks
        self.fail_after = fail_after
        self.pause = pause

    def __iter__(self) -> Iterator[bytes]:
        for number in range(self.chunks):
            if self.fail_after is not None and number >= self.fail_after:
                raise RuntimeError(f"broken iterable {self.token}")
            if self.pause:
                time.sleep(self.pause)
            yield CHUNK

    def close(self) -> None:
        _note(f"closed {self.token}")


def _rss() -> int:
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
    path = environ.get("PATH_INFO", "/")
    query = environ.get("QUERY_STRING", "")
    if path == "/sleep":
        time.sleep(float(query or "0.1"))
    elif path == "/raise":
        raise RuntimeError("the app failed (on purpose)")
    elif path == "/hang":
        while True:
            time.sleep(0.05)
    elif path == "/broken":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _Tracked(query, chunks=10, fail_after=1, pause=0.0)
    elif path == "/stream":
        length = 1024 * len(CHUNK)
        start_response("200 OK", [("Content-Length", str(length))])
        return _Tracked(query, chunks=1024, fail_after=None, pause=0.01)
    elif path == "/grow":
        block = bytearray(b"\x01") * (int(query or "8") * 1024 * 1024)  # filled: resident
        _KEPT.append(block)
    elif path == "/rss":
        body = str(_rss()).encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
    body = f"pid={os.getpid()}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
