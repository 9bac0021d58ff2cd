"""``GeventWorker``: the shared cooperative worker on gevent's hub.

Everything gevent and eventlet do the same way (acceptors, connection slots, heartbeat,
per-request timeouts, idle keep-alive expiry, graceful stop) lives in
``forkhorn.workers.cooperative.CooperativeWorker``; this module only says how gevent
patches, spawns, sleeps, schedules and makes sockets cooperative.

Invariants: gevent is imported only after fork, or in the master through ``patch_master``
when the app is preloaded: importing this module imports no gevent, so the master of
``forkhorn -k gevent`` stays an ordinary process. Connection green threads are raw
greenlets (``gevent.spawn_raw``: no result/link machinery to pay for). Accepted sockets are
``_GeventSocket``: gevent's cooperative socket with a zero-copy ``sendfile`` (gevent's own
falls back to read/send in 8 KiB blocks) and two fast paths: ``send``/``sendall`` go
straight to the socket (gevent's ``sendall`` asks for ``SO_SNDBUF`` first, a syscall per
response), and after a send a wait for readability before ``recv`` (no failing ``recv``
per keep-alive request). A keep-alive request then costs one ``recv`` and one ``send``
syscall.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from typing import Any

from forkhorn.workers.base import WORKER_BOOT_ERROR
from forkhorn.workers.cooperative import CooperativeWorker
from forkhorn.wsgi.sendfile import sendfile_all

from forkhorn_gevent import patching

_DONTWAIT = int(getattr(socket, "MSG_DONTWAIT", 0))


class GeventWorker(CooperativeWorker):
    """Thousands of concurrent connections per process, one greenlet each."""

    @classmethod
    def patch_master(cls, preload: bool) -> None:
        # Only a preloaded app needs a patched master; otherwise patching waits for the
        # fork so the master never loads gevent (see forkhorn_gevent.patching).
        if preload:
            patching.patch()
        else:
            _share_with_workers()

    def _green_process(self) -> None:
        patched_in_master = patching.is_patched()
        patching.patch()
        if patched_in_master:
            patching.after_fork_in_child()
        import gevent
        import gevent.lock

        self._gevent = gevent
        try:
            hub = gevent.get_hub()
        except (ValueError, ImportError) as exc:
            # GEVENT_BACKEND or GEVENT_LOOP names something this gevent lacks: the
            # operator's setting, not a bug to trace (gevent lists the values it takes)
            self.log.error("gevent cannot start its event loop: %s", exc)
            sys.exit(WORKER_BOOT_ERROR)
        self._run_callback = hub.loop.run_callback
        self._semaphore_class = gevent.lock.Semaphore
        self._socket_class = _make_socket_class()

    def _make_semaphore(self, value: int) -> Any:
        return self._semaphore_class(value)

    def _spawn(self, function: Callable[..., Any], *args: Any) -> Any:
        return self._gevent.spawn_raw(function, *args)

    def _sleep(self, seconds: float) -> None:
        self._gevent.sleep(seconds)

    def _schedule(self, function: Callable[..., Any], *args: Any) -> None:
        self._run_callback(function, *args)

    def _timeout_base(self) -> type[BaseException]:
        return self._gevent.Timeout  # type: ignore[no-any-return]

    def _cooperative_listener(self, sock: Any) -> Any:
        # A dup: the arbiter's listener object stays as it is (and closable on its own).
        green = self._socket_class(sock.family, sock.type, sock.proto, fileno=os.dup(sock.fileno()))
        green.settimeout(None)
        return green


def _share_with_workers() -> None:
    """Do in the master, once, the start-up work every worker would otherwise repeat.

    A page a worker touches after the fork counts in its RSS; what the master set up
    before is inherited. None of this is gevent or ``ssl``: the master stays unpatched
    and free of both (``patch_all`` imports ``ssl`` in each worker). Per idle worker:

    - OpenSSL, through the C ``_ssl`` module, and the two lookups of its object table that
      importing ``ssl`` makes (``ssl.Purpose``): -2.5 MiB, then -1.1 MiB;
    - ``greenlet``'s C++ runtime (a distribution of its own, which gevent imports): -0.8 MiB;
    - the HTTP/WSGI handler stack, which imports neither and holds no reference that
      patching must replace: -0.9 MiB.
    """
    import _ssl

    import forkhorn.tls
    import forkhorn.wsgi.handler  # noqa: F401
    import greenlet  # noqa: F401

    for purpose in ("1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"):  # serverAuth, clientAuth
        _ssl.txt2obj(purpose)


def _make_socket_class() -> type:
    """gevent's socket, accepting ``_GeventSocket``s with a zero-copy ``sendfile``.

    Built once per worker, after patching: defined at import time it would import gevent.
    """
    from gevent.socket import socket as gevent_socket

    class _GeventSocket(gevent_socket):  # type: ignore[misc, valid-type]
        __slots__ = ("_expect_quiet",)

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            #: a response just left: the next recv would most likely find nothing
            self._expect_quiet = False

        def accept(self) -> tuple[Any, Any]:
            # gevent's accept() loop, returning our class (gevent's names its own).
            while True:
                try:
                    fd, addr = self._accept()
                    break
                except BlockingIOError:
                    if self.timeout == 0.0:
                        raise
                self._wait(self._read_event)
            return type(self)(self.family, self.type, self.proto, fileno=fd), addr

        def recv(self, *args: Any) -> bytes:
            # The handler only calls recv when its buffer holds no pipelined request, so
            # right after a response the client is usually still reading it: wait for
            # readability first instead of paying a failing recv (EAGAIN) per request.
            if self._expect_quiet:
                self._expect_quiet = False
                if self.timeout != 0.0:
                    self._wait(self._read_event)
            # gevent's recv loop, without its frame (nor a second failing recv)
            while True:
                try:
                    return self._sock.recv(*args)  # type: ignore[no-any-return]
                except BlockingIOError:
                    if self.timeout == 0.0:
                        raise
                self._wait(self._read_event)

        def send(self, data: Any, flags: int = 0, *args: Any) -> int:
            # The handler writes a response with one send(MSG_DONTWAIT): straight to the
            # socket, and the next recv waits for the client's answer first (see recv).
            self._expect_quiet = True
            try:
                return self._sock.send(data, flags)  # type: ignore[no-any-return]
            except BlockingIOError:
                if flags & _DONTWAIT:
                    raise  # the caller waits for room itself, under its write_timeout
            return super().send(data, flags, *args)  # type: ignore[no-any-return]

        def sendall(self, data: Any, flags: int = 0) -> None:
            # One send() usually takes a whole response; gevent's sendall would first ask
            # the kernel for SO_SNDBUF (a syscall) to size its chunks.
            try:
                sent = self._sock.send(data, flags)
            except BlockingIOError:
                sent = 0
            if sent < len(data):
                super().sendall(memoryview(data)[sent:], flags)
            self._expect_quiet = True

        def sendmsg(self, *args: Any) -> int:
            # A large body leaves with sendmsg([head, body]): like send(), it is a response,
            # and the next recv waits for the client's answer first.
            self._expect_quiet = True
            return super().sendmsg(*args)  # type: ignore[no-any-return]

        def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
            return sendfile_all(self, file, offset, count, self._wait_writable)

        def _wait_writable(self, fd: int) -> None:
            self._wait(self._write_event)  # the socket's own watcher: none created per wait

    return _GeventSocket
