"""The reliability suite's scenarios for this worker class (short: the core package runs
the full suite; ``packages/forkhorn/tests/reliability`` holds the scenarios and helpers).

Figures are reported like the core suite's (``FORKHORN_RELIABILITY_RESULTS``)."""

from __future__ import annotations

import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import WORKER

SUITE = Path(__file__).resolve().parents[2] / "forkhorn" / "tests" / "reliability"
if str(SUITE) not in sys.path:
    sys.path.insert(0, str(SUITE))

from reliability_scenarios import (  # noqa: E402
    hup_under_load,
    slowloris_latency,
    term_with_full_backlog,
)
from reliability_support import Servers  # noqa: E402


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    started = Servers(tmp_path)
    try:
        yield started
    finally:
        started.close()


def test_twenty_hup_reloads_under_keepalive_load_lose_nothing(servers: Servers) -> None:
    hup_under_load(servers, WORKER, 20, keepalive=True, autoload=True)


def test_term_under_load_with_a_full_backlog_loses_nothing(servers: Servers) -> None:
    term_with_full_backlog(servers, WORKER, autoload=True)


def test_slowloris_does_not_starve_the_worker(servers: Servers) -> None:
    slowloris_latency(servers, WORKER, autoload=True)


def test_a_head_trickling_longer_than_keepalive_gets_header_timeout(servers: Servers) -> None:
    server = servers.start("--keep-alive", "1", "--header-timeout", "5", worker=WORKER,
                           workers=1, autoload=True)  # fmt: skip
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n")
        for _ in range(6):  # 3 s of trickling: past keepalive, within header_timeout
            time.sleep(0.5)
            sock.sendall(b"X-A: b\r\n")
        sock.sendall(b"Connection: close\r\n\r\n")
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200"), answer


def test_graceful_stop_serves_a_connection_accepted_before_its_request(servers: Servers) -> None:
    """A connection the worker accepted whose request had not arrived yet was closed by
    the graceful stop (requests lost on HUP under load)."""
    server = servers.start(worker=WORKER, workers=1, autoload=True)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as late:
        time.sleep(0.3)  # accepted by the worker, no request yet
        server.signal(signal.SIGTERM)
        time.sleep(0.3)  # the worker is in its graceful stop
        late.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        answer = late.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert server.proc.wait(timeout=30) == 0
