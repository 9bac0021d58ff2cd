"""The master process: keeps the right number of healthy workers on the listening sockets.

Theory of operation
-------------------
Signal handlers only append the signal to a short queue and write a byte to a wake-up pipe.
The loop sleeps in ``select`` on that pipe (at most a second), then handles queued signals
(one ``handle_<sig>`` method each), reaps exited children (``waitpid(WNOHANG)``), checks the
heartbeat board, and converges the worker set (``manage_workers``). Workers also write to
the pipe when their slot changes state (ready, wants retirement), so replacements happen at
once, not on the next tick.

Invariants
----------
* A worker is retired (TERM) only when enough *ready* workers remain: HUP, max_requests and
  code reload start the replacement first. Listeners stay open throughout, so no client is
  refused or reset by a reload.
* A full graceful stop first closes the listeners to *new* connections (when this master is
  their only user), marks every slot DRAIN and then sends TERM: the workers serve what the
  kernel already queued before they exit.
* A worker exiting with ``WORKER_BOOT_ERROR``/``APP_LOAD_ERROR`` halts the master with exit
  status 3/4 instead of forking forever.
* A hook that raises is logged with its traceback and the master goes on, except
  ``on_starting`` and ``when_ready``, whose failure stops start-up (exit status 1).
* ``run()`` returns 0 after a clean stop and raises ``SystemExit(status)`` otherwise; forked
  children (workers, the USR2 exec child) never return from it.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from forkhorn import __version__
from forkhorn.application import log_load_failure
from forkhorn.arbiter import process
from forkhorn.arbiter.listeners import Listener, ListenerError, create_listeners, inheritable_env
from forkhorn.arbiter.pidfile import Pidfile, PidfileError
from forkhorn.arbiter.systemd import Notifier
from forkhorn.arbiter.workerset import HANDLED_SIGNALS, HaltServer, WorkerProcess, WorkerSet
from forkhorn.instrument.master import MasterInstruments
from forkhorn.logging import Logger, make_logger
from forkhorn.workers.base import APP_LOAD_ERROR, Worker
from forkhorn.workers.heartbeat import DRAIN, HeartbeatBoard

TICK = 1.0
ENV_MASTER_PID = "FORKHORN_PID"


class _Stop(Exception):
    """Leave the main loop; ``graceful`` says how the workers were told to stop."""


class Arbiter(WorkerSet):
    def __init__(
        self, app: Any, worker_class: type[Worker] | None = None, log: Logger | None = None
    ) -> None:
        self.app = app
        self.cfg = app.cfg
        self.log: Logger = log if log is not None else make_logger(self.cfg)
        self._worker_class = worker_class
        self.pid = os.getpid()
        self.master_pid = 0  # the old master's pid while we are its USR2 successor
        self.reexec_pid = 0  # our USR2 successor, while it runs
        self.master_name = "Master"
        self.workers: dict[int, WorkerProcess] = {}
        self.listeners: list[Listener] = []
        self.num_workers = int(self.cfg.workers)
        self.generation = 1
        self.worker_age = 0
        self.pidfile: Pidfile | None = None
        self.board: HeartbeatBoard | None = None
        #: metrics endpoint, per-worker counters, StatsD gauge (issue 9)
        self.instruments = MasterInstruments(self)
        self.notifier = Notifier(self.log)
        self.notify_socket = os.environ.get("NOTIFY_SOCKET") or self.notifier.address
        self._signal_queue: list[int] = []
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
        self._stopped = False
        self._ready_pending = True  # send READY=1 once the wanted workers are ready
        self._next_watchdog = 0.0
        # The re-exec'd master starts where we were started, not in ``chdir``: the command
        # line's relative paths are relative to that directory.
        cwd = getattr(app, "start_cwd", None) or os.getcwd()
        self.start_ctx = {"args": [sys.executable, *sys.orig_argv[1:]], "cwd": cwd}

    # --- public entry point -------------------------------------------------------------

    @property
    def worker_class(self) -> type[Worker]:
        if self._worker_class is None:
            cls = getattr(self.app, "worker_class", None)
            if cls is None:
                # Not resolved by the CLI (an embedding, a test): resolve through the
                # registry like the CLI does, and let the class patch the master.
                cls = self.app.resolve_worker_class()
                patch_master = getattr(cls, "patch_master", None)
                if patch_master is not None:
                    patch_master(bool(self.cfg.preload_app))
            self._worker_class = cls
        return self._worker_class

    # Gunicorn's names, which hooks in existing config files use (``server.LISTENERS[0]``
    # to learn the port of a ``:0`` bind, ``len(server.WORKERS)``; ``kill_worker`` and
    # ``timeout`` too).
    @property
    def LISTENERS(self) -> list[Listener]:
        return self.listeners

    @property
    def WORKERS(self) -> dict[int, Worker]:
        """pid -> the worker object, as Gunicorn's (hooks get the same objects)."""
        return {pid: process.worker for pid, process in self.workers.items()}

    @property
    def proc_name(self) -> str:
        return str(getattr(self.cfg, "proc_name", None) or self.app.app_uri or "forkhorn")

    @property
    def timeout(self) -> float:
        """The ``timeout`` setting, as Gunicorn's arbiter has it."""
        return float(self.cfg.timeout)

    def run(self) -> int:
        status = self._run()
        if status:
            raise SystemExit(status)
        return 0

    def _run(self) -> int:
        try:
            failed = self.start()
            if failed is not None:
                return failed
            self.manage_workers()
            while True:
                self._tick()
        except _Stop:
            return self.halt()
        except HaltServer as halt:
            return self.halt(halt.reason, halt.exit_status)
        except KeyboardInterrupt:
            self.stop(graceful=False)
            return self.halt()
        except Exception:
            self.log.exception("Unhandled exception in main loop")
            self.stop(graceful=False)
            return self.halt("Unhandled exception in main loop", 1)

    # --- start-up -----------------------------------------------------------------------

    def start(self) -> int | None:
        """Everything before the first fork. Returns an exit status if start-up failed."""
        cfg = self.cfg
        if cfg.reload and cfg.preload_app:
            self.log.error(
                "--reload cannot be used with --preload: the app is loaded once in the master, "
                "so new workers would fork the old code. Drop one of the two settings."
            )
            return 1
        if cfg.daemon and ENV_MASTER_PID not in os.environ:
            process.daemonize(keep_stdio=bool(cfg.enable_stdio_inheritance))
        process.apply_start_options(cfg)
        self.pid = os.getpid()
        self.log.info("Starting forkhorn %s", __version__)
        if ENV_MASTER_PID in os.environ:
            self.master_pid = int(os.environ.pop(ENV_MASTER_PID))
            self.master_name = "Master.2"
        if cfg.pidfile:
            name = cfg.pidfile + (".2" if self.master_pid else "")
            self.pidfile = Pidfile(name)
            try:
                self.pidfile.create(self.pid)
            except (PidfileError, OSError) as exc:
                self.pidfile = None
                self.log.error("%s", exc)
                return 1
        self.call_hook("on_starting", fatal=True, server=self)
        self.init_signals()
        try:
            self.listeners = create_listeners(cfg, self.log)
        except ListenerError as exc:
            self.log.error("%s", exc)
            self._remove_pidfile()
            return 1
        self.log.info("Listening at: %s (%s)", ",".join(map(str, self.listeners)), self.pid)
        self.log.info("Using worker: %s", cfg.worker_class)
        if cfg.preload_app:
            try:
                self.app.wsgi()
            except Exception as exc:
                log_load_failure(self.log, exc)
                raise HaltServer("App failed to load.", APP_LOAD_ERROR) from None
        _ = self.worker_class  # resolve now: an unknown class fails start-up, not every fork
        self.board = HeartbeatBoard()
        self._set_title()
        self.call_hook("nworkers_changed", server=self, new_value=self.num_workers, old_value=None)
        self.call_hook("when_ready", fatal=True, server=self)
        return None

    def init_signals(self) -> None:
        for name in HANDLED_SIGNALS:
            signal.signal(getattr(signal, "SIG" + name), self._queue_signal)
        signal.signal(signal.SIGCHLD, self._wake_on_signal)

    def _queue_signal(self, signum: int, frame: Any) -> None:
        if len(self._signal_queue) < 5:  # a burst of the same signal collapses (Gunicorn)
            self._signal_queue.append(signum)
        self._wake()

    def _wake_on_signal(self, signum: int, frame: Any) -> None:
        self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b".")
        except OSError:
            pass

    # --- the loop -----------------------------------------------------------------------

    def _tick(self) -> None:
        self.maybe_promote_master()
        while self._signal_queue:
            signum = self._signal_queue.pop(0)
            name = signal.Signals(signum).name
            self.log.info("Handling signal: %s", name[3:].lower())
            getattr(self, "handle_" + name[3:].lower())()
        self.sleep(self._sleep_time())
        self.reap_workers()
        self.murder_workers()
        self.manage_workers()
        self.instruments.tick()
        self._watchdog()

    def _sleep_time(self) -> float:
        timeout = TICK
        if self.notifier.watchdog_interval:
            timeout = min(timeout, max(0.0, self._next_watchdog - time.monotonic()))
        return timeout

    def sleep(self, timeout: float) -> None:
        if self._signal_queue:
            return
        metrics = self.instruments
        readable, writable, _ = select.select(
            [self._wake_r, *metrics.read_fds()], metrics.write_fds(), [], timeout
        )
        metrics.handle(readable, writable)
        if self._wake_r in readable:
            try:
                while os.read(self._wake_r, 4096):
                    pass
            except BlockingIOError:
                pass

    def _watchdog(self) -> None:
        interval = self.notifier.watchdog_interval
        if interval and time.monotonic() >= self._next_watchdog:
            self.notifier.notify("WATCHDOG=1")
            self._next_watchdog = time.monotonic() + interval

    # --- signals ------------------------------------------------------------------------

    def handle_chld(self) -> None:
        """Wakes the loop only; reaping happens every tick."""

    def handle_hup(self) -> None:
        self.log.info("Hang up: %s", self.master_name)
        self.reload()

    def handle_term(self) -> None:
        raise _Stop()

    def handle_int(self) -> None:
        self.stop(graceful=False)
        raise _Stop()

    def handle_quit(self) -> None:
        self.stop(graceful=False)
        raise _Stop()

    def handle_ttin(self) -> None:
        self._set_num_workers(self.num_workers + 1)
        self.manage_workers()

    def handle_ttou(self) -> None:
        if self.num_workers <= 1:
            return
        self._set_num_workers(self.num_workers - 1)
        self.manage_workers()

    def handle_usr1(self) -> None:
        self.log.reopen_files()
        self.kill_workers(signal.SIGUSR1)

    def handle_usr2(self) -> None:
        self.reexec()

    def handle_winch(self) -> None:
        # Gunicorn honours WINCH only when daemonized, so the upgrade dance fails under
        # systemd and in containers. Our rule: ignore it only when it may be a terminal
        # resize, i.e. we are in the foreground process group of a controlling terminal.
        if process.winch_may_be_terminal_resize():
            self.log.debug("SIGWINCH ignored: in the foreground of a terminal (a resize)")
            return
        self.log.info("Gracefully stopping the workers of %s (WINCH)", self.master_name)
        self._set_num_workers(0)
        self.manage_workers()

    def _set_num_workers(self, value: int) -> None:
        old, self.num_workers = self.num_workers, value
        if old != value:
            self.call_hook("nworkers_changed", server=self, new_value=value, old_value=old)

    # --- reload (HUP) and re-exec (USR2) ------------------------------------------------

    def reload(self) -> None:
        self.notifier.notify(f"RELOADING=1\nMONOTONIC_USEC={time.monotonic_ns() // 1000}")
        old_binds = list(self.cfg.bind or [])
        try:
            self.app.reload()
            self.cfg = self.app.cfg
            self.log.setup(self.cfg)
            if self.cfg.preload_app:
                self.app.wsgi()
        except Exception:
            self.log.exception("Reload failed; keeping the running workers and configuration")
            self.notifier.notify("READY=1")
            return
        if list(self.cfg.bind or []) != old_binds:
            self._rebind()
        self.call_hook("on_reload", server=self)
        self._set_num_workers(int(self.cfg.workers))
        self.generation += 1
        self._ready_pending = True
        self._set_title()
        self.manage_workers()

    def _rebind(self) -> None:
        try:
            new = create_listeners(self.cfg, self.log)
        except ListenerError as exc:
            self.log.error("Keeping the old listeners: %s", exc)
            return
        for listener in self.listeners:
            listener.close(unlink=self._sole_owner())
        self.listeners = new
        self.log.info("Listening at: %s (%s)", ",".join(map(str, self.listeners)), self.pid)

    def reexec(self) -> None:
        if self.reexec_pid:
            self.log.warning("USR2 signal ignored. Child exists.")
            return
        if self.master_pid:
            self.log.warning("USR2 signal ignored. Parent exists.")
            return
        master_pid = os.getpid()
        pid = os.fork()
        if pid:
            self.reexec_pid = pid
            if self.pidfile is not None:
                self.pidfile.rename(self.cfg.pidfile + ".oldbin")
            return
        try:
            self.call_hook("pre_exec", server=self)
            environ = dict(os.environ)
            environ.update(inheritable_env(self.listeners))
            environ[ENV_MASTER_PID] = str(master_pid)
            if self.notify_socket:
                environ["NOTIFY_SOCKET"] = self.notify_socket
            for listener in self.listeners:
                os.set_inheritable(listener.fileno(), True)
            os.chdir(str(self.start_ctx["cwd"]))
            args = list(self.start_ctx["args"])
            os.execve(args[0], args, environ)
        except BaseException:
            self.log.exception("Re-exec of the master failed")
        finally:
            os._exit(1)

    def maybe_promote_master(self) -> None:
        if not self.master_pid or self.master_pid == os.getppid():
            return
        self.log.info("Master has been promoted.")
        self.master_name = "Master"
        self.master_pid = 0
        if self.pidfile is not None:
            self.pidfile.rename(self.cfg.pidfile)
        self.notifier.notify(f"MAINPID={self.pid}")
        self._set_title()

    # --- stopping -----------------------------------------------------------------------

    def _sole_owner(self) -> bool:
        """No other master (USR2 predecessor or successor) uses our sockets."""
        return self.reexec_pid == 0 and self.master_pid == 0

    def stop(self, graceful: bool = True) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.notifier.notify("STOPPING=1")
        drain = graceful and self._sole_owner() and all(lsn.owned for lsn in self.listeners)
        if drain:
            for listener in self.listeners:
                listener.stop_accepting()
            for record in self.workers.values():
                record.slot.set_state(DRAIN)
        sig = signal.SIGTERM if graceful else signal.SIGQUIT
        for record in list(self.workers.values()):
            record.terminating = True
            self.kill_worker(record.pid, sig)
        for listener in self.listeners:
            listener.close(unlink=self._sole_owner())
        deadline = time.monotonic() + (self.cfg.graceful_timeout if graceful else 1.0)
        while self.workers and time.monotonic() < deadline:
            self.sleep(0.1)
            self.reap_workers(halt_on_boot_error=False)
        if self.workers:
            self.log.warning("Killing %d worker(s) still running", len(self.workers))
            self.kill_workers(signal.SIGKILL)
            deadline = time.monotonic() + 5.0
            while self.workers and time.monotonic() < deadline:
                self.sleep(0.05)
                self.reap_workers(halt_on_boot_error=False)

    def halt(self, reason: str | None = None, exit_status: int = 0) -> int:
        self.stop()
        say: Callable[..., None] = self.log.info if exit_status == 0 else self.log.error
        say("Shutting down: %s", self.master_name)
        if reason:
            say("Reason: %s", reason)
        self._remove_pidfile()
        self.call_hook("on_exit", server=self)
        self.instruments.close()
        flush = getattr(self.log, "flush", None)  # a user's logger_class may not have it
        if flush is not None:
            flush()
        return exit_status

    def _remove_pidfile(self) -> None:
        if self.pidfile is not None:
            self.pidfile.unlink()

    # --- helpers ------------------------------------------------------------------------

    def call_hook(self, name: str, fatal: bool = False, **kwargs: Any) -> None:
        """Call ``forkhorn_<name>``; log a failure, stop start-up if ``fatal``."""
        try:
            getattr(self.app.hook, "forkhorn_" + name)(**kwargs)
        except Exception:
            self.log.exception("Exception in %s hook", name)
            if fatal:
                raise HaltServer(f"the {name} hook failed", 1) from None

    def _set_title(self) -> None:
        process.set_process_title(f"forkhorn: {self.master_name.lower()} [{self.proc_name}]")
