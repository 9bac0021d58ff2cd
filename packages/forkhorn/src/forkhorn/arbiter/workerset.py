"""The master's worker set: spawn, reap, abort on timeout, and converge on the target.

Theory of operation
-------------------
``manage_workers`` converges: ``num_workers`` healthy workers of the current generation,
while *doomed* ones (an older generation after HUP, or a slot saying WANTS_RETIREMENT after
max_requests or a code change) are retired only when enough *ready* workers remain, so
the replacement always serves before the old worker stops accepting. ``reap_workers``
turns the exit statuses 3/4 into ``HaltServer``; ``murder_workers`` aborts (SIGABRT, stack
dump) a worker whose heartbeat is older than ``timeout`` and SIGKILLs it after a grace.

A mixin of ``Arbiter``: the attributes below are the arbiter's.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import time
from typing import Any

from forkhorn.application import AppImportError, log_load_failure
from forkhorn.arbiter import process
from forkhorn.arbiter.listeners import Listener
from forkhorn.arbiter.pidfile import Pidfile
from forkhorn.arbiter.systemd import Notifier
from forkhorn.instrument.master import MasterInstruments
from forkhorn.logging import Logger
from forkhorn.workers.base import (
    APP_LOAD_ERROR,
    FORK_BLOCKED_SIGNALS,
    WORKER_BOOT_ERROR,
    Worker,
)
from forkhorn.workers.heartbeat import READY, WANTS_RETIREMENT, HeartbeatBoard, WorkerSlot

ABORT_GRACE = 2.0  # seconds between SIGABRT (stack dump) and SIGKILL for a timed-out worker
HANDLED_SIGNALS = ("HUP", "QUIT", "INT", "TERM", "TTIN", "TTOU", "USR1", "USR2", "WINCH")


class HaltServer(Exception):
    def __init__(self, reason: str, exit_status: int = 1) -> None:
        super().__init__(reason)
        self.reason = reason
        self.exit_status = exit_status


class WorkerProcess:
    """The master's record of one worker process."""

    # A plain class, not a dataclass: a dataclass compiles generated methods at import time.
    def __init__(self, pid: int, worker: Worker, slot: WorkerSlot, age: int, generation: int):
        self.pid = pid
        self.worker = worker
        self.slot = slot
        self.age = age
        self.generation = generation
        self.terminating = False
        self.aborted_at: float | None = None
        self.kill_at: float | None = None  # SIGKILL deadline (after TERM or ABRT)

    def __repr__(self) -> str:
        return f"WorkerProcess(pid={self.pid}, age={self.age}, generation={self.generation})"

    @property
    def ready(self) -> bool:
        return self.slot.state in (READY, WANTS_RETIREMENT)


class WorkerSet:
    app: Any
    cfg: Any
    log: Logger
    pid: int
    master_name: str
    listeners: list[Listener]
    workers: dict[int, WorkerProcess]
    num_workers: int
    generation: int
    worker_age: int
    reexec_pid: int
    pidfile: Pidfile | None
    board: HeartbeatBoard | None
    instruments: MasterInstruments
    notifier: Notifier
    _wake_r: int
    _wake_w: int
    _stopped: bool
    _ready_pending: bool

    @property
    def worker_class(self) -> type[Worker]:
        raise NotImplementedError

    @property
    def proc_name(self) -> str:
        raise NotImplementedError

    def call_hook(self, name: str, fatal: bool = False, **kwargs: Any) -> None:
        raise NotImplementedError

    def manage_workers(self) -> None:
        """Converge: spawn up to ``num_workers`` healthy workers, retire the doomed ones only
        while at least ``num_workers`` ready workers remain."""
        if self._stopped:
            return
        if self.board is not None:
            # what the workers read to know whether they have siblings (should_step_aside);
            # here, where num_workers is acted on, it also follows a hook's change
            self.board.set_pool_size(self.num_workers)
        live = [w for w in self.workers.values() if not w.terminating]
        doomed = [
            w for w in live if w.generation < self.generation or w.slot.state == WANTS_RETIREMENT
        ]
        healthy = sorted((w for w in live if w not in doomed), key=lambda w: w.age)
        for _ in range(self.num_workers - len(healthy)):
            healthy.append(self.spawn_worker())
        for extra in healthy[: max(0, len(healthy) - self.num_workers)]:
            self.retire(extra)
        ready = sum(1 for w in live if w.ready and not w.terminating)
        for old in sorted(doomed, key=lambda w: w.age):
            if not old.ready:
                self.retire(old)
            elif ready - 1 >= self.num_workers:
                self.retire(old)
                ready -= 1
        self._maybe_notify_ready()

    def _maybe_notify_ready(self) -> None:
        if not self._ready_pending:
            return
        current = [w for w in self.workers.values() if not w.terminating]
        if all(w.generation == self.generation and w.ready for w in current) and len(
            current
        ) >= min(self.num_workers, 1):
            self._ready_pending = False
            self.notifier.notify(
                f"READY=1\nSTATUS=forkhorn {self.master_name.lower()}: {len(current)} workers"
            )

    def spawn_worker(self) -> WorkerProcess:
        assert self.board is not None
        self.worker_age += 1
        slot = self.board.allocate()
        timeout = self.cfg.timeout / 2.0 if self.cfg.timeout else 1.0
        worker = self.worker_class(
            self.worker_age, self.pid, self.listeners, self.app, timeout, self.cfg, self.log
        )
        worker.slot = slot
        worker.metrics = self.instruments.region(slot)
        worker.master_wakeup_fd = self._wake_w
        self.call_hook("pre_fork", server=self, worker=worker)
        # A signal reaching the child before the worker installs its own handlers would run
        # the master's handler there and be lost (a TERM then costs graceful_timeout). Keep
        # them blocked across fork; the worker unblocks them once its handlers are in place.
        signal.pthread_sigmask(signal.SIG_BLOCK, FORK_BLOCKED_SIGNALS)
        try:
            pid = os.fork()
            if pid == 0:
                self.instruments.close_in_child()
                self._run_worker(worker)  # never returns
        finally:
            if pid != 0:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, FORK_BLOCKED_SIGNALS)
        worker.pid = pid
        self.board.set_pid(slot, pid)
        record = WorkerProcess(pid, worker, slot, self.worker_age, self.generation)
        self.workers[pid] = record
        return record

    def _run_worker(self, worker: Worker) -> None:
        status = 1
        try:
            worker.pid = os.getpid()
            os.close(self._wake_r)
            for name in HANDLED_SIGNALS:  # until the worker installs its own handlers
                signal.signal(getattr(signal, "SIG" + name), signal.SIG_DFL)
            process.set_process_title(f"forkhorn: worker [{self.proc_name}]")
            self.log.info("Booting worker with pid: %s", worker.pid)
            self.call_hook("post_fork", server=self, worker=worker)
            worker.init_process()
            status = 0
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException as exc:
            if isinstance(exc, AppImportError):  # a worker class loading the app its own way
                log_load_failure(self.log, exc)
                status = APP_LOAD_ERROR
            else:
                self.log.exception("Exception in worker process")
                status = WORKER_BOOT_ERROR if not worker.booted else 1
        finally:
            try:
                self.log.info("Worker exiting (pid: %s)", worker.pid)
                self.call_hook("worker_exit", server=self, worker=worker)
            finally:
                for stream in (sys.stdout, sys.stderr):
                    try:
                        stream.flush()
                    except Exception:
                        pass
                os._exit(status)

    def retire(self, record: WorkerProcess, sig: int = signal.SIGTERM) -> None:
        """Ask a worker to stop gracefully; SIGKILL if still there after graceful_timeout."""
        record.terminating = True
        record.kill_at = time.monotonic() + self.cfg.graceful_timeout
        self.kill_worker(record.pid, sig)

    def kill_workers(self, sig: int) -> None:
        for pid in list(self.workers):
            self.kill_worker(pid, sig)

    def kill_worker(self, pid: int, sig: int) -> None:
        """Send ``sig`` to the worker ``pid``, Gunicorn's name (hooks call it, from threads
        of their own too). A worker already gone is reaped, hooks and all, by the loop."""
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass  # already exited; reaped on the next tick

    def reap_workers(self, halt_on_boot_error: bool = True) -> None:
        failure: HaltServer | None = None
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                raise
            if pid == 0:
                break
            if pid == self.reexec_pid:
                self.reexec_pid = 0
                self.log.info("Master (new) exited: %s", _describe(status))
                if self.pidfile is not None:
                    self.pidfile.rename(self.cfg.pidfile)
                continue
            record = self.workers.pop(pid, None)
            if record is None:
                continue
            if self.board is not None:
                self.board.free(record.slot)
            self.instruments.worker_exited(record)
            code = os.waitstatus_to_exitcode(status)
            if code == WORKER_BOOT_ERROR and failure is None:
                failure = HaltServer("Worker failed to boot.", WORKER_BOOT_ERROR)
            elif code == APP_LOAD_ERROR and failure is None:
                failure = HaltServer("App failed to load.", APP_LOAD_ERROR)
            if code == 0 or (record.terminating and code in (-signal.SIGTERM, 1)):
                self.log.info("Worker (pid:%s) exited: %s", pid, _describe(status))
            else:
                self.log.error("Worker (pid:%s) %s", pid, _describe_failure(status))
            self.call_hook("child_exit", server=self, worker=record.worker)
        if failure is not None and halt_on_boot_error and not self._stopped:
            raise failure

    def murder_workers(self) -> None:
        """Abort workers whose heartbeat is older than ``timeout``; kill them after a grace."""
        now = time.monotonic()
        for record in list(self.workers.values()):
            if record.kill_at is not None and now >= record.kill_at:
                record.kill_at = None
                self.log.warning("Killing worker (pid:%s) with SIGKILL", record.pid)
                self.kill_worker(record.pid, signal.SIGKILL)
            if not self.cfg.timeout or record.aborted_at is not None:
                continue
            view = record.slot.read()
            if now - view.last_beat <= self.cfg.timeout:
                continue
            record.aborted_at = now
            self.instruments.worker_timed_out(record)
            if view.in_flight:
                self.log.critical(
                    "WORKER TIMEOUT (pid:%s) serving %s for %.1f s; thread stacks follow",
                    record.pid,
                    view.request_label,
                    now - view.request_start,
                )
            else:
                self.log.critical("WORKER TIMEOUT (pid:%s); thread stacks follow", record.pid)
            self.kill_worker(record.pid, signal.SIGABRT)
            record.kill_at = now + ABORT_GRACE


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"code {os.waitstatus_to_exitcode(status)}"


def _describe_failure(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        text = f"was sent {signal.Signals(sig).name}!"
        return text + (" Perhaps out of memory?" if sig == signal.SIGKILL else "")
    return f"exited with code {os.waitstatus_to_exitcode(status)}"
