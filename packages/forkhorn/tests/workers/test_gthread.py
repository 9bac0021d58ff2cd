"""The gthread worker in a real server: keep-alive, pipelining, the connection cap, a real
per-request timeout, graceful stop; and its main thread's watch on a worker's state."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from forkhorn.config import Config
from forkhorn.logging import Logger
from forkhorn.testing.suite import burst_splits, read_responses
from forkhorn.workers import gthread
from worker_servers import Server, start_server

__all__ = ["start_server"]


def body_of(data: bytes) -> list[bytes]:
    return data.partition(b"\r\n\r\n")[2].split()


def test_keep_alive_reuses_the_connection(start_server: Callable[..., Server]) -> None:
    server = start_server("-w", "1", "-k", "gthread", "--threads", "2")
    conn = server.connection()
    ports = set()
    for _ in range(3):
        conn.request("GET", "/")
        response = conn.getresponse()
        _pid, port, multithread = response.read().split()
        assert response.getheader("Connection") is None
        ports.add(port)
    conn.close()
    assert len(ports) == 1
    assert multithread == b"True"
    assert server.terminate() == 0


def test_sync_class_with_threads_switches_to_gthread(start_server: Callable[..., Server]) -> None:
    server = start_server("-w", "1", "--threads", "2")
    assert body_of(b"\r\n\r\n" + server.get("/")[1])[2] == b"True"
    server.terminate()


def test_pipelined_requests_in_order(start_server: Callable[..., Server]) -> None:
    server = start_server("-w", "1", "-k", "gthread", "--threads", "4")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\none"
            b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\ntwo"
            b"POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nConnection: close\r\n\r\nthree"
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.count(b"HTTP/1.1 200 OK") == 3
    assert data.index(b"one") < data.index(b"two") < data.index(b"three")
    server.terminate()


def test_idle_keep_alive_connections_are_closed(start_server: Callable[..., Server]) -> None:
    server = start_server("-w", "1", "-k", "gthread", "--keep-alive", "1")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        assert b"200 OK" in sock.recv(65536)
        started = time.monotonic()
        assert sock.recv(65536) == b""  # the server closed the idle connection
        assert 0.5 < time.monotonic() - started < 4
    server.terminate()


def test_keep_alive_zero_disables_it(start_server: Callable[..., Server]) -> None:
    server = start_server("-w", "1", "-k", "gthread", "--keep-alive", "0")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert b"\r\nConnection: close\r\n" in data
    server.terminate()


def test_worker_connections_cap(start_server: Callable[..., Server]) -> None:
    server = start_server(
        "-w", "1", "-k", "gthread", "--worker-connections", "2", "--keep-alive", "30"
    )
    held = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(2)]
    try:
        for sock in held:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            assert b"200 OK" in sock.recv(65536)
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as third:
            third.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            third.settimeout(0.7)
            try:
                early = third.recv(65536)
            except TimeoutError:
                early = b""
            assert early == b""  # left in the backlog while two connections are open
            held.pop().close()
            third.settimeout(5)
            assert b"200 OK" in third.recv(65536)
    finally:
        for sock in held:
            sock.close()
    server.terminate()


def test_out_of_descriptors_pauses_accepts_instead_of_spinning(
    tmp_path: Path, start_server: Callable[..., Server]
) -> None:
    """EMFILE leaves the listener readable: the worker must pause accepting (a log line
    per thread a tick at most), not wake its threads in a loop (over 100,000 lines in
    2.5 s before); closing connections lets the queue in."""
    config = tmp_path / "fds.conf.py"
    config.write_text(
        "import os, resource\n"
        "def post_worker_init(worker):\n"
        "    used = len(os.listdir('/proc/self/fd'))\n"
        "    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]\n"
        "    resource.setrlimit(resource.RLIMIT_NOFILE, (used + 6, hard))\n"
    )
    server = start_server("-w", "1", "-k", "gthread", "--threads", "2", "--keep-alive", "30",
                          "-c", str(config))  # fmt: skip
    held = []
    try:
        for _ in range(12):  # more than the worker has descriptors left
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            held.append(sock)
        time.sleep(2.5)
        failures = server.log().count("accept() failed")
        assert 1 <= failures <= 12, failures  # one per thread a tick at most, not a storm
        for sock in held:  # each close frees a descriptor for a queued connection
            sock.settimeout(10)
            assert b"200 OK" in sock.recv(65536)
            sock.close()
    finally:
        for sock in held:
            sock.close()
    assert server.terminate() == 0


def test_request_timeout_ends_the_connection(start_server: Callable[..., Server]) -> None:
    server = start_server("-w", "1", "-k", "gthread", "--threads", "2", "--timeout", "1")
    pid = server.get("/")[1].split()[0]
    with socket.create_connection(("127.0.0.1", server.port), timeout=8) as sock:
        sock.sendall(b"GET /sleep?30 HTTP/1.1\r\nHost: h\r\n\r\n")
        started = time.monotonic()
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            data = b""
        assert data == b""
        assert time.monotonic() - started < 4
    assert server.get("/")[1].split()[0] == pid  # the worker itself lives on
    assert "Request timed out after 1s, closing the connection: GET /sleep" in server.log()
    server.terminate()


def test_a_timed_out_thread_is_freed_when_it_returns_to_python(
    start_server: Callable[..., Server],
) -> None:
    server = start_server("-w", "1", "-k", "gthread", "--threads", "1", "--timeout", "1")
    with socket.create_connection(("127.0.0.1", server.port), timeout=8) as sock:
        sock.sendall(b"GET /sleep?1.5 HTTP/1.1\r\nHost: h\r\n\r\n")
        try:
            assert sock.recv(65536) == b""
        except ConnectionResetError:
            pass
    # the only thread was stuck in C (sleep); once back in Python it is free again
    assert server.get("/", timeout=8)[0] == 200
    server.terminate()


def test_graceful_stop_finishes_in_flight_and_closes_idle(
    start_server: Callable[..., Server],
) -> None:
    server = start_server("-w", "1", "-k", "gthread", "--keep-alive", "30")
    idle = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    idle.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert b"200 OK" in idle.recv(65536)
    result: list[tuple[int, bytes]] = []
    client = threading.Thread(target=lambda: result.append(server.get("/sleep?1", timeout=8)))
    client.start()
    time.sleep(0.3)
    assert server.terminate(timeout=10) == 0
    client.join(8)
    assert result and result[0][0] == 200
    assert idle.recv(65536) == b""
    idle.close()


def test_validator_wrapped_app_without_warnings(start_server: Callable[..., Server]) -> None:
    server = start_server(
        "-w", "1", "-k", "gthread", app="app:checked", python_flags=("-W", "error")
    )
    conn = server.connection()
    for _ in range(2):
        conn.request("POST", "/echo", body=b"payload")
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"payload")
    conn.close()
    server.terminate()
    log = server.log()
    assert "Traceback" not in log and "Warning" not in log


def test_a_burst_of_new_connections_is_shared_between_the_workers(
    start_server: Callable[..., Server],
) -> None:
    """A client opening a pool of keep-alive connections at once (wrk, a proxy) must not
    hand them all to one worker: those connections live long, so one worker would serve
    nearly all the traffic on one core while the other idles. Before the acceptor moved to
    the main thread, one start in three gave 48-49 of 50 connections to one worker."""
    server = start_server("-w", "2", "-k", "gthread", "--threads", "8")
    splits = burst_splits(server.proc.pid, server.port, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
                          lambda body: body.split()[0])  # fmt: skip
    # fair: no worker above 3/4 of a burst, in 2 bursts of 3 at least (a busy CI host may
    # keep one worker off the CPU through a whole burst once; the old acceptor did so in
    # most bursts)
    fair = [split for split in splits if len(split) == 2 and max(split.values()) <= 30]
    assert len(fair) >= 2, splits
    server.terminate()


def test_slow_requests_are_served_in_turn(start_server: Callable[..., Server]) -> None:
    """30 keep-alive clients sending 20 ms requests to 2 threads: each waits its turn, about
    0.3 s. A thread used to take 16 ready connections, serve one and send the other 15 back
    to the end of the kernel's ready list: the median was 0.04 s and some clients waited
    over 3 s (wrk counted timeouts at c200)."""
    server = start_server("-w", "1", "-k", "gthread", "--threads", "2")
    latencies: list[float] = []
    deadline = time.monotonic() + 2.5

    def client() -> None:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            while time.monotonic() < deadline:
                started = time.monotonic()
                sock.sendall(b"GET /sleep?0.02 HTTP/1.1\r\nHost: h\r\n\r\n")
                read_responses(sock, 1)
                latencies.append(time.monotonic() - started)

    clients = [threading.Thread(target=client) for _ in range(30)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join(15)
    latencies.sort()
    assert len(latencies) > 100
    assert latencies[-1] < 1.0, (latencies[len(latencies) // 2], latencies[-1])
    server.terminate()


def test_requests_that_block_run_on_every_thread_at_once(
    start_server: Callable[..., Server],
) -> None:
    """One pool thread serves while requests are fast; a request that blocks lends its
    turn to another thread, so ``threads`` blocking requests still overlap: 4 clients of
    0.6 s requests on 4 threads take about 0.6 s, not 2.4 s one after the other. The 4
    requests arrive together, so the serving thread polls them in one batch: the 3 it
    has not reached must go to other threads too, not wait for the first to finish."""
    server = start_server("-w", "1", "-k", "gthread", "--threads", "4")
    assert server.get("/")[0] == 200
    socks = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(4)]
    try:
        time.sleep(0.3)  # all 4 accepted and waiting in the poller
        started = time.monotonic()
        for sock in socks:
            sock.sendall(b"GET /sleep?0.6 HTTP/1.1\r\nHost: h\r\n\r\n")
        statuses = [read_responses(sock, 1)[0][0] for sock in socks]
        elapsed = time.monotonic() - started
    finally:
        for sock in socks:
            sock.close()
    assert statuses == [200] * 4
    assert elapsed < 1.1, elapsed
    server.terminate()


def test_a_blocked_request_does_not_hold_up_a_quick_one(
    start_server: Callable[..., Server],
) -> None:
    server = start_server("-w", "1", "-k", "gthread", "--threads", "2")
    slow = threading.Thread(target=server.get, args=("/sleep?3",), kwargs={"timeout": 10})
    slow.start()
    time.sleep(0.3)  # the slow request is in the app
    started = time.monotonic()
    assert server.get("/")[0] == 200
    assert time.monotonic() - started < 1.0
    slow.join(10)
    server.terminate()


def test_the_watch_looks_often_only_while_requests_are_slow_and_lends_a_stuck_slot() -> None:
    """The main thread's watch (ThreadWorker._watch) on a worker's real state, no process:
    how long it may wait before looking again, and what it does to a stuck thread."""
    cfg = Config()
    cfg.set("threads", 2)
    worker = gthread.ThreadWorker(1, os.getpid(), [], None, 15.0, cfg, Logger(cfg))
    now = time.monotonic()
    worker._serving[0] = now  # thread 0 has just started a request
    assert worker._watch(now, 1.0) == gthread._WATCH_INTERVAL_FAST  # requests are fast
    worker._pace = gthread._SLOW_REQUEST  # the app blocks: look every _STUCK_AFTER
    assert worker._watch(now, 1.0) == gthread._WATCH_INTERVAL_SLOW == gthread._STUCK_AFTER
    # thread 0 holds the only slot and is stuck past _STUCK_AFTER with 2 fds still polled
    assert worker._slots.acquire(blocking=False)
    worker._batches[0].extend([1000, 1001])
    later = now + 2 * gthread._STUCK_AFTER
    worker._watch(later, 1.0)
    assert worker._lent[0]
    assert worker._batches[0] == []  # handed back (these fds are no connections: dropped)
    assert worker._slots.acquire(blocking=False)  # the slot went to a waiting thread
    worker._watch(later, 1.0)
    assert not worker._slots.acquire(blocking=False)  # lent once, not at every look
