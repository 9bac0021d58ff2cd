"""Zero-copy file bodies: ``os.sendfile`` in a loop that waits for room only when the
socket buffer is full.

Every worker sends ``wsgi.file_wrapper`` bodies through ``sendfile_all``; only the wait
differs. gevent and eventlet sockets wait cooperatively (their ``sendfile`` calls it with
the library's wait); the plain sockets of sync and gthread wait with ``poll_writable``,
bounded by the socket's timeout (``write_timeout`` while a body goes out).

Why not ``socket.sendfile``: on a socket with a timeout it polls for room before every
block, and once more after the last one has left. When the body filled most of the send
buffer, that last poll waits until the client has read much of it, and a sync worker sits
idle meanwhile (``strace -T``: up to 3 ms after a 1 MiB file over loopback). It also
builds a selector object per call.
"""

from __future__ import annotations

import os
import select
from collections.abc import Callable
from typing import Any

#: bytes asked of one ``os.sendfile`` call at most (the whole file when its length is
#: unknown is sent this much at a time, until a call sends nothing)
BLOCK = 1 << 20


def sendfile_all(
    sock: Any, file: Any, offset: int, count: int | None, wait_writable: Callable[[int], None]
) -> int:
    """Send ``count`` bytes of ``file`` from ``offset`` (to its end if None) on ``sock``;
    ``wait_writable(fd)`` is called whenever the socket buffer is full (``EAGAIN``).
    Returns the bytes sent; the file is left positioned after them, as ``socket.sendfile``
    leaves it."""
    sock_fd = sock.fileno()
    file_fd = file.fileno()
    total = 0
    try:
        while count is None or total < count:
            block = BLOCK if count is None else min(count - total, BLOCK)
            try:
                sent = os.sendfile(sock_fd, file_fd, offset + total, block)
            except BlockingIOError:
                wait_writable(sock_fd)
                continue
            if sent == 0:
                break  # end of file
            total += sent
    finally:
        if total:
            file.seek(offset + total)
    return total


def poll_writable(fd: int, timeout: float | None) -> None:
    """Block until ``fd`` has room to write; ``TimeoutError`` after ``timeout`` seconds
    (None: no limit). ``poll``, not ``select``: a gthread worker's descriptors may be
    numbered above ``FD_SETSIZE``."""
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    if not poller.poll(None if timeout is None else timeout * 1000):
        raise TimeoutError("timed out waiting to send")
