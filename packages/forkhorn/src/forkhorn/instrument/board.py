"""The metrics board: fixed per-worker counters in anonymous shared memory.

Theory of operation
-------------------
Like the heartbeat board, the master maps one anonymous ``MAP_SHARED`` region before it
forks; each worker gets the region of its heartbeat slot index (``board.region(index)``,
zeroed, handed over before the fork) and counts into it with plain ``memoryview`` item
updates: no syscall, no serialisation, five stores per request (started, finished, the
method x status cell, the histogram bucket, the duration sum). The per-request stores are
compiled with every index computed in advance (``record_source``), into the access-log
sink's own function when the access log is on. The master reads every live region at
scrape time and adds the totals of the dead.

Region layout (unsigned 64-bit words; the duration sum is a double in its word):

``STARTED``, ``FINISHED``  requests begun / ended (in flight = STARTED - FINISHED)
``HIST`` .. +``N_BUCKETS``  request-duration histogram, *non*-cumulative bucket counts
                            (bucket i: ``BUCKETS[i-1] < d <= BUCKETS[i]``; the last is +Inf)
``DURATION_SUM``            sum of durations in seconds (double)
``REQUESTS`` .. +M*S        requests by method (``METHODS`` + other) x status
                            (``STATUS_CODES``, then the classes ``1xx``..``5xx``, then other)

Invariants
----------
* A region is written by one worker process only; the master reads it, and zeroes it only
  before the fork (``region``) and after the worker was reaped (``fold``).
* ``fold`` adds a dead worker's counters to the master's totals before the region can be
  reused, so every counter the master exposes is monotonic across worker restarts; the
  in-flight words of a dead worker are dropped (its requests are no longer in flight).
* No update is lost although gthread's threads share a region and ``x[i] += 1`` is a
  read-modify-write: with the GIL, CPython switches threads only at "eval breaker" checks
  (function entry, backward jumps, calls), and the subscript/add/store sequence on a
  ``memoryview`` contains none, so it runs as a unit; greenlets only switch on I/O. A
  free-threaded build (no GIL, 3.13t) gets a per-region lock instead: ``with lock`` costs
  ~0.25 µs per update, which is why it is not taken when the GIL makes it useless.
* 8-byte aligned words: a concurrent read by the master sees an old or a new value,
  never a torn one (x86-64, arm64).
"""

from __future__ import annotations

import mmap
import sys
import threading
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")
METHOD_LABELS = (*METHODS, "other")
STATUS_CODES = (
    100, 101, 200, 201, 202, 204, 206, 301, 302, 303, 304, 307, 308, 400, 401, 403, 404,
    405, 406, 408, 409, 410, 411, 413, 414, 415, 422, 429, 431, 500, 501, 502, 503, 504,
)  # fmt: skip
STATUS_LABELS = (*(str(code) for code in STATUS_CODES), "1xx", "2xx", "3xx", "4xx", "5xx", "other")
#: Prometheus' default buckets, in seconds
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)

N_METHODS = len(METHOD_LABELS)
N_STATUSES = len(STATUS_LABELS)
N_BUCKETS = len(BUCKETS) + 1  # + Inf
STARTED = 0
FINISHED = 1
HIST = 2
DURATION_SUM = HIST + N_BUCKETS
REQUESTS = DURATION_SUM + 1
REGION_WORDS = REQUESTS + N_METHODS * N_STATUSES
REGION_BYTES = REGION_WORDS * 8
DEFAULT_CAPACITY = 4096  # the heartbeat board's; untouched pages cost no memory


def _status_index() -> dict[str, int]:
    table: dict[str, int] = {}
    for code in range(100, 600):
        table[str(code)] = len(STATUS_CODES) + code // 100 - 1  # the class
    for index, code in enumerate(STATUS_CODES):
        table[str(code)] = index
    return table


def _gil_enabled() -> bool:
    check = getattr(sys, "_is_gil_enabled", None)
    return True if check is None else bool(check())


class WorkerMetrics:
    """One worker's region: ``begin()``/``end()`` around a request, ``record()`` after it."""

    __slots__ = (
        "_base", "_columns", "_doubles", "_finished", "_record", "_started", "_statuses",
        "index", "words",
    )  # fmt: skip

    def __init__(
        self,
        words: memoryview,
        doubles: Any,  # memoryview cast to "d"
        index: int,
        statuses: dict[str, int] | None = None,
    ) -> None:
        self.words = words
        self._doubles = doubles
        self.index = index
        self._base = index * REGION_WORDS
        self._started = self._base + STARTED
        self._finished = self._base + FINISHED
        self._statuses = statuses if statuses is not None else _status_index()
        #: status line ("200 OK") -> its column, filled as status lines are met
        self._columns: dict[str, int] = {}
        self._record: Callable[..., None] | None = None  # sink(), compiled on first record()

    def begin(self) -> None:
        self.words[self._started] += 1

    def end(self) -> None:
        self.words[self._finished] += 1

    def record(self, method: str, status: str, seconds: float) -> None:
        """One finished request (off the hot path: the handler runs ``sink()``'s function)."""
        if self._record is None:
            self._record = self.sink()
        self._record({"REQUEST_METHOD": method}, status, (), 0, seconds)

    def sink(self) -> Callable[..., None]:
        """The access sink ``(environ, status, headers, sent, took)``: the request counted by
        method and status and its duration (one frame per request)."""
        statements, namespace = self.record_source()
        source = "\n".join(["def record(environ, status, headers, sent, took):", *statements])
        exec(source + "\n", namespace)  # fixed templates only
        return namespace["record"]  # type: ignore[no-any-return]

    def record_source(self) -> tuple[list[str], dict[str, Any]]:
        """What ``sink()``'s function does, as statements (indented for a function body) and
        the namespace they need, so that the access-log sink can compile them into its own
        per-request function. They read ``environ``, ``status`` and ``took``, assign only
        names starting with ``_m_``, and the namespace holds only such names.

        Three stores into the region: the (method, status) cell, the duration's histogram
        bucket (most requests fall in the first: one comparison, no bisect) and the
        duration sum. Every index is an absolute word index computed in advance; the
        status line ("200 OK", a constant of the app) is looked up whole, no slicing."""
        base = self._base
        rows = {name: base + REQUESTS + i * N_STATUSES for i, name in enumerate(METHODS)}
        namespace: dict[str, Any] = {
            "_m_words": self.words,
            "_m_doubles": self._doubles,
            "_m_rows": rows.get,
            "_m_other_row": base + REQUESTS + (N_METHODS - 1) * N_STATUSES,
            "_m_columns": self._columns.get,
            "_m_column_of": self._column_of,
            "_m_bucket0": base + HIST,
            "_m_first_bound": BUCKETS[0],
            "_m_bisect": bisect_left,
            "_m_bounds": BUCKETS,
            "_m_sum": base + DURATION_SUM,
        }
        statements = [
            "    _m_column = _m_columns(status)",
            "    if _m_column is None:",
            "        _m_column = _m_column_of(status)",
            '    _m_words[_m_rows(environ.get("REQUEST_METHOD"), _m_other_row) + _m_column] += 1',
            "    if took <= _m_first_bound:",
            "        _m_words[_m_bucket0] += 1",
            "    else:",
            "        _m_words[_m_bucket0 + _m_bisect(_m_bounds, took)] += 1",
            "    _m_doubles[_m_sum] += took",
        ]
        return statements, namespace

    def _column_of(self, status: str) -> int:
        """The column of a status line not met yet; remembered (a bounded table: an app
        inventing status lines cannot grow it without end)."""
        column = self._statuses.get(str(status)[:3], N_STATUSES - 1)
        if len(self._columns) < 256:
            self._columns[status] = column
        return column


class LockedWorkerMetrics(WorkerMetrics):
    """``WorkerMetrics`` for a free-threaded interpreter (see the module invariants)."""

    __slots__ = ("_lock",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()

    def begin(self) -> None:
        with self._lock:
            super().begin()

    def end(self) -> None:
        with self._lock:
            super().end()

    def record_source(self) -> tuple[list[str], dict[str, Any]]:
        statements, namespace = super().record_source()
        namespace["_m_lock"] = self._lock
        return ["    with _m_lock:", *("    " + line for line in statements)], namespace


@dataclass
class Totals:
    """Counters summed over workers: ``words`` as in a region, ``duration_sum`` apart."""

    words: list[int]
    duration_sum: float = 0.0

    @property
    def in_flight(self) -> int:
        return max(0, self.words[STARTED] - self.words[FINISHED])

    def requests(self) -> list[tuple[str, str, int]]:
        """Non-zero (method, status, count) cells."""
        found = []
        for row, method in enumerate(METHOD_LABELS):
            start = REQUESTS + row * N_STATUSES
            for column, status in enumerate(STATUS_LABELS):
                count = self.words[start + column]
                if count:
                    found.append((method, status, count))
        return found

    def buckets(self) -> list[int]:
        return self.words[HIST : HIST + N_BUCKETS]


class MetricsBoard:
    """Master side: hands out regions, folds dead workers, sums for a scrape."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._buf = mmap.mmap(-1, capacity * REGION_BYTES)
        self.words = memoryview(self._buf).cast("Q")
        self._doubles: Any = memoryview(self._buf).cast("d")
        self._dead = Totals([0] * REGION_WORDS)
        self._statuses = _status_index()

    def region(self, index: int) -> WorkerMetrics | None:
        """A zeroed region for the worker of heartbeat slot ``index`` (None past capacity)."""
        if not 0 <= index < self.capacity:
            return None
        self._zero(index)
        kind = WorkerMetrics if _gil_enabled() else LockedWorkerMetrics
        return kind(self.words, self._doubles, index, self._statuses)

    def _zero(self, index: int) -> None:
        start = index * REGION_BYTES
        self._buf[start : start + REGION_BYTES] = bytes(REGION_BYTES)

    def _read(self, index: int) -> tuple[list[int], float]:
        base = index * REGION_WORDS
        return self.words[base : base + REGION_WORDS].tolist(), self._doubles[base + DURATION_SUM]

    def fold(self, index: int) -> None:
        """Add the reaped worker's counters to the dead workers' totals; zero the region."""
        if not 0 <= index < self.capacity:
            return
        words, duration = self._read(index)
        dead = self._dead.words
        for i in range(HIST, REGION_WORDS):
            if i != DURATION_SUM:
                dead[i] += words[i]
        self._dead.duration_sum += duration
        self._zero(index)

    def totals(self, live: list[int]) -> Totals:
        """Dead workers' totals plus the regions of the ``live`` slot indexes."""
        words = list(self._dead.words)
        duration = self._dead.duration_sum
        for index in live:
            if not 0 <= index < self.capacity:
                continue
            region, region_duration = self._read(index)
            for i, value in enumerate(region):
                if i != DURATION_SUM:
                    words[i] += value
            duration += region_duration
        return Totals(words, duration)

    def close(self) -> None:
        self.words.release()
        self._doubles.release()
        self._buf.close()
