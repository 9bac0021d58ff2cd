"""Faults of the application and of the client: an app that raises, one that never returns,
an iterable that breaks mid-response, a client that hangs up mid-response. The server keeps
serving and the iterable's ``close()`` is always called (seen in the side file)."""

from __future__ import annotations

import socket
import struct
import time

import pytest
from reliability_load import LoadClient
from reliability_support import Servers, get, report, wait_for

WORKERS = ["sync", "gthread"]
TIMEOUT = 2  # the per-request timeout the servers run with (seconds)


def raw_get(port: int, path: str, timeout: float = 15.0) -> tuple[bytes, float]:
    """Everything the server sends for one request until it closes, and how long it took."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
    return data, time.monotonic() - started


def hang_up_mid_response(port: int, path: str) -> None:
    """Read the start of the response, then reset the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("worker", WORKERS)
def test_app_faults_under_load(servers: Servers, worker: str) -> None:
    args = ("--threads", "4") if worker == "gthread" else ()
    server = servers.start(*args, "--timeout", str(TIMEOUT), worker=worker, workers=2)
    with LoadClient(server.port, threads=2) as load:
        load.wait_requests(50)
        # 1. the app raises: 500, the worker lives on
        raised = [get(server.port, "/raise")[0] for _ in range(20)]
        # 2. the app never returns: cut off after the per-request timeout
        hung, hang_time = raw_get(server.port, "/hang")
        # 3. the iterable raises after its first chunk: response cut short, close() called
        broken = [raw_get(server.port, f"/broken?b{n}")[0] for n in range(10)]
        # 4. the client hangs up mid-response: close() called
        for n in range(10):
            hang_up_mid_response(server.port, f"/stream?s{n}")
        load.wait_requests(50)
        workers_after = server.workers()
    expected = {f"closed b{n}" for n in range(10)} | {f"closed s{n}" for n in range(10)}
    wait_for(lambda: expected <= set(servers.side_file()), 10, "every close()")
    closes = servers.side_file()
    broken_closed = sum(f"closed b{n}" in closes for n in range(10))
    stream_closed = sum(f"closed s{n}" in closes for n in range(10))
    hang_status = hung.split(b" ", 2)[1].decode() if hung else "closed"
    met = (
        raised == [500] * 20
        and hang_time < TIMEOUT + 1.5
        and all(b.startswith(b"HTTP/1.1 200") and not b.endswith(b"x" * 65536 * 2) for b in broken)
        and broken_closed == 10
        and stream_closed == 10
        and load.lost == 0
        and len(closes) == 20  # exactly once each
    )
    report("app faults: raise, hang, broken iterable, client hang-up", worker,
           "500 on raise; hang cut at timeout; close() called once; others unaffected", met,
           raise_500=f"{raised.count(500)}/20", hang_answer=hang_status,
           hang_cut_s=round(hang_time, 2), broken_iter_closed=f"{broken_closed}/10",
           hangup_closed=f"{stream_closed}/10", load_lost=load.lost,
           load_ok=load.ok)  # fmt: skip
    assert met, (raised, hang_time, hung[:100], closes, load.failures)
    assert len(workers_after) == 2
