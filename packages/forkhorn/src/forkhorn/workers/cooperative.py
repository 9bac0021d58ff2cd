"""The shape gevent and eventlet workers share: one green thread per connection.

Theory of operation (both libraries, one code path):

- One acceptor green thread per listener. It takes a connection slot (a cooperative
  semaphore of ``worker_connections``) *before* ``accept()``, so a full worker leaves new
  connections in the kernel's backlog for a sibling instead of accepting and stalling them.
  While its open connections climb (a client opening a pool: a few accepts in a row
  with nothing closed in between), it naps 0.2 ms after each accept
  (``Worker.should_step_aside``), so that a burst is shared with the sibling workers
  instead of going whole to the one that happened to be on a CPU.
- One green thread per connection runs the shared ``ConnectionHandler.serve`` on the
  cooperative socket: keep-alive and pipelining come from the handler, no HTTP code here.
  No green thread is spawned per request.
- The main green thread is the heartbeat: every ``min(timeout / 4, 1 s)`` it calls
  ``notify()``, checks the parent pid and sweeps the connections' clocks.
- Clocks instead of timers: ``_state[green]`` is ``(since, method)``, written by
  ``request_started``/``request_finished`` (which the handler calls) with ``method`` None
  while the connection waits for its next request. No timer object is armed per request.
  The sweep throws ``RequestTimeout`` (the library's own ``Timeout``, also the handler's
  ``DeadlineExceeded``) into a request older than ``timeout``: it unwinds the app, the
  handler answers 504 if nothing was sent yet and closes the connection. Into a connection
  waiting longer than ``keepalive`` for a request (``timeout`` when keep-alive is off, for
  the first request) it throws the same: the handler closes it quietly, or with 408 if part
  of a head had come. A head already arriving under the handler's own ``header_timeout``
  (``Connection.head_deadline``) is left to the handler. Both fire at most one sweep
  interval late.
- Graceful stop (``alive`` turned False by SIGTERM): acceptors are killed (no new
  connections), idle keep-alive connections are closed at once (their clients may retry,
  RFC 9112 9.3.1), a new connection gets its first request served (its client connected
  to send one; the idle sweep bounds one that never comes), busy ones finish their request
  (the handler does not reuse a connection once ``alive`` is False), all within
  ``graceful_timeout``; whatever is left then is killed. Queued connections are then served by the base class's
  ``drain_backlog`` when the master asked for a full drain.

Invariants: a connection green thread is in ``_state`` from its first instruction to its
last and gives its slot back exactly once; exceptions are thrown only into live green
threads and only from the library's hub (never by switching into them from the heartbeat,
which would strand it); signal handlers that may block run in a fresh green thread, never
in the hub; nothing here imports gevent, eventlet, greenlet, ``ssl`` or ``logging`` at
module level (the eventlet worker is imported in the master before it greens the process).

Subclasses supply the library: ``_green_process`` (patching, hub after fork),
``_make_semaphore``, ``_spawn``, ``_sleep``, ``_schedule``, ``_timeout_base``,
``_cooperative_listener`` (whose accepted sockets bring their ``sendfile``).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from time import monotonic
from types import FrameType
from typing import Any

from forkhorn.workers.base import (
    ACCEPT_BACKOFF_ERRNOS,
    ACCEPT_RETRY_ERRNOS,
    ACCEPT_STEP_ASIDE,
    Worker,
)

_worker_request_started = Worker.request_started
_worker_request_finished = Worker.request_finished

_CLIENT_GONE_ERRNOS = frozenset(
    {errno.ECONNRESET, errno.EPIPE, errno.ENOTCONN, errno.ESHUTDOWN, errno.ETIMEDOUT, errno.EBADF}
)


class CooperativeWorker(Worker):
    """A worker serving many connections per process on green threads."""

    #: exceptions that end a connection without a log line (a subclass's own protocol)
    quiet_exceptions: tuple[type[BaseException], ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: connection green thread -> (since, method); method None: waiting for a request
        #: (the first one, or the next one on a keep-alive connection: ``Connection.requests``)
        self._state: dict[Any, tuple[float, str | None]] = {}
        #: connection green thread -> its handler ``Connection`` (socket, buffer, parser)
        self.connections: dict[Any, Any] = {}
        #: green thread -> the RequestTimeout thrown into it (told apart from the app's own)
        self._expired: dict[Any, BaseException] = {}
        #: connections accepted whose green thread has not started yet (not in _state)
        self._starting = 0
        self._acceptors: list[Any] = []
        self._slots: Any = None
        self._tls: Any = None
        self.handler: Any = None
        self._connection_class: Any = None
        self._request_timeout: type[BaseException] = BaseException
        self._current: Callable[[], Any] = _not_green_yet
        self._greenlet_exit: type[BaseException] = SystemExit
        self._main: Any = None  # the heartbeat's green thread
        self._napping = False

    # -- the library seam ------------------------------------------------------------

    def _green_process(self) -> None:
        """Make this freshly forked process cooperative: patch, or take a new hub."""
        raise NotImplementedError

    def _make_semaphore(self, value: int) -> Any:
        raise NotImplementedError

    def _spawn(self, function: Callable[..., Any], *args: Any) -> Any:
        """Start ``function(*args)`` in a new green thread; return the green thread."""
        raise NotImplementedError

    def _sleep(self, seconds: float) -> None:
        raise NotImplementedError

    def _schedule(self, function: Callable[..., Any], *args: Any) -> None:
        """Run ``function(*args)`` soon in the hub's own green thread."""
        raise NotImplementedError

    def _timeout_base(self) -> type[BaseException]:
        """The library's ``Timeout`` class; ``RequestTimeout`` derives from it."""
        raise NotImplementedError

    def _new_timeout(self, seconds: float) -> BaseException:
        """An unarmed ``RequestTimeout`` (the sweep throws it; no timer is started)."""
        return self._request_timeout(seconds)

    def _cooperative_listener(self, sock: Any) -> Any:
        """A cooperative socket for the listener ``sock`` inherited from the master.
        Connections it accepts must offer a cooperative ``sendfile``
        (``forkhorn.wsgi.sendfile.sendfile_all`` with the library's wait)."""
        raise NotImplementedError

    # -- process set-up --------------------------------------------------------------

    def init_process(self) -> None:
        # Green first: signals, the heartbeat and above all the app must be set up on a
        # cooperative process (gevent patches here unless the master already did).
        self._green_process()
        # greenlet comes with gevent and eventlet; the core does not depend on it.
        from greenlet import GreenletExit, getcurrent

        from forkhorn.wsgi.handler import DeadlineExceeded

        self._current = getcurrent
        self._greenlet_exit = GreenletExit
        self._request_timeout = type(
            "RequestTimeout",
            (self._timeout_base(), DeadlineExceeded),
            {"__doc__": "A request ran longer than the timeout setting.", "__module__": __name__},
        )
        super().init_process()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        # After the app: the handler reads worker.wsgi; the TLS context is built on the
        # already patched ``ssl`` (forkhorn.tls imports it when called), so the sockets it
        # wraps are cooperative.
        from forkhorn.tls import TLSAcceptor
        from forkhorn.wsgi.handler import Connection, ConnectionHandler

        self.handler = ConnectionHandler(self, multithread=True)
        self._connection_class = Connection
        self._tls = TLSAcceptor.for_worker(self)

    # Signal handlers run in whatever green thread is current, possibly the hub, where
    # blocking (the base handlers sleep, log, run hooks) is forbidden: run them apart.
    def handle_exit(self, signum: int, frame: FrameType | None) -> None:
        self.alive = False
        self._schedule(self._wake_main)  # start the graceful stop now, not at the next beat

    def handle_quit(self, signum: int, frame: FrameType | None) -> None:
        self.alive = False
        self._spawn(super().handle_quit, signum, frame)

    def handle_abort(self, signum: int, frame: FrameType | None) -> None:
        self.alive = False
        self._spawn(super().handle_abort, signum, frame)

    def handle_usr1(self, signum: int, frame: FrameType | None) -> None:
        self._spawn(super().handle_usr1, signum, frame)

    # -- the main green thread: heartbeat, clocks, stop ------------------------------

    def heartbeat_interval(self) -> float:
        """``timeout / 4``, at most 1 s (``timeout`` 0: no timeout, beat every second)."""
        timeout = self.cfg.timeout
        return max(0.05, min(timeout / 4.0, 1.0)) if timeout > 0 else 1.0

    def run(self) -> None:
        self._slots = self._make_semaphore(self.cfg.worker_connections)
        for listener in self.sockets:
            green_sock = self._cooperative_listener(listener.sock)
            self._acceptors.append(self._spawn(self._accept_loop, green_sock, listener))
        self._main = self._current()
        interval = self.heartbeat_interval()
        while self.alive:
            self.notify()
            if self.ppid != os.getppid():
                self.log.info("Parent changed, shutting down: %s", self)
                self.alive = False
                break
            self._sweep(monotonic())
            self._nap(interval)
        self._stop_gracefully()

    def _nap(self, seconds: float) -> None:
        """The heartbeat's sleep; ``_wake_main`` cuts it short."""
        self._napping = True
        try:
            self._sleep(seconds)
        except _WakeUp:
            pass
        finally:
            self._napping = False

    def _wake_main(self) -> None:
        # In the hub. Only a napping heartbeat is woken: anywhere else the exception
        # would land in code that does not expect it.
        if self._napping:
            self._main.throw(_WakeUp())

    def _sweep(self, now: float) -> None:
        """Throw RequestTimeout into overdue requests, close connections idle too long."""
        request_limit = self.cfg.timeout
        idle_limit = self.cfg.keepalive if self.cfg.keepalive > 0 else request_limit
        connections = self.connections
        for green, (since, method) in list(self._state.items()):
            if green in self._expired:
                continue
            conn = connections.get(green)
            if conn is not None and conn.long_lived:
                continue  # a websocket: the app's to end (the graceful stop still does)
            if method is None:
                if now - since >= idle_limit and not self._head_in_progress(green):
                    # the handler closes quietly (408 if part of a head had come)
                    self._throw(green, self._new_timeout(idle_limit), since)
            elif request_limit > 0 and now - since >= request_limit:
                self._throw(green, self._new_timeout(request_limit), since)

    def _head_in_progress(self, green: Any) -> bool:
        """A head is arriving under the handler's own ``header_timeout``: not idle."""
        conn = self.connections.get(green)
        return bool(getattr(conn, "head_deadline", 0.0))

    def _served_one(self, green: Any) -> bool:
        """The connection has had a request (waiting now means idle keep-alive)."""
        conn = self.connections.get(green)
        return conn is not None and conn.requests > 0

    def _throw(self, green: Any, exc: BaseException, since: float | None = None) -> None:
        """Throw ``exc`` into ``green`` from the hub, soon. With ``since``: only if the
        connection is still in the state the sweep saw (no request begun, no head started)."""
        self._expired[green] = exc
        self._schedule(self._deliver, green, exc, since)

    def _deliver(self, green: Any, exc: BaseException, since: float | None) -> None:
        # In the hub. Throwing into a finished green thread would raise in the hub instead.
        if green.dead or self._expired.get(green) is not exc:
            return
        if since is not None:
            state = self._state.get(green)
            # Re-check what the sweep saw: a request may have begun since, or (idle
            # connection) a head may have started arriving, under header_timeout now.
            if (
                state is None
                or state[0] != since
                or (state[1] is None and self._head_in_progress(green))
            ):
                del self._expired[green]
                return
        green.throw(exc)

    def _stop_gracefully(self) -> None:
        for acceptor in self._acceptors:
            self._throw(acceptor, self._greenlet_exit())
        self._acceptors.clear()
        deadline = monotonic() + self.cfg.graceful_timeout
        while (self._state or self._starting) and monotonic() < deadline:
            self.notify()
            for green, (since, method) in list(self._state.items()):
                # idle between two requests: close it, its client retries; a new connection
                # (no request yet) was accepted for a request that is coming: serve it (the
                # sweep ends one whose request never comes)
                if method is None and green not in self._expired and self._served_one(green):
                    self._throw(green, self._greenlet_exit(), since)
            self._sweep(monotonic())
            self._nap(0.05)
        for green in list(self._state):
            self._throw(green, self._greenlet_exit())
        if self._state:
            self._sleep(0.01)  # let the killed green threads close their sockets

    # -- acceptors and connections ---------------------------------------------------

    def _accept_loop(self, green_sock: Any, listener: Any) -> None:
        server_addr = listener.sock.getsockname()
        accept = green_sock.accept
        take_slot = self._slots.acquire
        give_slot = self._slots.release
        spawn = self._spawn
        serve = self._serve_connection
        step_aside = self.should_step_aside
        state = self._state
        while self.alive:
            take_slot()
            try:
                client, addr = accept()  # waits out EAGAIN itself, cooperatively
            except OSError as exc:
                give_slot()
                if exc.errno in ACCEPT_RETRY_ERRNOS:
                    continue
                if exc.errno in ACCEPT_BACKOFF_ERRNOS:
                    self.log.error("accept() on %s failed: %s; retrying", listener, exc)
                    self._sleep(0.5)
                    continue
                raise
            except BaseException:
                give_slot()
                raise
            self._starting += 1
            spawn(serve, client, addr, server_addr)
            if step_aside(len(state) + self._starting):
                # a green nap: the hub serves what is ready, then waits in the kernel,
                # which frees the CPU for a sibling (without it, 3 gevent starts of 5
                # gave one worker 49 or all 50 of wrk's connections; with it, none of
                # 12 gevent and eventlet starts was worse than 20/30)
                self._sleep(ACCEPT_STEP_ASIDE)

    def _serve_connection(self, client: Any, addr: Any, server_addr: Any) -> None:
        green = self._current()
        self._starting -= 1
        self._state[green] = (monotonic(), None)
        try:
            if self._tls is not None:
                client = self._tls_handshake(green, client, addr)
            conn = self.connections[green] = self._connection_class(client, addr, server_addr)
            self.handler.serve(conn)
        except (SystemExit, KeyboardInterrupt):
            raise  # the process is going down
        except BaseException as exc:
            if self._expired.get(green) is exc:
                if isinstance(exc, self._request_timeout):
                    self.log.info("Connection from %s timed out outside a request", addr)
            elif not self._is_quiet(exc):
                # the handler deals with the app's exceptions: this is the handler's own
                # failure, or a BaseException the app let out (its own Timeout, say)
                self.log.exception("Error handling connection from %s", addr)
        finally:
            del self._state[green]
            self.connections.pop(green, None)
            self._expired.pop(green, None)
            try:
                client.close()
            except OSError:
                pass
            self._slots.release()

    def _is_quiet(self, exc: BaseException) -> bool:
        """A normal end: the client left, the stop closed it, or the subclass says so."""
        if isinstance(exc, OSError):
            return exc.errno in _CLIENT_GONE_ERRNOS
        return isinstance(exc, (self._greenlet_exit, _HandshakeFailed, *self.quiet_exceptions))

    def _tls_handshake(self, green: Any, client: Any, addr: Any) -> Any:
        # Clocked as a request: a client stalling the handshake meets the timeout.
        self._state[green] = (monotonic(), "TLS handshake")
        tls_sock = self._tls.accept(client, addr)  # a failure is logged, plain HTTP answered
        if tls_sock is None:
            raise _HandshakeFailed
        self._state[green] = (monotonic(), None)
        return tls_sock

    # -- called by the connection handler, once per request ------------------------------

    def request_started(self, method: str, path: str) -> None:
        self._state[self._current()] = (monotonic(), method)
        # the base records it in the heartbeat slot (diagnosis names the latest request)
        # and in the metrics board (the in-flight gauge); called directly: super() builds
        # a proxy object on every call, twice per request
        _worker_request_started(self, method, path)

    def request_finished(self) -> None:
        self._state[self._current()] = (monotonic(), None)
        _worker_request_finished(self)


class _HandshakeFailed(Exception):
    """The TLS handshake failed (``TLSAcceptor`` logged it); the connection just closes."""


class _WakeUp(BaseException):
    """Thrown into the napping heartbeat to make it look at ``alive`` now."""


def _not_green_yet() -> Any:
    raise RuntimeError("the cooperative worker is not initialised (init_process) yet")
