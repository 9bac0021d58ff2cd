"""The worker contract: what every worker class (sync, gthread, gevent, third-party) gets.

Theory of operation
-------------------
The arbiter builds a ``Worker`` in the master, gives it a heartbeat slot and the write end of
the master's wake-up pipe, forks, runs the ``post_fork`` hook in the child and then calls
``init_process()``. That sets up signals, drops privileges, loads the app, marks the slot
READY and calls ``run()``, the worker class's own loop. ``init_process`` never returns
normally into the arbiter's code: the arbiter's child wrapper turns its outcome into an
exit status.

Invariants
----------
* Exit statuses the master acts on: ``APP_LOAD_ERROR`` (4) when the app cannot be loaded,
  ``WORKER_BOOT_ERROR`` (3) for any other failure before ``booted`` is true. Both halt the
  master instead of forking forever.
* ``notify()``, ``request_started()``, ``request_finished()`` and ``count_request()`` cost a
  store or two into shared memory: no syscall on the hot path.
* With metrics on (``self.metrics``, a region of the master's metrics board given before
  the fork), ``request_started``/``request_finished`` also bump its in-flight counters;
  with a buffered access log or StatsD, ``notify()`` flushes buffers older than a second
  (a clock read otherwise), and they are flushed when ``run()`` ends, however it ends.
* The listening sockets are non-blocking (their open file description is shared by every
  worker): wait with select/poll on ``[l.sock for l in self.sockets] + [self.PIPE[0]]`` and
  treat ``BlockingIOError`` from ``accept()`` as "another worker got it". Every signal writes
  a byte to ``self.PIPE`` (``signal.set_wakeup_fd``), so a worker waiting in select wakes at
  once on TERM.
* ``self.timeout`` is the heartbeat budget, as in Gunicorn: half the ``timeout`` setting.
  Call ``notify()`` at least every ``self.timeout`` seconds while idle.
* A worker never stops by itself when it wants to be replaced (``max_requests``,
  ``max_worker_memory``, code reload): it marks its slot WANTS_RETIREMENT and keeps
  serving until the master, with the replacement ready, sends TERM.
* On TERM with the slot in state DRAIN (a full stop: the master has closed the listeners to
  new connections), the connections already queued by the kernel are accepted and served
  after ``run()`` returns (``drain_backlog``), so a graceful stop resets nobody.
* ``reuse_port``: the worker opens listening sockets of its own (``own_sockets``, first in
  ``self.sockets``) before dropping privileges; after ``run()`` returns, on every
  retirement, they stop taking SYNs, what they queued is accepted, they are closed and the
  accepted connections are served (``_retire_own_sockets``), before any DRAIN.
"""

from __future__ import annotations

import errno
import faulthandler
import os
import random
import select
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TYPE_CHECKING, Any

from forkhorn.application import load_failure_report, log_load_failure
from forkhorn.workers.heartbeat import DRAIN, READY, WANTS_RETIREMENT, HeartbeatFile, WorkerSlot
from forkhorn.workers.memory import MemoryLimit, format_size

#: the master's signals, blocked across fork until the worker's own handlers are installed
FORK_BLOCKED_SIGNALS = frozenset(
    getattr(signal, "SIG" + name)
    for name in ("HUP", "QUIT", "INT", "TERM", "TTIN", "TTOU", "USR1", "USR2", "WINCH")
)

if TYPE_CHECKING:
    from forkhorn.arbiter.listeners import Listener
    from forkhorn.instrument.board import WorkerMetrics
    from forkhorn.logging import Logger

WORKER_BOOT_ERROR = 3
APP_LOAD_ERROR = 4

#: ``accept()`` errors about one connection, not the listener: go on accepting
ACCEPT_RETRY_ERRNOS = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.EINTR})
#: ``accept()`` out of descriptors or memory: back off (the kernel keeps the queue)
ACCEPT_BACKOFF_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
#: how long an acceptor whose connections climb steps aside (``should_step_aside``): long
#: enough for a sibling's acceptor to be scheduled (gthread, 8 starts of wrk's 50
#: connections: 0.1 ms left one split at 17/33, 0.2 ms none worse than 19/31)
ACCEPT_STEP_ASIDE = 0.0002
#: an acceptor steps aside only once this many accepts in a row found more connections
#: open than the one before (nothing closed in between): a pool opening, not a stream of
#: short connections, of which an event loop accepts a few in a row at every wake-up.
#: A nap lasts a millisecond or more there (timers wake at millisecond granularity), and
#: one per such wake-up held a gevent worker to 4,000 req/s with `Connection: close`.
STEP_ASIDE_AFTER = 4

#: ``reuse_port`` retirement: how long handshakes already half-way may complete into a
#: worker's own socket before it is closed (a loopback or LAN round trip, with margin)
_HANDSHAKE_GRACE = 0.1

# Master signals a worker inherits handlers for: default action in a worker (as Gunicorn),
# except TTIN/TTOU whose default action would stop (freeze) the process.
_DEFAULT_SIGNALS = ("SIGHUP", "SIGUSR2", "SIGCHLD")
_IGNORED_SIGNALS = ("SIGTTIN", "SIGTTOU", "SIGWINCH")


class Worker:
    """Base class of every worker; subclasses implement ``run()``."""

    def __init__(
        self,
        age: int,
        ppid: int,
        sockets: list[Listener],
        app: Any,
        timeout: float,
        cfg: Any,
        log: Logger,
    ) -> None:
        self.age = age
        self.ppid = ppid
        self.pid = os.getpid()  # the arbiter sets the child's pid after the fork
        self.sockets = sockets
        self.app = app
        self.timeout = timeout
        self.cfg = cfg
        self.log = log
        self.alive = True
        self.booted = False
        self.aborted = False
        self.nr = 0
        self.wsgi: Callable[..., Any] | None = None
        self.max_requests = self._max_requests(cfg)
        #: heartbeat slot in the master's shared board (None when run without an arbiter)
        self.slot: WorkerSlot | None = None
        #: this worker's counters in the master's metrics board (None: metrics are off)
        self.metrics: WorkerMetrics | None = None
        #: the logger's buffered sinks' flush, called from ``notify()`` (None: unbuffered)
        self._flush_logs: Callable[[], None] | None = None
        #: write end of the master's wake-up pipe (set by the arbiter before forking)
        self.master_wakeup_fd: int | None = None
        #: this worker's own wake-up pipe (read end, write end); every signal writes to it
        self.PIPE: tuple[int, int] = (-1, -1)
        self._retirement_requested = False
        #: open connections right after the last accept, and how many accepts in a row
        #: found more than the one before (``should_step_aside``)
        self._open_after_accept = 0
        self._climbing_accepts = 0
        #: the ``--reload`` watcher thread, or None (Gunicorn's name; ``add_extra_file(path)``)
        self.reloader: Any = None
        #: ``max_worker_memory``: the RSS check after requests (None: no limit)
        self._memory = MemoryLimit.from_config(cfg, log)
        #: ``reuse_port``: this worker's own listening sockets (also in ``self.sockets``)
        self.own_sockets: list[Listener] = []

    def __str__(self) -> str:
        return f"<Worker {self.pid}>"

    @staticmethod
    def _max_requests(cfg: Any) -> int:
        limit = int(getattr(cfg, "max_requests", 0) or 0)
        if limit <= 0:
            return sys.maxsize
        jitter = int(getattr(cfg, "max_requests_jitter", 0) or 0)
        return limit + (random.randint(0, jitter) if jitter > 0 else 0)

    # --- the master's side of the contract ------------------------------------------

    @classmethod
    def patch_master(cls, preload: bool) -> None:
        """Called in the master right after the class is resolved (monkey-patching goes here)."""

    # --- lifecycle --------------------------------------------------------------------

    def init_process(self) -> None:
        """In the child, after ``post_fork``: set up, load the app, then ``run()``."""
        # The master's RNG state was copied by fork: reseed so workers differ.
        random.seed()
        self._open_own_sockets()  # before dropping privileges: same uid as the master's
        self._drop_privileges()
        self.PIPE = self._make_pipe()
        self.init_signals()
        # The master blocked its signals across fork (see WorkerSet.spawn_worker): one sent
        # to this worker meanwhile is pending, and is delivered now to the worker's handler.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORK_BLOCKED_SIGNALS)
        self._bind_logger()
        self.notify()
        if getattr(self.cfg, "reload", False):
            from forkhorn.arbiter.reloader import start_reloader

            self.reloader = start_reloader(self.cfg, self.log, self._on_code_change)
        try:
            self.load_wsgi()
        except SystemExit:
            raise
        except BaseException as exc:
            if not getattr(self.cfg, "reload", False):
                log_load_failure(self.log, exc)
                raise SystemExit(APP_LOAD_ERROR) from None
            # Development (--reload): keep the worker up, answer 500 with the traceback,
            # and let the reloader restart it when the broken file is fixed.
            self._serve_load_error(exc)
        self._call_hook("forkhorn_post_worker_init", worker=self)
        self.booted = True
        if self.slot is not None:
            self.slot.set_state(READY)
        self.wake_master()
        try:
            self.run()
            self._retire_own_sockets()
            if self.slot is not None and self.slot.state == DRAIN:
                self.drain_backlog()
        finally:
            self._flush_logs_now()

    def run(self) -> None:
        """Serve until ``self.alive`` is false. Subclasses implement it."""
        raise NotImplementedError

    def load_wsgi(self) -> None:
        self.wsgi = self.app.wsgi()

    def _serve_load_error(self, exc: BaseException) -> None:
        """``--reload`` and the app did not load: answer 500 with what the log says, and
        watch the files involved. A module that failed to import is not in
        ``sys.modules``, so the reloader would not see it being fixed otherwise."""
        log_load_failure(self.log, exc)
        if self.reloader is not None:
            for path in _files_involved(exc):
                self.reloader.add_extra_file(path)
        text = load_failure_report(exc).encode("utf-8", "replace")

        def failed_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
            start_response(
                "500 Internal Server Error",
                [("Content-Type", "text/plain"), ("Content-Length", str(len(text)))],
            )
            return [text]

        self.wsgi = failed_app

    # --- heartbeat and request accounting (hot path: no syscalls) ----------------------

    def notify(self) -> None:
        slot = self.slot
        if slot is not None:
            slot.beat()
        flush_logs = self._flush_logs
        if flush_logs is not None:
            flush_logs()  # buffered access lines / StatsD batch older than a second

    @property
    def tmp(self) -> HeartbeatFile:
        """Gunicorn's heartbeat file object: ``worker.tmp.notify()`` beats, from any thread."""
        return HeartbeatFile(self.slot)

    def request_started(self, method: str, path: str) -> None:
        slot = self.slot
        if slot is not None:
            slot.request_started(method, path)
        metrics = self.metrics
        if metrics is not None:
            metrics.begin()  # locked on a free-threaded build

    def request_finished(self) -> None:
        slot = self.slot
        if slot is not None:
            slot.request_finished(self.nr)
        metrics = self.metrics
        if metrics is not None:
            metrics.end()

    def count_request(self) -> None:
        self.nr += 1
        if self.nr >= self.max_requests and not self._retirement_requested:
            self.request_retirement(f"max_requests ({self.max_requests}) reached")
        memory = self._memory
        if memory is not None and not self._retirement_requested:
            rss = memory.over_limit()  # a clock read; /proc/self/statm at most once a second
            if rss is not None:
                self.log.warning("Worker %s RSS %s is over max_worker_memory %s", self.pid,
                                 format_size(rss), format_size(memory.limit))  # fmt: skip
                self.request_retirement("memory")

    def should_step_aside(self, opened: int) -> bool:
        """After an accept that left ``opened`` connections open: whether the acceptor
        should pause ``ACCEPT_STEP_ASIDE`` seconds before the next one.

        A client opening a pool (wrk, a proxy) sends a burst of long-lived connections, and
        on a machine with few cores the worker that happens to be on a CPU would accept
        the whole burst while its siblings, woken by the kernel for the next connections,
        wait for one: that worker then serves nearly all the traffic. So while this
        worker's open connections climb from one accept to the next (nothing closed in
        between), from the ``STEP_ASIDE_AFTER``-th such accept on, its acceptor pauses and
        frees the CPU. A stream of short connections (closes between a few accepts) is
        not paused, nor is a lone worker: the master publishes its pool size on the
        heartbeat board, so a worker started alone learns of siblings added later (TTIN)
        and of their removal (TTOU).
        """
        climbing = opened > self._open_after_accept
        self._open_after_accept = opened
        if not climbing:
            self._climbing_accepts = 0
            return False
        self._climbing_accepts += 1
        if self._climbing_accepts < STEP_ASIDE_AFTER:
            return False
        slot = self.slot
        return (slot.pool_size() if slot is not None else self.cfg.workers) > 1

    def request_retirement(self, reason: str) -> None:
        """Ask the master for a replacement; keep serving until it sends TERM."""
        if self._retirement_requested:
            return
        self._retirement_requested = True
        if self.slot is None:
            # No master to start a replacement: stop after the current request (Gunicorn).
            self.log.info("Autorestarting worker after current request (%s).", reason)
            self.alive = False
            return
        self.log.info("Worker %s asks to be replaced: %s", self.pid, reason)
        self.slot.set_state(WANTS_RETIREMENT)
        self.wake_master()

    def _bind_logger(self) -> None:
        """Per-process logger state after the fork (pid, request ids, metrics region) and
        the periodic flush of its buffers. A ``logger_class`` without these is left alone."""
        bind = getattr(self.log, "bind_worker", None)
        if bind is not None:
            bind(self)
        if getattr(self.log, "buffered", False):
            self._flush_logs = getattr(self.log, "flush_if_due", None)

    def _flush_logs_now(self) -> None:
        flush = getattr(self.log, "flush", None)
        if flush is not None:
            try:
                flush()
            except Exception:
                pass  # exiting anyway; a log flush must not change the exit status

    def _on_code_change(self, filename: str) -> None:
        self.log.info("Worker reloading: %s modified", filename)
        self.request_retirement(f"{filename} modified")

    def wake_master(self) -> None:
        """Tell the master to look at the board now (rare events: ready, wants retirement)."""
        if self.master_wakeup_fd is None:
            return
        try:
            os.write(self.master_wakeup_fd, b"w")
        except OSError:
            pass  # pipe full (the master will wake anyway) or master gone

    # --- graceful stop: serve what the kernel already queued ---------------------------

    def drain_backlog(self) -> None:
        """Accept and serve every connection already queued on the listeners, then return.

        Only called when the master closed the listeners to new connections (slot DRAIN),
        so the queues only shrink and this ends. Each connection is served as soon as it is
        accepted: the queue is left to the sibling workers draining the same listeners.
        """
        for listener in self.sockets:
            for client, addr in _accept_queued(listener.sock):
                self._serve_queued(listener, client, addr)

    def _open_own_sockets(self) -> None:
        """``reuse_port``: a listening socket of this worker's own next to each shared TCP
        one; it goes first in ``self.sockets``, so worker classes accept on it unchanged."""
        if not getattr(self.cfg, "reuse_port", False):
            return
        from forkhorn.arbiter.listeners import open_worker_listeners

        self.own_sockets = open_worker_listeners(self.sockets, self.cfg, self.log)
        if self.own_sockets:
            self.sockets = [*self.own_sockets, *self.sockets]

    def _retire_own_sockets(self) -> None:
        """Close this worker's own ``reuse_port`` sockets without losing what they queued.

        Closing a listener resets the connections in its accept queue, and its siblings in
        the ``SO_REUSEPORT`` group cannot take them over. So, on every retirement (HUP,
        max_requests, TTOU, WINCH, full stop): new SYNs are dropped (the client retransmits
        and, the socket being closed by then, lands on a sibling), everything queued (and
        any handshake half-way, for ``_HANDSHAKE_GRACE``) is accepted, the sockets are
        closed, and only then are the accepted connections served.
        """
        own, self.own_sockets = self.own_sockets, []
        if not own:
            return
        self.sockets = [listener for listener in self.sockets if listener not in own]
        for listener in own:
            listener.stop_accepting()
        accepted: list[tuple[Listener, socket.socket, Any]] = []
        deadline = time.monotonic() + _HANDSHAKE_GRACE
        while True:
            for listener in own:
                accepted += [(listener, *item) for item in _accept_queued(listener.sock)]
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                select.select([listener.sock for listener in own], [], [], left)
            except (OSError, ValueError):
                break
        for listener in own:
            listener.close(unlink=False)
        for listener, client, addr in accepted:
            self._serve_queued(listener, client, addr)

    def _serve_queued(self, listener: Listener, client: socket.socket, addr: Any) -> None:
        """Serve one connection accepted while stopping; an error ends that one only."""
        self.notify()
        try:
            self.serve_drained(listener, client, addr)
        except Exception:
            self.log.exception("Error serving a queued connection during shutdown")
            client.close()

    def serve_drained(self, listener: Listener, client: socket.socket, addr: Any) -> None:
        """Serve one connection accepted by ``drain_backlog``; workers may override it."""
        from forkhorn.wsgi.handler import Connection, ConnectionHandler

        handler = getattr(self, "handler", None)
        if handler is None:
            handler = ConnectionHandler(self)
            self.handler = handler
        # ``address``, not getsockname(): a worker's own reuse_port socket is closed by now
        handler.serve(Connection(client, addr, listener.address))

    # --- signals ----------------------------------------------------------------------

    @staticmethod
    def _make_pipe() -> tuple[int, int]:
        read_fd, write_fd = os.pipe()
        os.set_blocking(read_fd, False)
        os.set_blocking(write_fd, False)
        return read_fd, write_fd

    def _drain_pipe(self) -> None:
        """Empty the wake-up pipe (every signal writes a byte to it)."""
        try:
            while os.read(self.PIPE[0], 4096):
                pass
        except OSError:
            pass  # EAGAIN: empty

    def init_signals(self) -> None:
        for name in _DEFAULT_SIGNALS:
            signal.signal(getattr(signal, name), signal.SIG_DFL)
        # WINCH: a window resize of the master's terminal must never touch a worker.
        for name in _IGNORED_SIGNALS:
            signal.signal(getattr(signal, name), signal.SIG_IGN)
        signal.signal(signal.SIGTERM, self.handle_exit)
        signal.signal(signal.SIGINT, self.handle_quit)
        signal.signal(signal.SIGQUIT, self.handle_quit)
        signal.signal(signal.SIGUSR1, self.handle_usr1)
        signal.signal(signal.SIGABRT, self.handle_abort)
        self._register_stack_dump()
        signal.set_wakeup_fd(self.PIPE[1])

    def _register_stack_dump(self) -> None:
        """SIGABRT (and SIGSEGV, SIGBUS...) first dump every thread's stack from C, which
        works even when the app is stuck in C code and no Python handler can run; then the
        signal goes on to the previous handler, ``handle_abort``. (``faulthandler.register``
        refuses SIGABRT, so this is ``enable``; called again after the log file is reopened.)
        """
        fileno = self.log.error_fileno()
        if fileno is None:
            return
        try:
            if faulthandler.is_enabled():
                faulthandler.disable()
            faulthandler.enable(file=fileno, all_threads=True)
        except (OSError, ValueError, RuntimeError):
            pass

    def handle_exit(self, signum: int, frame: FrameType | None) -> None:
        self.alive = False

    def handle_quit(self, signum: int, frame: FrameType | None) -> None:
        self.alive = False
        self._call_hook("forkhorn_worker_int", worker=self)
        time.sleep(0.1)
        sys.exit(0)

    def handle_abort(self, signum: int, frame: FrameType | None) -> None:
        self.alive = False
        self.aborted = True
        self._call_hook("forkhorn_worker_abort", worker=self)
        sys.exit(1)

    def handle_usr1(self, signum: int, frame: FrameType | None) -> None:
        self.log.reopen_files()
        self._register_stack_dump()

    # --- helpers ----------------------------------------------------------------------

    def _call_hook(self, name: str, **kwargs: Any) -> None:
        """Run a hook; a raising hook is logged and does not stop the worker."""
        hook = getattr(getattr(self.app, "hook", None), name, None)
        if hook is None:
            return
        try:
            hook(**kwargs)
        except Exception:
            self.log.exception("Exception in %s hook", name.removeprefix("forkhorn_"))

    def _drop_privileges(self) -> None:
        user = getattr(self.cfg, "user", None)
        group = getattr(self.cfg, "group", None)
        if user is None and group is None:
            return
        from forkhorn.arbiter.process import drop_privileges

        drop_privileges(user, group, bool(getattr(self.cfg, "initgroups", False)))


def _accept_queued(sock: socket.socket) -> Iterator[tuple[socket.socket, Any]]:
    """Every connection queued on ``sock``, accepted one at a time as the caller asks for
    the next (non-blocking accepts until EAGAIN)."""
    try:
        sock.setblocking(False)
    except OSError:
        return
    while True:
        try:
            client, addr = sock.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            if exc.errno in ACCEPT_RETRY_ERRNOS:
                continue
            return
        client.setblocking(True)
        yield client, addr


def _files_involved(exc: BaseException | None) -> set[str]:
    """The source files of a failed load: a ``SyntaxError``'s file, and every file in the
    tracebacks along the chain of causes (the app module's own frames among them)."""
    files: set[str] = set()
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        filename = getattr(exc, "filename", None)
        if isinstance(filename, str):
            files.add(filename)
        tb = exc.__traceback__
        while tb is not None:
            files.add(tb.tb_frame.f_code.co_filename)
            tb = tb.tb_next
        exc = exc.__cause__ or exc.__context__
    return {path for path in files if os.path.isfile(path)}
