"""Memory-bounded workers: ``max_worker_memory``, checked between requests.

Theory of operation
-------------------
A worker whose resident set (RSS) has grown past ``max_worker_memory`` asks the master to
replace it, through the same path as ``max_requests``: the slot says WANTS_RETIREMENT, the
master starts a replacement, waits until it is ready, then sends TERM, and the old worker
finishes its in-flight requests. No request fails because a worker was too big.

The RSS is read from ``/proc/self/statm`` (second field, in pages) with one ``pread`` on a
descriptor opened at the first check, in the worker (``/proc/self`` is resolved when the
file is opened, so a descriptor opened in the master would describe the master). A read
costs about a microsecond; it happens after a request, at most once per
``CHECK_INTERVAL`` seconds, so the per-request cost is one clock read.

Invariants
----------
* Limit 0 (off): ``MemoryLimit.from_config`` returns None and the worker pays one
  attribute test per request.
* ``over_limit()`` never raises: without ``/proc`` (not Linux) the check turns itself off
  with one warning.
* A worker already over the limit at its first check (the app alone is bigger than the
  limit) is not recycled: its replacement would be as big, and the master would fork
  forever. That is logged once, as an error naming both figures.
* The limit is soft: memory allocated between two checks is seen at the next one.
"""

from __future__ import annotations

import os
import time
from typing import Any

#: seconds between two RSS reads of one worker (a read happens after a request only)
CHECK_INTERVAL = 1.0
_STATM = "/proc/self/statm"


def format_size(size: int) -> str:
    """``536870912`` -> ``"512.0 MiB"`` (for log lines)."""
    return f"{size / (1024 * 1024):.1f} MiB"


class MemoryLimit:
    """One worker's RSS check. Built in the master, used in the worker after the fork."""

    __slots__ = ("_fd", "_log", "_next_check", "_page_size", "checks", "limit")

    def __init__(self, limit: int, log: Any) -> None:
        self.limit = limit
        self._log = log
        self._fd = -1  # opened at the first check, in the worker
        self._next_check = 0.0  # the first request is followed by a check
        self._page_size = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        #: how many times the RSS was read (for tests and diagnosis)
        self.checks = 0

    @classmethod
    def from_config(cls, cfg: Any, log: Any) -> MemoryLimit | None:
        limit = int(getattr(cfg, "max_worker_memory", 0) or 0)
        return cls(limit, log) if limit > 0 else None

    def rss(self) -> int | None:
        """This process's resident set in bytes, None if it cannot be read."""
        fd = self._fd
        try:
            if fd < 0:
                fd = self._fd = os.open(_STATM, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            fields = os.pread(fd, 128, 0).split()
            return int(fields[1]) * self._page_size
        except (OSError, IndexError, ValueError):
            return None

    def over_limit(self) -> int | None:
        """Called after each request: the RSS when it is time to check and it is over the
        limit, else None."""
        if self.limit <= 0:
            return None
        now = time.monotonic()
        if now < self._next_check:
            return None
        self._next_check = now + CHECK_INTERVAL
        first = self.checks == 0
        self.checks += 1
        rss = self.rss()
        if rss is None:
            self._log.warning("max_worker_memory is ignored: cannot read %s", _STATM)
            self.limit = 0
            return None
        if rss <= self.limit:
            return None
        if first:
            self._log.error(
                "max_worker_memory (%s) is below this worker's RSS after its first request "
                "(%s): a replacement would be as big, so this worker is not recycled for "
                "memory. Raise the limit.",
                format_size(self.limit),
                format_size(rss),
            )
            self.limit = 0
            return None
        return rss

    def close(self) -> None:
        if self._fd >= 0:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = -1
