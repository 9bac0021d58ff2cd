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

``check_recv_waits_after_each_response`` runs that check for each way a response leaves
(``send``, ``sendall``, ``sendmsg``); ``check_nonblocking_recv_raises`` checks that a socket
set to timeout 0 still raises at once. Both raise ``AssertionError`` on a failure.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
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


def check_recv_waits_after_each_response(
    ours: Any, peer: Any, spy: RecvSpy, spawn_answer: Callable[[], None]
) -> None:
    """After a response, whichever way it left (``send``, ``sendall``, or ``sendmsg`` for
    a large body), ``ours.recv`` waits for the answer first: no recv fails before it.
    ``spawn_answer()`` starts a green thread that makes ``peer`` send b"next request"
    a little later."""
    for name, respond, returned in (
        ("send", lambda: ours.send(b"response"), 8),
        ("sendall", lambda: ours.sendall(b"response"), None),
        ("sendmsg", lambda: ours.sendmsg([b"resp", b"onse"]), 8),
    ):
        spy.failed = 0
        _check(respond() == returned, name)
        _check(peer.recv(100) == b"response", name)
        spawn_answer()
        _check(ours.recv(100) == b"next request", name)
        _check(spy.failed == 0, (name, spy.failed))


def check_nonblocking_recv_raises(ours: Any) -> None:
    """A socket set to timeout 0 (non-blocking) raises at once when nothing is there."""
    ours.settimeout(0)
    try:
        ours.recv(100)
    except BlockingIOError:
        return
    raise AssertionError("no BlockingIOError")


def _check(condition: bool, what: Any) -> None:
    if not condition:  # not ``assert``: these run in scripts, perhaps under -O
        raise AssertionError(what)
