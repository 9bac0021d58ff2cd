"""The ``sync`` worker: one connection, one request at a time per process (the default).

Theory of operation:
- Accept loop: the listeners are non-blocking and shared by every worker. ``accept()`` is
  tried first (under load it succeeds: one syscall per connection); only when every
  listener says EAGAIN does the worker wait in ``select`` on the listeners and its signal
  pipe, at most ``min(heartbeat budget, 1 s)``, so TERM wakes it at once and an idle worker
  makes about one syscall per second.
- Like Gunicorn's sync worker, every response says ``Connection: close``: a slow or idle
  keep-alive client would otherwise hold the whole process.
- Deadlines without a syscall per request: one periodic ``setitimer(ITIMER_REAL)`` armed
  once per worker (every ``min(1 s, deadline / 4)``) is the watchdog. A connection costs
  one clock read and two stores (``_accepted``, ``_conn``) besides the accept loop's own
  beat (which keeps an idle worker alive should the app take SIGALRM over). Each tick keeps
  the heartbeat fresh (a long request is not mistaken for a hung process) and compares the
  clock with the connection's deadline: ``header_timeout`` after the accept while the head
  is not in (TLS handshake included), ``timeout`` after the accept once it is. A tick
  closer to the deadline than one period re-arms the timer to fire exactly at it. Past it,
  ``DeadlineExceeded`` is raised inside whatever runs (read, app, write): before the head,
  the connection is closed (408 if some of the head had come); in a request, the handler
  answers 504 if nothing was sent yet and logs method and path. An app blocked in C code
  that does not return to Python on a signal cannot be interrupted: the heartbeat then goes
  stale and the master aborts the process, as in Gunicorn.
- Graceful stop (TERM): the signal handler only clears ``alive``; the current request
  finishes, then the loop ends.
"""

from __future__ import annotations

import errno
import gc
import os
import select
import signal
import socket
import time
from types import FrameType
from typing import Any

from forkhorn.tls import TLSAcceptor
from forkhorn.workers.base import ACCEPT_BACKOFF_ERRNOS, ACCEPT_RETRY_ERRNOS, Worker
from forkhorn.wsgi.handler import Connection, ConnectionHandler, DeadlineExceeded


class SyncWorker(Worker):
    """One request at a time; ``Connection: close`` on every response."""

    wsgi_multithread = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tls: Any = None
        #: monotonic time the current connection was accepted (0.0: none, or no deadline)
        self._accepted = 0.0
        self._conn: Connection | None = None
        #: seconds after the accept: (head complete by, request done by); 0: none
        self._limits = (0.0, 0.0)
        self._tick = 1.0

    def run(self) -> None:
        self.handler = ConnectionHandler(self, keepalive=False)
        # the app and the server are loaded: keep the collections requests trigger off them
        gc.freeze()
        self._tls = TLSAcceptor.for_worker(self)
        limit = self._arm_watchdog()
        listeners = [(listener.sock, listener.sock.getsockname()) for listener in self.sockets]
        for sock, _ in listeners:
            sock.setblocking(False)
        waiting = [sock for sock, _ in listeners] + [self.PIPE[0]]
        # socket.accept() converts family and type to enums on every call; do it once
        accepts = [
            (sock._accept, sock.family.value, sock.type.value, sock.proto, server)  # type: ignore[attr-defined]
            for sock, server in listeners
        ]
        make_socket = socket.socket
        idle_wait = max(0.05, min(float(self.timeout or 1.0), 1.0))
        while self.alive:
            self.notify()
            accepted = False
            for accept, family, kind, proto, server in accepts:
                try:
                    fd, addr = accept()
                    client = make_socket(family, kind, proto, fileno=fd)
                except BlockingIOError:
                    continue
                except OSError as exc:
                    if exc.errno in ACCEPT_RETRY_ERRNOS:
                        continue
                    if exc.errno in ACCEPT_BACKOFF_ERRNOS:
                        self.log.error("accept() failed: %s; retrying", exc)
                        time.sleep(0.5)
                        continue
                    raise
                accepted = True
                self._serve_client(client, addr, server, limit)
                if not self.alive:
                    break
            if accepted:
                continue
            if self.ppid != os.getppid():
                self.log.info("Parent changed, shutting down: %s", self)
                return
            try:
                ready, _, _ = select.select(waiting, [], [], idle_wait)
            except OSError as exc:
                if exc.errno != errno.EBADF:
                    raise
                return  # a listener was closed under us: we are being stopped
            if self.PIPE[0] in ready:
                self._drain_pipe()

    def _arm_watchdog(self) -> float:
        """Start the periodic watchdog (once per worker). Returns 0.0 when no deadline is
        configured (then connections are not clocked at all)."""
        request_limit = float(self.cfg.timeout or 0)
        head_limit = float(getattr(self.cfg, "header_timeout", 0) or 0)
        if request_limit:
            head_limit = min(head_limit, request_limit) if head_limit else request_limit
        if not head_limit:
            return 0.0
        self._limits = (head_limit, request_limit)
        self._tick = max(0.05, min(1.0, head_limit / 4, (request_limit or head_limit) / 4))
        signal.signal(signal.SIGALRM, self._on_tick)
        signal.setitimer(signal.ITIMER_REAL, self._tick, self._tick)
        return head_limit

    def _serve_client(self, client: Any, addr: Any, server: Any, limit: float) -> None:
        if limit > 0:
            self._accepted = time.monotonic()
        served = False
        try:
            if self._tls is not None:
                tls_client = self._tls.accept(client, addr)  # None: failed, logged
                if tls_client is None:
                    return
                client = tls_client
            conn = self._conn = Connection(client, addr, server)
            self.handler.serve(conn)
            served = True  # serve() closed the socket
        except DeadlineExceeded:
            # outside a request (TLS handshake, nothing sent): nothing to answer
            self.log.info("Closing connection from %s: no complete request within %gs",
                          addr, self._limits[0])  # fmt: skip
        except OSError as exc:
            self.log.debug("Connection error from %s: %s", addr, exc)
        except Exception:
            self.log.exception("Error handling connection from %s", addr)
        finally:
            self._accepted = 0.0
            self._conn = None
            if not served:
                try:
                    client.close()
                except OSError:
                    pass

    def _on_tick(self, signum: int, frame: FrameType | None) -> None:
        accepted = self._accepted
        if accepted:
            conn = self._conn
            head_limit, request_limit = self._limits
            limit = request_limit if conn is not None and conn.requests else head_limit
            if limit:
                left = accepted + limit - time.monotonic()
                if left <= 0.005:
                    self._accepted = 0.0  # raised once per connection
                    raise DeadlineExceeded()
                if left < self._tick:
                    # fire exactly at the deadline, then go back to the period
                    signal.setitimer(signal.ITIMER_REAL, left, self._tick)
        self.notify()
