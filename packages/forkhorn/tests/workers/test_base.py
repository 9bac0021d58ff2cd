"""The worker contract (``forkhorn.workers.base``) and its heartbeat board."""

from __future__ import annotations

import io
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from forkhorn.arbiter.listeners import Listener
from forkhorn.config import Config
from forkhorn.instrument import board as board_module
from forkhorn.instrument.board import LockedWorkerMetrics, MetricsBoard
from forkhorn.logging import Logger
from forkhorn.workers.base import APP_LOAD_ERROR, WORKER_BOOT_ERROR, Worker
from forkhorn.workers.heartbeat import (
    BOOTING,
    DRAIN,
    READY,
    WANTS_RETIREMENT,
    HeartbeatBoard,
)
from worker_servers import Server, start_server

__all__ = ["start_server"]


class _App:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.hook = None

    def wsgi(self) -> Any:
        if self.fail:
            raise ImportError("broken app")
        return lambda environ, start_response: [b""]


class _RecordingWorker(Worker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.served: list[bytes] = []

    def run(self) -> None:
        pass

    def serve_drained(self, listener: Listener, client: socket.socket, addr: Any) -> None:
        client.settimeout(2)
        self.served.append(client.recv(100))
        client.close()


def make_worker(
    cls: type[Worker] = _RecordingWorker,
    sockets: list[Listener] | None = None,
    app: Any = None,
    **settings: Any,
) -> Worker:
    cfg = Config()
    for name, value in settings.items():
        cfg.set(name, value)
    return cls(1, os.getpid(), sockets or [], app or _App(), 15.0, cfg, Logger(cfg))


def test_exit_codes_are_gunicorns():
    assert (WORKER_BOOT_ERROR, APP_LOAD_ERROR) == (3, 4)


def test_contract_attributes():
    worker = make_worker()
    for name in (
        "pid",
        "ppid",
        "age",
        "sockets",
        "app",
        "cfg",
        "log",
        "timeout",
        "alive",
        "booted",
        "aborted",
        "nr",
        "max_requests",
        "wsgi",
        "tmp",
        "reloader",
    ):
        assert hasattr(worker, name), name
    assert worker.alive and not worker.booted and worker.nr == 0
    Worker.patch_master(preload=False)  # default: no-op


def test_max_requests_with_jitter_stays_in_range():
    values = {make_worker(max_requests=100, max_requests_jitter=10).max_requests for _ in range(50)}
    assert values <= set(range(100, 111)) and len(values) > 1
    assert make_worker().max_requests > 10**9  # 0 disables


def test_heartbeat_and_request_tracking_write_the_slot():
    board = HeartbeatBoard(capacity=4)
    worker = make_worker()
    worker.slot = board.allocate(pid=123)
    assert worker.slot.read().state == BOOTING
    before = worker.slot.read().last_beat
    time.sleep(0.01)
    worker.notify()
    assert worker.slot.read().last_beat > before
    worker.request_started("GET", "/slow?x=1")
    view = worker.slot.read()
    assert view.in_flight and view.request_label == "GET /slow?x=1" and view.pid == 123
    worker.request_finished()
    worker.count_request()
    assert not worker.slot.read().in_flight
    assert [v.index for v in board.views()] == [worker.slot.index]


def test_worker_tmp_beats_the_slot_as_gunicorns_heartbeat_file():
    board = HeartbeatBoard(capacity=1)
    worker = make_worker()
    worker.slot = board.allocate()
    before = worker.slot.last_beat()
    time.sleep(0.01)
    beater = threading.Thread(target=worker.tmp.notify)  # hooks beat from their threads
    beater.start()
    beater.join()
    assert worker.slot.last_beat() > before
    assert abs(worker.tmp.last_update() - time.time()) < 0.5  # wall clock, as st_ctime
    time.sleep(0.3)  # no beat meanwhile: last_update() stays at the beat, not at now
    assert 0.25 < time.time() - worker.tmp.last_update() < 1.0
    with pytest.raises(io.UnsupportedOperation, match="shared memory"):
        worker.tmp.fileno()
    worker.tmp.close()
    make_worker().tmp.notify()  # no master, no slot: nothing to beat, no error


def test_the_request_label_follows_every_change_of_request():
    slot = HeartbeatBoard(capacity=1).allocate()
    for method, path in [("GET", "/a"), ("GET", "/a"), ("GET", "/b"), ("POST", "/b"),
                         ("GET", "/a-much-longer-path"), ("GET", "/a")]:  # fmt: skip
        slot.request_started(method, path)
        assert slot.read().request_label == f"{method} {path}"


def test_an_acceptor_steps_aside_while_it_gains_connections_and_has_siblings():
    board = HeartbeatBoard(capacity=2)
    worker = make_worker(workers=1)
    worker.slot = board.allocate()
    board.set_pool_size(1)
    assert not any(worker.should_step_aside(n) for n in range(1, 10))  # alone
    board.set_pool_size(2)  # TTIN: a sibling now, though the worker started alone
    # A pool opening: ten accepts in a row, each leaving one more connection open (after
    # some had closed before). It pauses from the fourth on.
    pauses = [worker.should_step_aside(n) for n in range(5, 15)]
    assert pauses == [False] * 4 + [True] * 6
    # Short connections: an event loop accepts three in a row at each wake-up, and some
    # close in between; 4,000 against 12,000 req/s when each wake-up paused.
    opened = 14
    for _ in range(20):
        opened -= 3
        assert not any(worker.should_step_aside(opened + n) for n in (1, 2, 3))
        opened += 3
    board.set_pool_size(1)  # TTOU: alone again
    assert not any(worker.should_step_aside(opened + n) for n in range(1, 10))


def test_the_master_never_reads_a_beat_half_written():
    """A worker process beating as fast as it can while the master reads its slot: every
    read is a real beat. (``struct.pack_into`` zeroes a field before copying it in, so
    the master once read 0.0 mid-write and aborted a healthy worker as timed out.)"""
    board = HeartbeatBoard(capacity=2)
    slot = board.allocate()
    started = slot.last_beat()
    pid = os.fork()
    if pid == 0:  # the worker
        try:
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                slot.beat()
                slot.request_started("GET", "/")
                slot.request_finished(1)
        finally:
            os._exit(0)
    try:
        reads = 0
        while reads < 200_000 and not os.waitpid(pid, os.WNOHANG)[0]:
            assert slot.last_beat() >= started
            view = slot.read()
            assert view.last_beat >= started and view.requests in (0, 1)
            reads += 1
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass  # already exited and reaped
    assert reads > 1000


def test_request_counters_take_a_free_threaded_regions_lock(monkeypatch):
    """Without a GIL, gthread's threads share a metrics region: the worker's in-flight
    counters must go through the region's lock, never around it."""
    monkeypatch.setattr(board_module, "_gil_enabled", lambda: False)
    worker = make_worker()
    worker.metrics = MetricsBoard(capacity=1).region(0)
    assert isinstance(worker.metrics, LockedWorkerMetrics)
    counted = threading.Event()

    def count() -> None:
        worker.request_started("GET", "/")
        worker.request_finished()
        counted.set()

    with worker.metrics._lock:
        thread = threading.Thread(target=count)
        thread.start()
        assert not counted.wait(0.2)  # waiting for the lock the test holds
    assert counted.wait(5)
    thread.join(5)


def test_count_request_asks_for_retirement_and_wakes_the_master():
    board = HeartbeatBoard(capacity=2)
    read_fd, write_fd = os.pipe()
    try:
        worker = make_worker(max_requests=2)
        worker.slot = board.allocate()
        worker.master_wakeup_fd = write_fd
        worker.slot.set_state(READY)
        worker.count_request()
        assert worker.slot.state == READY
        worker.count_request()
        assert worker.slot.state == WANTS_RETIREMENT
        assert worker.alive, "keeps serving until the master sends TERM"
        assert os.read(read_fd, 10) == b"w"
    finally:
        os.close(read_fd)
        os.close(write_fd)


def test_without_a_master_max_requests_stops_the_worker():
    worker = make_worker(max_requests=1)
    worker.count_request()
    assert not worker.alive


def test_board_slots_are_reused_and_bounded():
    board = HeartbeatBoard(capacity=2)
    first, second = board.allocate(), board.allocate()
    with pytest.raises(RuntimeError):
        board.allocate()
    board.free(first)
    assert board.allocate().index == first.index
    assert second.read().state == BOOTING


def test_drain_backlog_serves_every_queued_connection():
    listen = socket.socket()
    listen.bind(("127.0.0.1", 0))
    listen.listen(8)
    listener = Listener(listen, owned=True)
    clients = []
    for i in range(3):
        client = socket.create_connection(listen.getsockname(), timeout=2)
        client.sendall(b"req%d" % i)
        clients.append(client)
    worker = make_worker(sockets=[listener])
    assert isinstance(worker, _RecordingWorker)
    worker.drain_backlog()
    assert sorted(worker.served) == [b"req0", b"req1", b"req2"]
    for client in clients:
        client.close()
    listen.close()


class _FailingFirstWorker(_RecordingWorker):
    def serve_drained(self, listener: Listener, client: socket.socket, addr: Any) -> None:
        if not self.served:
            self.served.append(b"failed")
            raise OSError("the first queued connection breaks")
        super().serve_drained(listener, client, addr)


def _ended(client: socket.socket) -> bool:
    try:
        return client.recv(10) == b""
    except ConnectionResetError:
        return True  # closed with its request unread


def test_drain_backlog_goes_on_after_a_connection_fails():
    listen = socket.socket()
    listen.bind(("127.0.0.1", 0))
    listen.listen(8)
    listener = Listener(listen, owned=True)
    clients = []
    for i in range(3):
        client = socket.create_connection(listen.getsockname(), timeout=2)
        client.sendall(b"req%d" % i)
        clients.append(client)
    worker = make_worker(_FailingFirstWorker, sockets=[listener])
    assert isinstance(worker, _FailingFirstWorker)
    worker.drain_backlog()
    assert worker.served[0] == b"failed" and len(worker.served) == 3
    # the connection that failed was closed by the worker too: every client sees the end
    assert all(_ended(client) for client in clients)
    for client in clients:
        client.close()
    listen.close()


def _exit_status_of(worker: Worker) -> int:
    pid = os.fork()
    if pid == 0:
        status = 0
        try:
            worker.init_process()
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            status = 99
        os._exit(status)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_init_process_exits_app_load_error_when_the_app_fails():
    assert _exit_status_of(make_worker(app=_App(fail=True))) == APP_LOAD_ERROR


def test_init_process_marks_ready_then_runs_then_drains():
    board = HeartbeatBoard(capacity=2)
    worker = make_worker()
    worker.slot = board.allocate()
    assert _exit_status_of(worker) == 0
    assert worker.slot.state == READY
    worker.slot.set_state(DRAIN)
    assert _exit_status_of(worker) == 0


@pytest.mark.parametrize("worker_class", ["sync", "gthread"])
def test_the_worker_freezes_what_it_loaded_before_serving(
    start_server: Callable[..., Server], worker_class: str
) -> None:
    server = start_server("-w", "1", "-k", worker_class)
    status, body = server.get("/gc")
    assert status == 200
    # the app and the server's own objects, out of the collector's reach (0 without freeze)
    assert int(body) > 1000
