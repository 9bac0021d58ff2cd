"""The sync worker in a real server: close per response, real timeout, graceful stop."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable

from forkhorn.config import Config
from forkhorn.logging import Logger
from forkhorn.workers.heartbeat import HeartbeatBoard
from forkhorn.workers.sync import SyncWorker
from worker_servers import Server, start_server

__all__ = ["start_server"]


def test_every_response_closes_the_connection(start_server: Callable[..., Server]) -> None:
    server = start_server("-w", "1")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.count(b"HTTP/1.1 200 OK") == 1  # one request per connection
    assert b"\r\nConnection: close\r\n" in data
    _pid, _, multithread = data.partition(b"\r\n\r\n")[2].split()
    assert multithread == b"False"
    assert server.terminate() == 0


def test_request_timeout_answers_504_and_the_worker_survives(
    start_server: Callable[..., Server],
) -> None:
    server = start_server("-w", "1", "--timeout", "1")
    pid_before = server.get("/")[1].split()[0]
    started = time.monotonic()
    status, _ = server.get("/sleep?10", timeout=8)
    assert status == 504
    assert time.monotonic() - started < 4
    assert server.get("/")[1].split()[0] == pid_before  # not killed: the request was
    assert "Request timed out after 1s: GET /sleep" in server.log()
    server.terminate()


def test_slow_requests_within_timeout_keep_the_heartbeat(
    start_server: Callable[..., Server],
) -> None:
    server = start_server("-w", "1", "--timeout", "1")
    pid_before = server.get("/")[1].split()[0]
    assert server.get("/sleep?0.8")[0] == 200
    assert server.get("/")[1].split()[0] == pid_before
    server.terminate()
    assert "WORKER TIMEOUT" not in server.log()


def test_the_watchdog_tick_beats_while_a_request_runs() -> None:
    """The end-to-end test above passes without it most of the time (a request shorter
    than ``timeout`` rarely outlives the beat before its accept): here nothing but the
    tick can move the beat while the main thread is busy."""
    cfg = Config()
    cfg.set("timeout", 1)  # a tick every 0.25 s
    board = HeartbeatBoard(capacity=1)
    worker = SyncWorker(1, os.getpid(), [], None, 0.5, cfg, Logger(cfg))
    worker.slot = board.allocate()
    pid = os.fork()
    if pid == 0:  # SIGALRM and its handler stay out of the test process
        try:
            worker._arm_watchdog()
            before = worker.slot.last_beat()
            time.sleep(0.6)  # a request in the app: only the tick runs meanwhile
            os._exit(0 if worker.slot.last_beat() >= before + 0.2 else 1)
        finally:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    board.close()


def test_graceful_stop_finishes_the_request_in_flight(
    start_server: Callable[..., Server],
) -> None:
    server = start_server("-w", "1")
    result: list[tuple[int, bytes]] = []
    client = threading.Thread(target=lambda: result.append(server.get("/sleep?1", timeout=8)))
    client.start()
    time.sleep(0.3)
    assert server.terminate(timeout=10) == 0
    client.join(8)
    assert result and result[0][0] == 200


def test_validator_wrapped_app_without_warnings(start_server: Callable[..., Server]) -> None:
    server = start_server("-w", "1", app="app:checked", python_flags=("-W", "error"))
    assert server.get("/")[0] == 200
    conn = server.connection()
    conn.request("POST", "/echo", body=b"payload")
    response = conn.getresponse()
    assert (response.status, response.read()) == (200, b"payload")
    conn.close()
    server.terminate()
    log = server.log()
    assert "Traceback" not in log and "Warning" not in log
