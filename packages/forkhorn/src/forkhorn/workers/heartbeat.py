"""The heartbeat board: one fixed-size slot per worker in anonymous shared memory.

Theory of operation
-------------------
The master creates one ``HeartbeatBoard`` before it forks anything: an anonymous
``MAP_SHARED`` mapping, so every worker forked later writes into the very pages the master
reads. A worker owns exactly one slot (given to it before the fork, freed by the master after
the worker is reaped). Writing is a store into that slot: no syscall, no file,
no lock, so ``notify()`` can be called as often as a worker likes.

Invariants
----------
* Only the worker writes ``last_beat``, ``request_start``, ``requests`` and the request
  label of its slot; the master writes ``pid`` and the state on allocation, and the state
  ``DRAIN`` before a full stop.
* The three numbers the master acts on (``last_beat``, ``request_start``, ``requests``) are
  8-byte aligned words written and read through typed ``memoryview`` items: one aligned
  8-byte store or load, never torn (x86-64, arm64). Not ``struct.pack_into``: it zeroes the
  field first and then copies it byte by byte, so a master reading at that instant saw a
  beat of 0.0 and aborted a healthy worker as timed out.
* Times are ``time.monotonic()``: ``CLOCK_MONOTONIC`` is system-wide on Linux and the BSDs,
  so a worker's beat is comparable with the master's clock.
* The capacity is fixed for the life of the master (4096 slots, 512 KiB); a re-exec'd master
  (USR2) builds a new board. Allocation never moves a slot, so a slot's offset is stable.
* One word after the slots is the pool size: the number of workers the master keeps
  (``num_workers``, which TTIN/TTOU and hooks change after a worker started), written by
  the master only; a worker reads it to know whether it has siblings.

The master acts on the beat (timeouts) and the state; ``views()`` snapshots every slot for
diagnosis. The metrics exporter keeps its own counters (``forkhorn.instrument.board``).
"""

from __future__ import annotations

import io
import mmap
import struct
import time
from dataclasses import dataclass

# last_beat, request_start (0.0 = idle), requests served, pid, state, label length, label
_SLOT = struct.Struct("=ddQiBB98s")
SLOT_SIZE = _SLOT.size  # 128 bytes
DEFAULT_CAPACITY = 4096
_LABEL_MAX = 98

# Field offsets, so a hot write touches only its own bytes.
_OFF_PID = 24
_OFF_STATE = 28
_OFF_LABEL_LEN = 29
_OFF_LABEL = 30
# pid, state, label length, label: the bytes after the three numbers (read whole by ``read``)
_TAIL = struct.Struct("=iBB98s")
# ... and the word indexes (in 8-byte units from the slot's start) of the numbers.
_WORD_BEAT = 0
_WORD_REQUEST = 1
_WORD_REQUESTS = 2
_SLOT_WORDS = SLOT_SIZE // 8

# Slot states.
FREE = 0
BOOTING = 1  # forked, loading the app
READY = 2  # app loaded, serving
WANTS_RETIREMENT = 3  # max_requests reached or code changed: replace me, then TERM me
DRAIN = 4  # set by the master before a full stop: serve what the kernel queued, then exit

STATE_NAMES = {
    FREE: "free",
    BOOTING: "booting",
    READY: "ready",
    WANTS_RETIREMENT: "wants-retirement",
    DRAIN: "drain",
}


@dataclass(frozen=True)
class SlotView:
    """A snapshot of one slot, as the master sees it."""

    index: int
    last_beat: float
    request_start: float
    requests: int
    pid: int
    state: int
    request_label: str

    @property
    def in_flight(self) -> bool:
        return self.request_start > 0.0


class WorkerSlot:
    """The part of the board one worker writes. Cheap methods: a store or two each."""

    __slots__ = (
        "_base", "_beat", "_buf", "_counts", "_label_of", "_pool", "_reals", "_requests",
        "_start", "index",
    )  # fmt: skip

    def __init__(
        self, buf: mmap.mmap, reals: memoryview[float], counts: memoryview[int], index: int
    ) -> None:
        self._buf = buf
        self._reals = reals  # the board as doubles
        self._counts = counts  # the board as unsigned 64-bit words
        self.index = index
        self._base = index * SLOT_SIZE
        first = index * _SLOT_WORDS
        self._beat = first + _WORD_BEAT  # item indexes of this slot's numbers
        self._start = first + _WORD_REQUEST
        self._requests = first + _WORD_REQUESTS
        self._pool = len(counts) - 1  # the board's last word (see the module docstring)
        #: (method, path) of the label in the slot: a request like the last one (a client
        #: polling the same URL, a benchmark) does not encode and copy it again
        self._label_of: tuple[str, str] | None = None

    def beat(self) -> None:
        self._reals[self._beat] = time.monotonic()

    def last_beat(self) -> float:
        return self._reals[self._beat]

    def set_state(self, state: int) -> None:
        self._buf[self._base + _OFF_STATE] = state

    @property
    def state(self) -> int:
        return int(self._buf[self._base + _OFF_STATE])

    def request_started(self, method: str, path: str) -> None:
        now = time.monotonic()
        label_of = self._label_of
        if label_of is None or label_of[1] != path or label_of[0] != method:
            self._write_label(method, path)
        reals = self._reals
        reals[self._beat] = now
        reals[self._start] = now

    def _write_label(self, method: str, path: str) -> None:
        label = f"{method} {path}".encode("latin-1", "replace")[:_LABEL_MAX]
        base = self._base
        self._buf[base + _OFF_LABEL : base + _OFF_LABEL + len(label)] = label
        self._buf[base + _OFF_LABEL_LEN] = len(label)
        self._label_of = (method, path)

    def pool_size(self) -> int:
        """How many workers the master keeps now (0 on a board no master published to)."""
        return self._counts[self._pool]

    def request_finished(self, requests_served: int) -> None:
        self._reals[self._start] = 0.0
        self._counts[self._requests] = requests_served

    def read(self) -> SlotView:
        # the numbers through their typed items (never torn), the rest unpacked at once
        pid, state, label_len, label = _TAIL.unpack_from(self._buf, self._base + _OFF_PID)
        return SlotView(
            self.index,
            self._reals[self._beat],
            self._reals[self._start],
            self._counts[self._requests],
            pid,
            state,
            label[:label_len].decode("latin-1"),
        )


class HeartbeatFile:
    """Gunicorn's ``worker.tmp``, for hooks and apps written for Gunicorn.

    Gunicorn's workers show they are alive by touching a temporary file, and code that
    runs long in a worker (a cache warmed in ``post_worker_init``, say) calls
    ``worker.tmp.notify()`` from a thread so that the master does not time the worker out.
    Here the beat is the worker's slot: ``notify()`` is one store into it, safe from any
    thread, and ``last_update()`` is the beat as wall-clock seconds, as Gunicorn gives the
    file's change time. There is no file behind it; ``fileno()`` says so.
    """

    __slots__ = ("_slot",)

    def __init__(self, slot: WorkerSlot | None) -> None:
        self._slot = slot  # None: a worker run without an arbiter (no one is watching)

    def notify(self) -> None:
        if self._slot is not None:
            self._slot.beat()

    def last_update(self) -> float:
        if self._slot is None:
            return time.time()
        return time.time() - (time.monotonic() - self._slot.last_beat())

    def fileno(self) -> int:
        raise io.UnsupportedOperation(
            "forkhorn's worker heartbeat is in shared memory, not in a file"
        )

    def close(self) -> None:
        """Nothing to close."""


class HeartbeatBoard:
    """Fixed-capacity shared slots; allocated in the master before forking."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        # fileno -1: anonymous; MAP_SHARED is the default, so forked children share the pages.
        self._buf = mmap.mmap(-1, capacity * SLOT_SIZE + 8)  # the slots, then the pool size
        self._bytes = memoryview(self._buf)
        self._reals = self._bytes.cast("d")
        self._counts = self._bytes.cast("Q")
        self._free = list(range(capacity - 1, -1, -1))

    def allocate(self, pid: int = 0) -> WorkerSlot:
        """A zeroed slot in state BOOTING, its beat set to now (the boot counts as alive)."""
        if not self._free:
            raise RuntimeError(f"no free heartbeat slot (capacity {self.capacity})")
        index = self._free.pop()
        _SLOT.pack_into(
            self._buf, index * SLOT_SIZE, time.monotonic(), 0.0, 0, pid, BOOTING, 0, b""
        )
        return WorkerSlot(self._buf, self._reals, self._counts, index)

    def set_pool_size(self, workers: int) -> None:
        """Publish how many workers the master keeps (read by ``WorkerSlot.pool_size``)."""
        self._counts[len(self._counts) - 1] = workers

    def set_pid(self, slot: WorkerSlot, pid: int) -> None:
        struct.pack_into("=i", self._buf, slot.index * SLOT_SIZE + _OFF_PID, pid)

    def free(self, slot: WorkerSlot) -> None:
        _SLOT.pack_into(self._buf, slot.index * SLOT_SIZE, 0.0, 0.0, 0, 0, FREE, 0, b"")
        self._free.append(slot.index)

    def views(self) -> list[SlotView]:
        """Every slot in use (for metrics and diagnosis)."""
        used = set(range(self.capacity)) - set(self._free)
        return [self.slot(index).read() for index in sorted(used)]

    def slot(self, index: int) -> WorkerSlot:
        return WorkerSlot(self._buf, self._reals, self._counts, index)

    def close(self) -> None:
        for view in (self._reals, self._counts, self._bytes):
            view.release()  # mmap.close() refuses while a view exports its buffer
        self._buf.close()
