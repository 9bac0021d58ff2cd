"""``EventletWorker``: the shared cooperative worker on eventlet's hub.

Mirror of ``forkhorn_gevent.worker``. Everything gevent and eventlet do the same way
(acceptors, connection slots, heartbeat, per-request timeouts, idle keep-alive expiry,
graceful stop) lives in ``forkhorn.workers.cooperative.CooperativeWorker``; this module
only says how eventlet patches, spawns, sleeps, schedules and makes sockets cooperative.

Invariants: the master is greened by ``patch_master`` before logging and the app exist
(see ``forkhorn_eventlet.patching``); each worker takes a new hub after fork (a
``forkhorn_eventlet.hub.OneShotHub``: one ``epoll_ctl`` per wait). Importing
this module imports no eventlet. Connection green threads come from ``eventlet.spawn_n``
(raw greenlets, no GreenThread result machinery). Accepted sockets are ``_EventletSocket``:
eventlet's ``GreenSocket`` plus a cooperative ``sendmsg`` and a zero-copy ``sendfile``
(``GreenSocket`` forwards both to the raw non-blocking socket, where they would fail), and
two fast paths: ``send``/``sendall`` straight to the socket, and after a send a wait for
readability before ``recv`` (no failing ``recv`` per keep-alive request).

Websockets: an app built on ``eventlet.websocket.WebSocketWSGI`` (Flask-SocketIO style)
finds the connection's socket in ``environ["gunicorn.socket"]`` (every worker puts it
there), talks on the socket directly, and marks the request handled in
``eventlet.wsgi.WSGI_LOCAL``; the worker then ends the connection without writing a
response of its own. No request clock runs on it: the handler exempts every websocket
upgrade request (so ``eventlet.set_idle``, which eventlet's module calls only if the
server offers it, is not offered). Flask-Sock and
simple-websocket need nothing of this module: they end with ``StopIteration``, which the
handler takes as Gunicorn does.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

from forkhorn.workers.cooperative import CooperativeWorker
from forkhorn.wsgi.sendfile import sendfile_all

from forkhorn_eventlet import patching

_DONTWAIT = int(getattr(socket, "MSG_DONTWAIT", 0))


class ConnectionTakenOver(BaseException):
    """The app took the socket over (a websocket): close it, write nothing more."""


class EventletWorker(CooperativeWorker):
    """Thousands of concurrent connections per process, one green thread each."""

    quiet_exceptions = (ConnectionTakenOver,)

    @classmethod
    def patch_master(cls, preload: bool) -> None:
        # Always, preloading or not: eventlet must come before logging, locks and the app.
        patching.patch_master()
        # Then, on the greened interpreter, the handler stack every worker imports (the
        # sync and gthread workers import it in the master too): a module imported after
        # fork leaves its heap growth in each worker, imported here it is shared.
        import forkhorn.tls
        import forkhorn.wsgi.handler  # noqa: F401

    def _green_process(self) -> None:
        patching.patch_worker()  # adds ``os``; all of it if the master was not patched
        patching.after_fork_in_child()
        import eventlet
        import eventlet.hubs
        import eventlet.semaphore

        self._eventlet = eventlet
        self._hub = eventlet.hubs.get_hub()
        self._semaphore_class = eventlet.semaphore.Semaphore
        self._socket_class = _make_socket_class()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        self.handler.app = _websocket_capable(self.handler.app)

    def _make_semaphore(self, value: int) -> Any:
        return self._semaphore_class(value)

    def _spawn(self, function: Callable[..., Any], *args: Any) -> Any:
        return self._eventlet.spawn_n(function, *args)

    def _sleep(self, seconds: float) -> None:
        self._eventlet.sleep(seconds)

    def _schedule(self, function: Callable[..., Any], *args: Any) -> None:
        self._hub.schedule_call_global(0, function, *args)

    def _timeout_base(self) -> type[BaseException]:
        return self._eventlet.Timeout  # type: ignore[no-any-return]

    def _new_timeout(self, seconds: float) -> BaseException:
        # eventlet.Timeout(seconds) arms a timer at once; the sweep only needs the exception.
        exc = self._request_timeout(None)
        exc.seconds = seconds  # type: ignore[attr-defined]
        return exc

    def _cooperative_listener(self, sock: Any) -> Any:
        from eventlet.patcher import original

        # A dup in a plain socket: the arbiter's listener (a GreenSocket set non-blocking
        # in the patched master) stays as it is.
        plain = original("socket").socket(
            sock.family, sock.type, sock.proto, fileno=os.dup(sock.fileno())
        )
        green = self._socket_class(plain)
        green.settimeout(None)
        return green


def _make_socket_class() -> type:
    """``GreenSocket`` with cooperative ``sendmsg`` and ``sendfile`` (built after patching)."""
    from eventlet.greenio import GreenSocket
    from eventlet.hubs import IOClosed, get_hub, trampoline
    from greenlet import getcurrent

    def wait_writable(fd: int) -> None:
        trampoline(fd, write=True)

    def wait_readable(sock: Any) -> None:
        # GreenSocket._read_trampoline for a socket without a timeout (every connection's
        # wait for its next request): the same hub calls, without the timeout exception
        # it builds for every wait, nor its two frames on the way to trampoline().
        if sock._closed:
            raise IOClosed()
        hub = get_hub()
        current = getcurrent()
        listener = hub.add(hub.READ, sock.fd.fileno(), current.switch, current.throw,
                           sock._mark_as_closed)  # fmt: skip
        try:
            try:
                hub.switch()
            finally:
                hub.remove(listener)
        except IOClosed:
            sock._mark_as_closed()  # the descriptor was recycled under this socket
            raise

    class _EventletSocket(GreenSocket):  # type: ignore[misc, valid-type]
        # GreenSocket.accept() builds type(self): connections are _EventletSockets too.
        #: a response just left: the next recv would most likely find nothing
        _expect_quiet = False

        def recv(self, bufsize: int, flags: int = 0) -> bytes:
            # The handler only calls recv when its buffer holds no pipelined request, so
            # right after a response the client is usually still reading it: wait for
            # readability first instead of paying a failing recv (EAGAIN) per request.
            if self._expect_quiet:
                self._expect_quiet = False
                if self._timeout is None:
                    wait_readable(self)
                elif not self.act_non_blocking:
                    self._read_trampoline()
            try:
                return self.fd.recv(bufsize, flags)  # type: ignore[no-any-return]
            except OSError:  # would block, or closed: GreenSocket's loop knows what to do
                return super().recv(bufsize, flags)  # type: ignore[no-any-return]

        def send(self, data: Any, flags: int = 0) -> int:
            # The handler writes a response with one send(MSG_DONTWAIT): straight to the
            # socket, and the next recv waits for the client's answer first (see recv).
            self._expect_quiet = True
            try:
                return self.fd.send(data, flags)  # type: ignore[no-any-return]
            except BlockingIOError:
                if flags & _DONTWAIT:
                    raise  # the caller waits for room itself, under its write_timeout
            return super().send(data, flags)  # type: ignore[no-any-return]

        def sendall(self, data: Any, flags: int = 0) -> None:
            # One send() usually takes a whole response: skip GreenSocket's three layers.
            try:
                sent = self.fd.send(data, flags)
            except BlockingIOError:
                sent = 0
            if sent < len(data):
                super().sendall(memoryview(data)[sent:], flags)
            self._expect_quiet = True

        def sendmsg(self, buffers: Any, ancdata: Any = (), flags: int = 0) -> int:
            # A large body leaves with sendmsg([head, body]): like send(), it is a response,
            # and the next recv waits for the client's answer first.
            self._expect_quiet = True
            return self._send_loop(self.fd.sendmsg, buffers, ancdata, flags)  # type: ignore[no-any-return]

        def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
            return sendfile_all(self, file, offset, count, wait_writable)

    return _EventletSocket


def _websocket_capable(app: Callable[..., Any]) -> Callable[..., Any]:
    """``app``, plus what ``eventlet.websocket.WebSocketWSGI`` needs from its server (only
    for upgrade requests): an end without a response of ours."""
    from eventlet import wsgi as eventlet_wsgi
    from forkhorn.wsgi.handler import asks_for_websocket  # the rule the handler applies

    local = eventlet_wsgi.WSGI_LOCAL

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if "HTTP_UPGRADE" not in environ or not asks_for_websocket(environ["HTTP_UPGRADE"]):
            return app(environ, start_response)
        local.already_handled = False
        result = app(environ, start_response)
        if getattr(local, "already_handled", False):
            local.already_handled = False
            raise ConnectionTakenOver
        return result

    return application
