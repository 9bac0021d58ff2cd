"""Instruments for a worker's own socket class (no pytest, no event loop imported).

``RecvSpy`` stands in for the OS socket under a cooperative socket and counts the
``recv`` calls that fail with ``BlockingIOError``. A worker whose socket waits for
readability after sending a response (forkhorn's gevent and eventlet sockets do) should
count none while a client answers each response::

    ours._sock = spy = RecvSpy(ours._sock)   # gevent; eventlet's OS socket is ``ours.fd``
    ours.send(response)
    ...                                      # the peer answers
    ours.recv(100)
    assert spy.failed == 0
"""

from __future__ import annotations

import socket
from typing import Any


class RecvSpy:
    """``sock`` with its failing ``recv`` calls counted in ``failed``; all else forwarded."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.failed = 0

    def recv(self, *args: Any) -> bytes:
        try:
            return self.sock.recv(*args)
        except BlockingIOError:
            self.failed += 1
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)
