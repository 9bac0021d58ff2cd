"""Log timestamps, formatted once per second instead of once per line, and the pid.

``strftime`` and ``datetime`` cost a microsecond or more per call; an access log writes a
line per request, and every line of one second shares the same date text. A ``LogClock``
keeps the text of the current second and rebuilds it only when the second changes.

The clock also carries the pid stamped on lines: ``os.getpid()`` is a syscall (~0.1 µs)
and a logger is built in the master before the fork, so ``Logger.after_fork`` refreshes it.

Invariants: the cache is per instance (no module state); concurrent threads may both
rebuild the text of a new second, which is harmless (they compute the same string);
times are wall-clock (``time.time()``) in the local timezone, as Gunicorn's ``%(t)s``.
"""

from __future__ import annotations

import os
import time
from typing import Any


class LogClock:
    """``clf()`` -> ``[10/Oct/2000:13:55:36 +0000]``; ``iso()`` -> ISO 8601 with ms.

    ``clf_cache`` is ``[end of the cached second, its text]``, so generated formatters can
    test ``time.time() < cache[0]`` inline and call ``clf()`` only once a second.
    """

    __slots__ = ("_iso", "_iso_second", "clf_cache", "pid")

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.clf_cache: list[Any] = [0.0, ""]
        self._iso_second = -1
        self._iso = ("", "")

    def clf(self) -> str:
        """The Common Log Format date of now (Gunicorn's ``%(t)s``)."""
        now = time.time()
        cache = self.clf_cache
        if now >= cache[0]:
            second = int(now)
            # text first, then the boundary: a reader that sees the new boundary sees the
            # new text (the list is shared with generated formatters, so it is updated in
            # place)
            cache[1] = time.strftime("[%d/%b/%Y:%H:%M:%S %z]", time.localtime(second))
            cache[0] = second + 1.0
        return str(cache[1])

    def iso(self, now: float | None = None) -> str:
        """ISO 8601 local time with milliseconds and offset: ``2024-05-01T12:34:56.789+02:00``."""
        if now is None:
            now = time.time()
        second = int(now)
        if second != self._iso_second:
            parts = time.localtime(second)
            offset = time.strftime("%z", parts)
            self._iso = (time.strftime("%Y-%m-%dT%H:%M:%S", parts), f"{offset[:3]}:{offset[3:]}")
            self._iso_second = second
        head, zone = self._iso
        return f"{head}.{int((now - second) * 1000):03d}{zone}"
