"""``LineWriter``: access-log lines straight into a buffered file, no ``logging`` machinery.

Theory of operation
-------------------
The stdlib ``logging`` path costs ~6 µs per line (record object, handler lock, a ``write``
and a ``flush`` syscall per line), more than formatting the line. A ``LineWriter`` appends
the encoded line to a 64 KiB ``BufferedWriter`` (a C object with its own lock, so gthread's
threads can share it) and the buffer goes to the kernel in one ``write`` when it fills up,
or when ``flush_if_due`` finds it older than ``FLUSH_INTERVAL`` (the worker calls it from
``notify()``, at least every second even when idle), on ``reopen`` (USR1) and on exit.
A terminal (``-`` on a tty) is line-buffered so a developer sees each request at once.

Invariants
----------
* Lines are never split across two ``write`` calls as long as they are shorter than the
  buffer, and files are opened ``O_APPEND``: master and workers can share a file.
* ``reopen()`` opens the new file before it retires the old one, so a rotation (rename +
  USR1) loses no line: each line is in the old file or in the new one. The old file is
  flushed at once but closed only ``RETIRE_AFTER`` seconds later: a gthread thread that
  took the old object just before the swap may still write into it, and
  ``BufferedWriter.close()`` is not atomic (it releases its lock between the flush and
  the close, so such a write would be dropped). A write that meets a closed file anyway
  is retried on the current one.
* USR1 arriving while this very thread is inside the old file's ``write`` (a reentrant
  call) cannot flush it: it is flushed and closed later, in the same way.
* A failing write (disk full, closed pipe) never raises into a request.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any, BinaryIO

BUFFER_SIZE = 65536
FLUSH_INTERVAL = 1.0
RETIRE_AFTER = 2.0


class LineWriter:
    """Writes lines to ``target``: a path, or ``-`` for stdout (``stream`` overrides)."""

    def __init__(self, target: str, stream: BinaryIO | None = None) -> None:
        self.target = target
        self._stream = stream
        self._retired: list[tuple[float, BinaryIO]] = []  # (close after, file)
        self._next_flush = 0.0
        self.line_buffered = False
        self.file: BinaryIO = self._open()

    def _open(self) -> BinaryIO:
        if self.target == "-" or self._stream is not None:
            stream = self._stream
            if stream is None:
                stream = sys.stdout.buffer if hasattr(sys.stdout, "buffer") else None
            fileno = stream.fileno() if stream is not None else 1
            self.line_buffered = os.isatty(fileno)
            # our own buffer on the same fd; closefd=False: stdout stays open
            return open(fileno, "ab", buffering=BUFFER_SIZE, closefd=False)
        return open(self.target, "ab", buffering=BUFFER_SIZE)

    @property
    def is_file(self) -> bool:
        return self.target != "-" and self._stream is None

    def write(self, line: str) -> None:
        self.write_bytes((line + "\n").encode("utf-8", "backslashreplace"))

    def write_bytes(self, data: bytes) -> None:
        try:
            self.file.write(data)
        except ValueError:  # closed by a concurrent reopen: the new file takes it
            try:
                self.file.write(data)
            except (OSError, ValueError):
                return
        except OSError:
            return
        if self.line_buffered:
            self.flush()

    def sink(
        self, format_bytes: Callable[..., bytes], then: Callable[..., Any] | None = None
    ) -> Callable[..., None]:
        """An access-log sink: ``format_bytes(*args)`` (a line, newline included) written,
        then ``then(*args)`` (the other sinks, if any). The common case (a buffered file)
        runs in one frame; reopen races and errors take ``write_bytes``."""
        if self.line_buffered:

            def write_through(*args: Any) -> None:
                self.write_bytes(format_bytes(*args))
                if then is not None:
                    then(*args)

            return write_through

        def sink(environ: Any, status: str, headers: Any, sent: int, took: float) -> None:
            data = format_bytes(environ, status, headers, sent, took)
            try:
                self.file.write(data)
            except (OSError, ValueError):
                self.write_bytes(data)
            if then is not None:
                then(environ, status, headers, sent, took)

        return sink

    def flush_if_due(self) -> None:
        now = time.monotonic()
        if now >= self._next_flush:
            self._next_flush = now + FLUSH_INTERVAL
            self.flush()

    def flush(self) -> None:
        try:
            self.file.flush()
        except (OSError, ValueError, RuntimeError):
            pass
        if self._retired:
            self._close_retired(time.monotonic())

    def _close_retired(self, now: float) -> None:
        keep = []
        for close_after, old in self._retired:
            if now < close_after:
                keep.append((close_after, old))
                continue
            try:
                old.flush()
                old.close()
            except (OSError, ValueError, RuntimeError):
                pass
        self._retired = keep

    def reopen(self) -> None:
        """Switch to a freshly opened file of the same name (after a rotation)."""
        if not self.is_file:
            self.flush()
            return
        try:
            new = self._open()
        except OSError:
            self.flush()
            return  # keep writing to the old file rather than lose lines
        old, self.file = self.file, new
        try:
            old.flush()  # what it holds goes to the old (rotated) file now
        except (OSError, ValueError, RuntimeError):
            pass  # RuntimeError: USR1 interrupted old.write in this thread
        self._retired.append((time.monotonic() + RETIRE_AFTER, old))

    def fileno(self) -> int:
        return self.file.fileno()

    def close(self) -> None:
        self.flush()
        self._close_retired(float("inf"))
        try:
            self.file.close()
        except (OSError, ValueError, RuntimeError):
            pass
