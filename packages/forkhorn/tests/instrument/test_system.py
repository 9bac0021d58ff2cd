"""What the kernel tells: memory per process, accept queue of a TCP listener."""

from __future__ import annotations

import os
import socket
import sys

import pytest
from forkhorn.instrument.system import listen_queue, rss_bytes


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and TCP_INFO: Linux")
def test_rss_and_listen_queue():
    rss = rss_bytes(os.getpid())
    assert rss is not None and rss > 1_000_000
    assert rss_bytes(2**22 + 12345) is None
    with socket.create_server(("127.0.0.1", 0), backlog=7) as server:
        assert listen_queue(server) == (0, 7)
        clients = [socket.create_connection(server.getsockname()) for _ in range(3)]
        try:
            assert listen_queue(server) == (3, 7)
        finally:
            for client in clients:
                client.close()
    with socket.socket(socket.AF_UNIX) as unix:
        assert listen_queue(unix) is None
