"""The ``gthread`` worker: a pool of ``threads`` threads plus one selector thread.

Theory of operation:
- The main thread is the only acceptor: it waits on the listeners and the wake-up pipe,
  accepts (up to ``worker_connections`` open connections; at the cap it stops polling the
  listeners, so the kernel keeps new connections queued for a sibling worker) and
  registers each connection with the poller the pool threads wait on.
- Accepting is balanced between the workers by the kernel: the listeners are polled
  ``EPOLLEXCLUSIVE`` (Linux) by one thread per worker, so a new connection wakes a worker
  whose acceptor is waiting, never one already busy accepting, and each wake-up accepts
  only ``_ACCEPT_BURST`` connections; while its connections climb (a pool opening) it
  pauses after each (``Worker.should_step_aside``). When the pool threads polled the
  listeners too, the first worker nearly always had a thread waiting and took up to 49 of
  a burst of 50 connections, halving the keep-alive throughput for the life of those
  connections.
- Connections are registered ``EPOLLONESHOT`` (Linux): an event disarms the connection, so
  exactly one thread owns it; the thread that served it re-arms it itself with one
  ``epoll_ctl``, no round trip through the main thread. Elsewhere a portable selector is
  used: the main thread hands a readable connection to the pool through a
  ``SimpleQueue``, and the thread hands it back through a queue and the wake-up pipe.
- A connection with pipelined bytes already buffered is served again at once by the same
  thread (never parked: the selector would not see bytes that are already read).
- One pool thread serves at a time while requests are fast (epoll only): ``_ACTIVE``
  threads hold an active slot and poll; the others wait for a slot. Under the GIL, more
  runnable threads only add hand-overs: each ``recv``/``send``/``epoll_ctl`` releases
  the GIL, a waiting thread takes it, and the first one pays a futex wait and a context
  switch to get it back. With 8 threads all polling, one worker under wrk spent
  90-160 us of CPU per keep-alive hello; with one active thread, 51-61 us (2x the req/s).
  The other threads are for apps that block (I/O, ``time.sleep``): while requests run,
  the main thread looks for a thread stuck in one request for ``_STUCK_AFTER`` (often
  while requests are slow, rarely while they are fast: each look costs the serving
  thread the GIL), lends its slot to a waiting thread, and re-arms the connections the
  stuck thread had polled but not served yet (they would wait for it). The stuck thread
  waits for a slot again after its batch, unless requests are slow on average (``_pace``,
  the app blocks): then it serves on without one, so ``threads`` blocking requests run at
  once, as before.
- Keep-alive: a parked connection idle for ``keepalive`` seconds is closed; ``keepalive = 0``
  disables keep-alive; a new connection has ``header_timeout`` seconds (else ``timeout``)
  to send its first request.
- Slow clients hold no thread: a request head that one read did not complete is parked in
  the poller like an idle connection (the handler's ``park_partial_heads``, plain sockets
  only: TLS may hold decrypted bytes the poller cannot see), with its
  ``head_deadline``; the sweep answers 408 and closes it past that deadline.
- Per-request timeout (Gunicorn cannot do this): a request (from its dispatch, head read
  included) running longer than ``timeout`` is logged with its method and path, its socket
  is shut down (the client sees the end at once) and ``DeadlineExceeded`` is raised in its
  thread with ``PyThreadState_SetAsyncExc``. Limits: the exception is delivered when the
  thread next runs Python bytecode, so a thread blocked in C (a long ``time.sleep``, a
  C extension) is freed only when that call returns, and an exception landing in cleanup
  code can skip the app iterable's ``close()``.
- Graceful stop (TERM): stop polling the listeners, close idle keep-alive connections
  (their clients may retry, RFC 9112 9.3.1), serve the first request of connections
  accepted but not read yet (the timeout sweep bounds one whose request never comes), let
  in-flight requests finish within ``graceful_timeout`` (a connection is not reused once
  ``alive`` is false), then stop the threads.

Invariants: only the main thread closes parked connections and only the owning thread
closes a busy one; parking, closing and the timeout kill take the connection's lock, so a
connection is never closed twice nor re-armed after its close, and the async exception
can only hit the thread while it still owns the connection it was aimed at.
"""

from __future__ import annotations

import gc
import os
import queue
import select
import selectors
import socket
import threading
import time
from typing import Any

from forkhorn.tls import TLSAcceptor
from forkhorn.workers.base import (
    ACCEPT_BACKOFF_ERRNOS,
    ACCEPT_RETRY_ERRNOS,
    ACCEPT_STEP_ASIDE,
    Worker,
)
from forkhorn.wsgi.handler import Connection, ConnectionHandler, DeadlineExceeded

#: connections accepted per wake-up of the acceptor: one, so that a burst of new
#: connections is shared with the sibling workers (see the module docstring)
_ACCEPT_BURST = 1
#: ready connections a pool thread takes per wait, and how long it may spend on them
#: before handing the rest back to the other threads
#: (16 rather than 4: +25-30% keep-alive hello req/s in same-run A/B on the 2-core box,
#: fewer threads contending for the GIL; a slow request still hands the rest back)
_BATCH = 16
_BATCH_BUDGET = 0.002
#: pool threads serving at once while no request blocks (see the module docstring)
_ACTIVE = 1
#: how long a pool thread must be in one request to count as stuck: its slot is lent
_STUCK_AFTER = 0.001
#: how often the main thread looks for stuck threads while requests run: every
#: _STUCK_AFTER while requests are slow on average (the app blocks), less often while they
#: are fast. Each look takes the GIL from the serving thread and hands it back (futex
#: waits and wakes, two context switches): looking every 1 ms under a fast keep-alive
#: load cost 0.3 futex calls and 0.5 context switches per request in the workers; every
#: 5 ms, 0.07 and 0.25. A fast app's occasional blocking request keeps the requests
#: polled after it waiting up to _WATCH_INTERVAL_FAST before they go to other threads.
_WATCH_INTERVAL_SLOW = _STUCK_AFTER
_WATCH_INTERVAL_FAST = 0.005
#: quiet looks (no request running) before the main thread stops watching and sleeps
#: until a pool thread wakes it or its tick comes
_WATCH_IDLE_LOOKS = 50
#: a pool thread whose slot was lent keeps serving without one while requests take this
#: long on average (``_pace``): the app blocks, and its requests need threads, not CPU.
#: Under CPU contention fast requests are now and then held up past _STUCK_AFTER
#: (the thread was preempted): one slow request must not turn the limit off.
_SLOW_REQUEST = 0.001
_PACE_WEIGHT = 0.125


class ThreadConnection(Connection):
    """A connection plus what the pool and the selector need to share it safely."""

    __slots__ = ("busy", "closed", "expired", "fd", "lock", "since", "thread")

    def __init__(self, sock: socket.socket, client_addr: Any, server_addr: Any) -> None:
        super().__init__(sock, client_addr, server_addr)
        #: the descriptor's number, kept: an app that took the socket over (a websocket
        #: library) may have closed it by the time the worker does, and fileno() is -1 then
        self.fd = sock.fileno()
        self.lock = threading.Lock()
        self.busy = False
        self.closed = False
        self.expired = False
        #: busy: when the current request was dispatched; idle: since when it is idle
        self.since = time.monotonic()
        self.thread = 0


class _EpollPoller:
    """Linux: the pool threads wait on the connections' epoll themselves (one event each,
    so the kernel hands every ready connection to exactly one thread); one-shot
    registrations are re-armed by the thread that served the connection. No hand-off
    through the main thread: a keep-alive request costs one ``epoll_wait`` and one
    ``epoll_ctl``. The main thread waits on a second epoll: the wake-up pipe and the
    listeners, ``EPOLLEXCLUSIVE`` (the kernel wakes one waiting worker per connection)."""

    ONESHOT = select.EPOLLIN | select.EPOLLONESHOT if hasattr(select, "epoll") else 0

    def __init__(self, wakeup_fd: int) -> None:
        self._epoll = select.epoll()
        self._main = select.epoll()
        self._main.register(wakeup_fd, select.EPOLLIN)
        self._listener_flags = select.EPOLLIN | getattr(select, "EPOLLEXCLUSIVE", 0)

    def add_listener(self, fd: int) -> None:
        self._main.register(fd, self._listener_flags)

    def remove_listener(self, fd: int) -> None:
        try:
            self._main.unregister(fd)
        except (OSError, ValueError):
            pass

    def poll_main(self, timeout: float) -> list[int]:
        """The main thread's wait: ready listeners and the wake-up pipe."""
        return [fd for fd, _ in self._main.poll(timeout)]

    def remove(self, fd: int) -> None:
        try:
            self._epoll.unregister(fd)
        except (OSError, ValueError):
            pass

    def add(self, conn: ThreadConnection) -> None:
        self._epoll.register(conn.fd, self.ONESHOT)

    def rearm(self, conn: ThreadConnection) -> None:
        """Called by a pool thread holding ``conn.lock``."""
        self._epoll.modify(conn.fd, self.ONESHOT)

    def poll(self, timeout: float, most: int = -1) -> list[int]:
        """Ready connections' fds, at most ``most`` (the pool threads' wait)."""
        return [fd for fd, _ in self._epoll.poll(timeout, most)]

    def returned(self) -> None:
        """Nothing to take back: the pool threads re-arm their connections themselves."""

    def close(self) -> None:
        self._epoll.close()
        self._main.close()


class _SelectorPoller:
    """Portable: only the main thread touches the selector and hands ready connections to
    the pool through a queue; threads hand connections back through the wake-up pipe."""

    def __init__(self, wakeup_fd: int, wakeup_write: int, conns: dict[int, Any]) -> None:
        self._selector = selectors.DefaultSelector()
        self._selector.register(wakeup_fd, selectors.EVENT_READ)
        self._wakeup_write = wakeup_write
        self._conns = conns
        self._back: queue.SimpleQueue[ThreadConnection] = queue.SimpleQueue()

    def add_listener(self, fd: int) -> None:
        self._selector.register(fd, selectors.EVENT_READ)

    def remove(self, fd: int) -> None:
        try:
            self._selector.unregister(fd)
        except (KeyError, ValueError, OSError):
            pass

    remove_listener = remove

    def add(self, conn: ThreadConnection) -> None:
        self._selector.register(conn.fd, selectors.EVENT_READ)

    def rearm(self, conn: ThreadConnection) -> None:
        self._back.put(conn)
        try:
            os.write(self._wakeup_write, b"r")
        except OSError:
            pass

    def poll_main(self, timeout: float) -> list[int]:
        """The main thread's wait: listeners, the wake-up pipe and parked connections."""
        fds = [key.fd for key, _ in self._selector.select(timeout)]
        for fd in fds:
            if fd in self._conns:
                self._selector.unregister(fd)  # one-shot, like EPOLLONESHOT
        return fds

    def returned(self) -> None:
        while True:
            try:
                conn = self._back.get_nowait()
            except queue.Empty:
                return
            if not conn.closed:
                self.add(conn)

    def close(self) -> None:
        self._selector.close()


class ThreadWorker(Worker):
    """Thread pool + selector; keep-alive, pipelining, a real per-request timeout."""

    wsgi_multithread = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._conns: dict[int, ThreadConnection] = {}
        self._queue: queue.SimpleQueue[ThreadConnection | None] = queue.SimpleQueue()
        self._count_lock = threading.Lock()
        self._open = 0
        self._accepting = False
        self._poller: Any = None
        self._tls: Any = None
        self._listeners: dict[int, tuple[socket.socket, Any]] = {}
        self._threads: list[threading.Thread] = []
        self._running = True
        threads = max(1, self.cfg.threads)
        #: active slots (epoll only): pool threads serving at once while none is stuck
        self._slots = threading.Semaphore(_ACTIVE)
        #: per pool thread: when it began its current request (0.0: not in one)
        self._serving = [0.0] * threads
        #: per pool thread: its slot was lent to a waiting thread while it was stuck
        self._lent = [False] * threads
        #: per pool thread: the fds it polled and has not served yet (see _poll_main)
        self._batches: list[list[int]] = [[] for _ in range(threads)]
        #: the main thread sleeps a whole tick: a pool thread starting work wakes it
        self._watch_asleep = False
        self._quiet_looks = 0
        #: moving average of seconds per request served by the pool (see _SLOW_REQUEST)
        self._pace = 0.0

    # -- main thread -------------------------------------------------------------------

    def run(self) -> None:
        cfg = self.cfg
        self.handler = ConnectionHandler(
            self, multithread=True, park_partial_heads=not getattr(cfg, "certfile", None)
        )
        # the app and the server are loaded: keep the collections requests trigger off them
        gc.freeze()
        self._tls = TLSAcceptor.for_worker(self)
        if hasattr(select, "epoll"):
            self._poller = _EpollPoller(self.PIPE[0])
            thread_main = self._poll_main
        else:
            self._poller = _SelectorPoller(self.PIPE[0], self.PIPE[1], self._conns)
            thread_main = self._queue_main
        for listener in self.sockets:
            listener.sock.setblocking(False)
            self._listeners[listener.sock.fileno()] = (listener.sock, listener.sock.getsockname())
        self._set_accepting(True)
        for number in range(len(self._serving)):
            thread = threading.Thread(
                target=thread_main, args=(number,), name=f"forkhorn-{number}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        tick = self._tick()
        next_sweep = time.monotonic() + tick
        try:
            while self.alive:
                self.notify()
                self._wait(self._watch(time.monotonic(), tick))
                now = time.monotonic()
                if now >= next_sweep:
                    next_sweep = now + tick
                    if not self._accepting:  # paused for want of descriptors: try again
                        with self._count_lock:
                            self._resume_accepting()
                    if self.ppid != os.getppid():
                        self.log.info("Parent changed, shutting down: %s", self)
                        break
                    self._sweep(now)
            self._stop_gracefully()
        finally:
            self._running = False
            for _ in self._threads:
                self._queue.put(None)
                self._slots.release()  # a thread waiting for a slot sees _running False
            self._poller.close()

    def _watch(self, now: float, tick: float) -> float:
        """Lend the active slot of every pool thread stuck in one request for longer than
        ``_STUCK_AFTER`` to a waiting thread and hand its unserved batch back; return how
        long the main thread may wait before it looks again (a tick once the pool has been
        quiet for a while)."""
        serving = self._serving
        lent = self._lent
        running = False
        for number, since in enumerate(serving):
            if since:
                running = True
                if now - since > _STUCK_AFTER:
                    if not lent[number]:
                        lent[number] = True
                        self._slots.release()
                    # the connections it polled with the stuck one would wait for it
                    self._hand_back_batch(self._batches[number])
        if running:
            self._quiet_looks = 0
        elif self._quiet_looks < _WATCH_IDLE_LOOKS:
            self._quiet_looks += 1
        else:
            # Flag first, then look again: a pool thread marks itself serving, then reads
            # the flag, so one of the two sees the other and no request goes unwatched.
            self._watch_asleep = True
            if not any(serving):
                return tick
            self._watch_asleep = False
        return _WATCH_INTERVAL_SLOW if self._pace >= _SLOW_REQUEST else _WATCH_INTERVAL_FAST

    def _wait(self, timeout: float) -> None:
        """The main thread's wait: new connections, signals (and, without epoll, ready
        connections)."""
        self._dispatch(self._poller.poll_main(timeout), time.monotonic())

    def _tick(self) -> float:
        candidates = [1.0]
        if self.cfg.timeout:
            candidates.append(self.cfg.timeout / 4.0)
        if self.cfg.keepalive:
            candidates.append(self.cfg.keepalive / 2.0)
        if getattr(self.cfg, "header_timeout", 0):
            candidates.append(self.cfg.header_timeout / 4.0)
        return max(0.05, min(candidates))

    def _dispatch(self, ready: list[int], now: float) -> None:
        """Accept, take signals; without epoll, also hand ready connections to the pool
        and take back the ones it returned."""
        conns = self._conns
        put = self._queue.put
        for fd in ready:
            conn = conns.get(fd)
            if conn is not None:
                conn.busy = True
                conn.since = now
                put(conn)
            elif fd in self._listeners:
                self._accept(*self._listeners[fd])
                if self.should_step_aside(self._open):
                    time.sleep(ACCEPT_STEP_ASIDE)  # the main thread only: the pool serves on
            elif fd == self.PIPE[0]:
                self._drain_pipe()
                self._poller.returned()

    def _accept(self, sock: socket.socket, server: Any, most: int = _ACCEPT_BURST) -> None:
        """Accept up to ``most`` queued connections, within ``worker_connections``."""
        limit = self.cfg.worker_connections
        for _ in range(most):
            with self._count_lock:
                if self._open >= limit:
                    self._set_accepting(False)
                    return
                try:
                    client, addr = sock.accept()
                except BlockingIOError:
                    return
                except OSError as exc:
                    if exc.errno in ACCEPT_RETRY_ERRNOS:
                        continue
                    if exc.errno in ACCEPT_BACKOFF_ERRNOS:
                        # the listener stays readable: polled, it would wake the threads
                        # again at once; the main thread resumes at its next tick
                        self.log.error("accept() failed: %s; pausing accepts", exc)
                        self._set_accepting(False)
                        return
                    raise
                self._open += 1
            if self._tls is not None:
                # the handshake happens in a pool thread once the client has spoken (_serve)
                client = self._tls.wrap(client)
            conn = ThreadConnection(client, addr, server)
            self._conns[conn.fd] = conn
            self._poller.add(conn)

    def _resume_accepting(self) -> None:
        """Poll the listeners again if there is room (caller holds ``_count_lock``): after
        a close, and once a tick after accepts were paused for want of descriptors (still
        short of them: one more log line, a tick later)."""
        if not self._accepting and self.alive:
            self._set_accepting(self._open < self.cfg.worker_connections)

    def _set_accepting(self, accepting: bool) -> None:
        """Start or stop polling the listeners (caller holds ``_count_lock`` or is alone)."""
        if accepting == self._accepting:
            return
        self._accepting = accepting
        for fd in self._listeners:
            if accepting:
                self._poller.add_listener(fd)
            else:
                self._poller.remove_listener(fd)

    def _sweep(self, now: float) -> None:
        """Close idle connections past their wait; end requests past ``timeout``."""
        keepalive = self.cfg.keepalive
        first_wait = getattr(self.cfg, "header_timeout", 0) or self.cfg.timeout or 30
        timeout = self.cfg.timeout
        for conn in list(self._conns.values()):
            if conn.busy:
                # a websocket (long_lived) is the app's to end: Gunicorn times out no
                # gthread request, and this one is not a request that hangs
                if (
                    timeout
                    and now - conn.since > timeout
                    and not conn.expired
                    and not conn.long_lived
                ):
                    self._expire(conn)
            elif conn.head_deadline:
                if now > conn.head_deadline:
                    self._close_idle(conn, head_timed_out=True)
            elif now - conn.since > (keepalive if conn.requests else first_wait):
                self._close_idle(conn)

    def _close_idle(self, conn: ThreadConnection, head_timed_out: bool = False) -> None:
        with conn.lock:
            if conn.busy or conn.closed:
                return
            self._poller.remove(conn.fd)
            if head_timed_out:
                self.handler.time_out_head(conn)  # 408, never blocks this thread
            self._close(conn)

    def _expire(self, conn: ThreadConnection) -> None:
        with conn.lock:
            if not conn.busy or conn.closed:
                return
            conn.expired = True
            req = conn.request
            self.log.error("Request timed out after %ss, closing the connection: %s %s",
                           self.cfg.timeout, req.method if req else "-",
                           req.uri if req else "(reading the request)")  # fmt: skip
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            import ctypes  # only here: a timeout is rare

            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(conn.thread), ctypes.py_object(DeadlineExceeded)
            )

    def _stop_gracefully(self) -> None:
        with self._count_lock:
            self._set_accepting(False)
        # The listeners are polled EPOLLEXCLUSIVE: the kernel announces a new connection to
        # one worker only. One announced to this worker before it stopped polling would
        # wait unseen until the next connection: take what is queued now and serve it.
        for sock, server in list(self._listeners.values()):
            self._accept(sock, server, most=self.cfg.worker_connections)
        deadline = time.monotonic() + self.cfg.graceful_timeout
        while True:
            now = time.monotonic()
            in_flight = False
            for conn in list(self._conns.values()):
                # an idle keep-alive connection may be closed (its client retries); a new
                # one was accepted for a request that is coming: serve it (the timeout
                # sweep bounds a client that never sends one)
                if not conn.busy and conn.requests:
                    self._close_idle(conn)
                elif not conn.expired:
                    in_flight = True
            # an expired request's thread may be stuck in C: its client is gone, do not wait
            if not in_flight or now >= deadline:
                break
            self.notify()
            self._wait(min(0.05, self._watch(now, 0.05)))
            if self.cfg.timeout:
                self._sweep(now)

    # -- pool threads ------------------------------------------------------------------

    def _poll_main(self, number: int) -> None:
        """A pool thread on epoll: take a few ready fds, serve them one after the other.

        A thread polls once it holds an active slot (see the module docstring); one whose
        slot was lent while it was stuck waits for a slot again after its batch, unless
        requests are slow on average (``_pace``): then it serves on without one.

        A small batch keeps fewer threads runnable at once (less GIL hand-over between
        threads) while requests are fast; once a batch has run ``_BATCH_BUDGET`` seconds
        (a slow request), its unserved connections are re-armed so idle threads take them,
        and the thread takes one connection per wait until its requests are fast again:
        a re-armed connection goes to the back of the kernel's ready list, so with slow
        requests every batch sent 15 waiting clients back to the end of the queue (10 ms
        requests at c200: some waited over 2 s, where taking one at a time keeps the order).
        """
        poll = self._poller.poll
        conns = self._conns
        monotonic = time.monotonic
        serving = self._serving
        lent = self._lent
        take_slot = self._slots.acquire
        #: fds this thread polled and has not served yet: shared with _watch, which takes
        #: them back from a stuck thread (each pop is atomic: every fd goes to one side)
        batch = self._batches[number]
        most = _BATCH
        take_slot()
        while self._running:
            ready = poll(0.5, most)
            started = monotonic()
            ready.reverse()  # served in the kernel's order, popped from the end
            batch.extend(ready)
            served = 0
            while batch:
                try:
                    fd = batch.pop()
                except IndexError:  # the main thread handed the rest back (see _watch)
                    break
                conn = conns.get(fd)
                if conn is None:
                    continue
                now = monotonic()
                if served and now - started > _BATCH_BUDGET:
                    self._hand_back(conn)
                    continue
                with conn.lock:
                    if conn.closed:
                        continue
                    conn.busy = True
                    conn.since = now
                serving[number] = now
                if self._watch_asleep:
                    self._wake_watch()
                self._run_connection(conn)
                served += 1
            serving[number] = 0.0
            elapsed = monotonic() - started
            most = _BATCH if elapsed <= _BATCH_BUDGET else 1
            if served:
                self._pace += (elapsed / served - self._pace) * _PACE_WEIGHT
            if lent[number] and self._pace < _SLOW_REQUEST:
                # back in line: the slot went to another thread while this one was stuck.
                # (While requests are slow the app blocks: more threads serve at once
                # than hold slots, and a thread keeps serving without one.)
                take_slot()
                lent[number] = False

    def _hand_back_batch(self, batch: list[int]) -> None:
        """Re-arm the connections a stuck pool thread polled but has not served."""
        while batch:
            try:
                fd = batch.pop()
            except IndexError:
                return  # the pool thread took the last one meanwhile
            conn = self._conns.get(fd)
            if conn is not None:
                self._hand_back(conn)

    def _wake_watch(self) -> None:
        """Wake the main thread to watch the requests this pool thread starts."""
        self._watch_asleep = False
        self._quiet_looks = 0
        try:
            os.write(self.PIPE[1], b"w")
        except OSError:
            pass

    def _hand_back(self, conn: ThreadConnection) -> None:
        """Re-arm a ready connection this thread will not serve soon: another takes it."""
        with conn.lock:
            if not conn.closed:
                try:
                    self._poller.rearm(conn)
                except OSError:
                    pass

    def _queue_main(self, number: int) -> None:
        """A pool thread fed by the main thread (no epoll). ``number`` (the thread's index,
        which ``_poll_main`` uses) is not needed here: no slots, no watch."""
        get = self._queue.get
        while True:
            conn = get()
            if conn is None:
                return
            self._run_connection(conn)

    def _run_connection(self, conn: ThreadConnection) -> None:
        try:
            self._serve(conn)
            _checkpoint()  # a timeout aimed at this connection lands here at the latest
        except DeadlineExceeded:
            self._finish(conn, keep=False)
        except BaseException:
            self.log.exception("Error handling connection from %s", conn.client)
            self._finish(conn, keep=False)

    def _serve(self, conn: ThreadConnection) -> None:
        conn.thread = threading.get_ident()
        serve_one = self.handler.serve_one
        tls = self._tls is not None
        if tls and not conn.requests and not self._tls.handshake(conn.sock, conn.client):
            self._finish(conn, False)  # logged (and plain HTTP answered) by the acceptor
            return
        while True:
            keep = serve_one(conn) and self.alive
            # (an incomplete head in buf waits in the poller: see park_partial_heads)
            if keep and ((conn.buf and not conn.head_deadline)
                         or (tls and conn.sock.pending())):  # type: ignore[attr-defined]  # fmt: skip
                conn.since = time.monotonic()
                continue
            break
        self._finish(conn, keep)

    def _finish(self, conn: ThreadConnection, keep: bool) -> None:
        with conn.lock:
            if conn.closed:
                return
            if keep and not conn.expired:
                conn.since = time.monotonic()
                conn.busy = False
                try:
                    self._poller.rearm(conn)
                    return
                except OSError:
                    pass
            conn.busy = False
            self._close(conn)

    def _close(self, conn: ThreadConnection) -> None:
        """Close ``conn`` (caller holds ``conn.lock``)."""
        conn.closed = True
        # before close, as the number is then free for reuse; and only if it is still this
        # connection's: a socket the app closed itself may have its number reused already
        if self._conns.get(conn.fd) is conn:
            del self._conns[conn.fd]
        with self._count_lock:
            self._open -= 1
            self._resume_accepting()
        self.handler.close(conn)


def _checkpoint() -> None:
    """A Python-level call: a pending async exception is delivered at its entry."""
