"""A response after which the connection closes: its last segment carries the FIN.

The whole response goes out with MSG_MORE and the close right after it adds the FIN to the
held segment, so the client gets data and end of stream in one segment (one segment less
each way than a send and then a close). Nothing slow may run between the two: with a
``post_request`` hook or an access ``logger_class`` of the user's, the response goes out
at once, as before (else Linux would hold it for up to 200 ms: its limit for corked data).
"""

from __future__ import annotations

import socket
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from worker_servers import Server, start_server

__all__ = ["start_server"]

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="TCP_INFO layout is Linux's")
#: ``struct tcp_info``: ``tcpi_segs_in`` (Linux >= 4.2) is the u32 at this offset
SEGS_IN_OFFSET = 140


def request(path: str = "/") -> bytes:
    return b"GET %s HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n" % path.encode()


def segments_received(server: Server) -> int:
    """Segments the client received on one closing request, from its SYN-ACK to the end."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(request())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    if len(info) < SEGS_IN_OFFSET + 4:
        pytest.skip("this kernel's tcp_info has no tcpi_segs_in")
    return int(struct.unpack_from("I", info, SEGS_IN_OFFSET)[0])


def assert_slow_path_not_held(server: Server) -> None:
    """``/slow`` runs something slow between its response and the close: the response
    must come at once. Held back for the close, it would come after about 0.2 s (Linux's
    limit for corked data)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        started = time.monotonic()
        sock.sendall(request("/slow"))
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")
        assert time.monotonic() - started < 0.15


@linux_only
@pytest.mark.parametrize("worker_class", ["sync", "gthread"])
def test_the_last_segment_of_a_closing_response_carries_the_fin(
    start_server: Callable[..., Server], worker_class: str
) -> None:
    server = start_server("-w", "1", "-k", worker_class)
    # SYN-ACK, the ACK of the request, then the response and the FIN together; a send and
    # then a close would make it 4 (the kernel acknowledges a new connection's first data
    # at once, so the ACK never rides on the response)
    assert [segments_received(server) for _ in range(5)] == [3] * 5


@linux_only
def test_a_post_request_hook_does_not_hold_the_response_back(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    config = tmp_path / "hook.conf.py"
    config.write_text(
        "import time\n"
        "def post_request(worker, req, environ, resp):\n"
        "    time.sleep(0.5 if environ['PATH_INFO'] == '/slow' else 0)\n"
    )
    server = start_server("-w", "1", "-c", str(config))
    assert_slow_path_not_held(server)  # the hook runs between the response and the close
    assert segments_received(server) == 4  # so the FIN follows in a segment of its own


@linux_only
def test_an_access_logger_of_the_users_does_not_hold_the_response_back(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    (tmp_path / "sleepy_logger.py").write_text(
        "import time\n"
        "from forkhorn.logging import Logger\n"
        "class SleepyLogger(Logger):\n"
        "    def access(self, environ, *args):\n"
        "        time.sleep(0.5 if environ['PATH_INFO'] == '/slow' else 0)\n"
    )
    server = start_server("-w", "1", "--logger-class", "sleepy_logger.SleepyLogger",
                          "--access-logfile", str(tmp_path / "access.log"))  # fmt: skip
    assert_slow_path_not_held(server)


@linux_only
def test_an_apps_slow_close_does_not_hold_the_response_back(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    # an empty body whose close() takes long: the handler sends the head, then calls
    # close(), then closes the connection; the head must not wait for close()
    (tmp_path / "slow_close.py").write_text(
        "import time\n"
        "class Empty:\n"
        "    def __iter__(self):\n"
        "        return iter(())\n"
        "    def close(self):\n"
        "        time.sleep(0.5)\n"
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Length', '0')])\n"
        "    return Empty() if environ['PATH_INFO'] == '/slow' else [b'']\n"
    )
    server = start_server("-w", "1", app="slow_close:app")
    assert_slow_path_not_held(server)
