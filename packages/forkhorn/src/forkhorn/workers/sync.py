"""The ``sync`` worker: one connection, one request at a time per process (the default).

Theory of operation:
- Accept loop: the listeners are non-blocking and shared by every worker. ``accept()`` is
  tried first (under load it succeeds: one syscall per connection); only when every
  listener says EAGAIN does the worker wait in ``select`` on the listeners and its signal
  pipe, at most ``min(heartbeat budget, 1 s)``, so TERM wakes it at once and an idle worker
  makes about one syscall per second.
- Like Gunicorn's sync worker, every response says ``Connection: close``: a slow or idle
  keep-alive client would otherwise hold the whole process.
- ``timeout`` is a real per-connection deadline: ``setitimer(ITIMER_REAL)`` ticks every
  ``timeout / 2`` seconds; a tick keeps the heartbeat fresh (a long request is not mistaken
  for a hung process) and the tick at ``timeout`` raises ``DeadlineExceeded`` inside
  whatever runs (app, read, write). The handler answers 504 if nothing was sent yet and
  logs method and path; the connection is closed. An app blocked in C code that does not
  return to Python on a signal cannot be interrupted: the heartbeat then goes stale and the
  master aborts the process, as in Gunicorn.
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

from forkhorn.workers.base import Worker
from forkhorn.wsgi.handler import Connection, ConnectionHandler, DeadlineExceeded

_RETRY_ACCEPT = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.EINTR})
_OUT_OF_FDS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class SyncWorker(Worker):
    """One request at a time; ``Connection: close`` on every response."""

    wsgi_multithread = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tls: Any = None
        self._deadline = 0.0  # monotonic time the current connection must end by; 0: none

    def run(self) -> None:
        self.handler = ConnectionHandler(self, keepalive=False)
        # the app and the server are loaded: keep the collections requests trigger off them
        gc.freeze()
        self._tls = self._tls_context()
        limit = float(self.cfg.timeout or 0)
        if limit > 0:
            signal.signal(signal.SIGALRM, self._on_tick)
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
                    if exc.errno in _RETRY_ACCEPT:
                        continue
                    if exc.errno in _OUT_OF_FDS:
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

    def _drain_pipe(self) -> None:
        try:
            while os.read(self.PIPE[0], 4096):
                pass
        except OSError:
            pass  # EAGAIN: empty

    def _tls_context(self) -> Any:
        if not getattr(self.cfg, "certfile", None):
            return None
        # one implementation of the ssl_context hook for every worker class
        from forkhorn.workers.cooperative import CooperativeWorker

        return CooperativeWorker._tls_context(self)  # type: ignore[arg-type]

    def _serve_client(self, client: Any, addr: Any, server: Any, limit: float) -> None:
        if limit > 0:
            self._deadline = time.monotonic() + limit
            signal.setitimer(signal.ITIMER_REAL, limit / 2, limit / 2)
        try:
            if self._tls is not None:
                client = self._tls.wrap_socket(client, server_side=True)
            self.handler.serve(Connection(client, addr, server))
        except DeadlineExceeded:
            # outside a request (TLS handshake, a head trickling in): nothing to answer
            self.log.info("Closing connection from %s: no complete request within %ss",
                          addr, self.cfg.timeout)  # fmt: skip
        except OSError as exc:
            self.log.debug("Connection error from %s: %s", addr, exc)
        except Exception:
            self.log.exception("Error handling connection from %s", addr)
        finally:
            if limit > 0:
                self._deadline = 0.0
                signal.setitimer(signal.ITIMER_REAL, 0)
            try:
                client.close()
            except OSError:
                pass

    def _on_tick(self, signum: int, frame: FrameType | None) -> None:
        deadline = self._deadline
        if not deadline:
            return  # a tick that lost the race with the end of its connection
        if time.monotonic() >= deadline - 0.01:
            self._deadline = 0.0
            raise DeadlineExceeded()
        self.notify()
