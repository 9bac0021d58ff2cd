"""The eventlet worker in a real ``forkhorn -k eventlet`` process, over real sockets."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from conftest import WORKER, http_get, server_env

LIBRARY = WORKER  # the module name of the green library the worker patches in


def read_responses(
    sock: socket.socket, count: int, timeout: float = 10.0
) -> list[tuple[int, bytes]]:
    """Read ``count`` Content-Length-delimited responses from ``sock``."""
    sock.settimeout(timeout)
    data = b""
    responses: list[tuple[int, bytes]] = []
    while len(responses) < count:
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            head = data[:end].decode("latin-1")
            length = int(next(line.split(":", 1)[1] for line in head.split("\r\n")
                              if line.lower().startswith("content-length:")))  # fmt: skip
            if len(data) >= end + 4 + length:
                responses.append((int(head.split(" ", 2)[1]), data[end + 4 : end + 4 + length]))
                data = data[end + 4 + length :]
                continue
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed after {len(responses)} responses")
        data += chunk
    return responses


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode()


def test_list_workers_names_the_worker() -> None:
    out = subprocess.run([sys.executable, "-m", "forkhorn", "--list-workers"], env=server_env(),
                         capture_output=True, text=True, timeout=60, check=True).stdout  # fmt: skip
    line = next(line for line in out.splitlines() if line.split()[:1] == [WORKER])
    assert f"forkhorn-{WORKER}" in line


def test_the_master_is_not_patched_but_the_workers_are(tmp_path: Path, start_server: Any) -> None:
    flag = tmp_path / "master-modules.json"
    config = tmp_path / "forkhorn.conf.py"
    config.write_text(
        "import json, sys\n"
        "def when_ready(server):\n"
        f"    with open({str(flag)!r}, 'w') as out:\n"
        "        roots = ('gevent', 'eventlet', 'ssl')\n"
        "        json.dump(sorted(m for m in sys.modules if m.split('.')[0] in roots), out)\n"
    )
    server = start_server("-c", str(config), "-w", "2")
    info = server.get_json("/modules")
    assert info[LIBRARY] is True
    assert info["multithread"] is True
    assert info["multiprocess"] is True
    master_modules = json.loads(flag.read_text())
    if LIBRARY == "gevent":
        assert master_modules == []  # gevent is only imported after fork, and ssl after it
    else:
        assert "eventlet" in master_modules  # eventlet greens the master on purpose


def test_slow_requests_are_served_concurrently_by_one_worker(start_server: Any) -> None:
    server = start_server("-w", "1")
    started = time.monotonic()
    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(lambda _: http_get(server.port, "/sleep?0.2"), range(50)))
    elapsed = time.monotonic() - started
    assert all(status == 200 for status, _ in results)
    assert elapsed < 2.5, elapsed  # one at a time would take 10 s


def test_keep_alive_and_pipelining(start_server: Any) -> None:
    server = start_server("-w", "1")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(get("/") + get("/modules") + b"POST /echo HTTP/1.1\r\nHost: t\r\n"
                     b"Content-Length: 5\r\n\r\nhello")  # fmt: skip
        first, info, echo = read_responses(sock, 3)
        assert first == (200, b"Hello, World!\n")
        assert info[0] == 200 and json.loads(info[1])[LIBRARY] is True
        assert echo == (200, b"hello")
        sock.sendall(get("/"))  # the same connection again, after a pause
        assert read_responses(sock, 1) == [(200, b"Hello, World!\n")]


def test_worker_connections_caps_concurrent_connections(start_server: Any) -> None:
    server = start_server("-w", "1", "--worker-connections", "2")
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: http_get(server.port, "/sleep?0.5"), range(4)))
    elapsed = time.monotonic() - started
    assert all(status == 200 for status, _ in results)
    assert elapsed >= 0.95, elapsed  # two at a time: two rounds


def test_request_timeout_answers_504_and_frees_the_worker(start_server: Any) -> None:
    server = start_server("-w", "1", "--timeout", "1")
    pid = server.get_json("/modules")["pid"]
    started = time.monotonic()
    status, _body = http_get(server.port, "/sleep?10")
    elapsed = time.monotonic() - started
    assert status == 504
    assert 0.9 <= elapsed < 5.0, elapsed
    assert server.get_json("/modules")["pid"] == pid  # same worker, still serving
    assert "timed out" in server.log


def test_idle_keep_alive_connections_are_closed_after_keepalive(start_server: Any) -> None:
    server = start_server("-w", "1", "--keep-alive", "1")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(get("/"))
        read_responses(sock, 1)
        started = time.monotonic()
        assert sock.recv(100) == b""  # closed by the server
        assert time.monotonic() - started < 5.0


def test_a_head_unfinished_after_keepalive_gets_408(start_server: Any) -> None:
    server = start_server("-w", "1", "--keep-alive", "1", "--header-timeout", "0")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n")  # and nothing more
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408 "), answer


def test_a_head_trickling_in_is_left_to_header_timeout(start_server: Any) -> None:
    server = start_server("-w", "1", "--keep-alive", "1", "--header-timeout", "10")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n")
        for _ in range(5):  # 2.5 s: past keepalive, within header_timeout
            time.sleep(0.5)
            sock.sendall(b"X-Slow: yes\r\n")
        sock.sendall(b"\r\n")
        assert read_responses(sock, 1) == [(200, b"Hello, World!\n")]


def test_graceful_stop_finishes_in_flight_requests(start_server: Any) -> None:
    server = start_server("-w", "1", "--graceful-timeout", "10")
    with (
        ThreadPoolExecutor(1) as pool,
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as idle,
    ):
        idle.sendall(get("/"))
        read_responses(idle, 1)  # an idle keep-alive connection
        in_flight = pool.submit(http_get, server.port, "/sleep?3")
        time.sleep(0.3)
        stopping = time.monotonic()
        server.signal(signal.SIGTERM)
        assert idle.recv(100) == b""  # idle connections are closed at once...
        assert time.monotonic() - stopping < 2.5
        assert not in_flight.done()
        assert in_flight.result(timeout=10) == (200, b"slept\n")  # ...in-flight ones finish
    assert server.proc.wait(10) == 0
    with pytest.raises(OSError):
        http_get(server.port, "/", timeout=2)


def test_file_wrapper_goes_out_through_a_cooperative_sendfile(
    tmp_path: Path, start_server: Any
) -> None:
    payload = os.urandom(8 << 20)  # more than the socket buffers on both ends hold
    path = tmp_path / "payload.bin"
    path.write_bytes(payload)
    server = start_server("-w", "1", env={"FORKHORN_TEST_FILE": str(path)})
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as slow:
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        slow.sendall(get("/file"))
        time.sleep(0.3)  # the server's socket buffer fills: sendfile must wait, not fail
        assert http_get(server.port, "/")[0] == 200  # ...and not block the worker meanwhile
        ((status, body),) = read_responses(slow, 1)
    assert status == 200
    assert body == payload


def test_tls(tmp_path: Path, start_server: Any) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)  # fmt: skip
    server = start_server("-w", "1", "--certfile", str(cert), "--keyfile", str(key), scheme="https")
    status, body = http_get(server.port, "/modules", scheme="https")
    assert status == 200
    assert json.loads(body)["url_scheme"] == "https"
    with ThreadPoolExecutor(10) as pool:  # handshakes and requests interleave cooperatively
        results = list(
            pool.map(lambda _: http_get(server.port, "/sleep?0.3", scheme="https"), range(10))
        )
    assert all(status == 200 for status, _ in results)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as plain:
        plain.sendall(get("/"))  # plain HTTP on the TLS port: a plain 400, then the end
        answer = b""
        while chunk := plain.recv(4096):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 400 ")
    assert http_get(server.port, "/", scheme="https")[0] == 200
    assert "Traceback" not in server.log


def test_quick_stop_does_not_wait_for_requests(start_server: Any) -> None:
    server = start_server("-w", "1", "--graceful-timeout", "30")
    with ThreadPoolExecutor(1) as pool:
        pool.submit(http_get, server.port, "/sleep?20")
        time.sleep(0.3)
        stopping = time.monotonic()
        server.signal(signal.SIGQUIT)
        server.proc.wait(10)
        assert time.monotonic() - stopping < 5


def _latencies(port: int, count: int) -> float:
    """Median seconds of ``count`` sequential requests on one keep-alive connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        times = []
        for _ in range(count):
            started = time.monotonic()
            sock.sendall(get("/"))
            read_responses(sock, 1)
            times.append(time.monotonic() - started)
    return sorted(times)[count // 2]


def test_a_thousand_idle_keep_alive_connections_do_not_slow_a_client(start_server: Any) -> None:
    server = start_server("-w", "1", "--keep-alive", "60", "--worker-connections", "2000")
    _latencies(server.port, 50)  # warm up
    baseline = _latencies(server.port, 300)
    idle = []
    try:
        for _ in range(1000):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            sock.sendall(get("/"))
            idle.append(sock)
        for sock in idle:
            read_responses(sock, 1)  # every one served, now idle in keep-alive
        loaded = _latencies(server.port, 300)
    finally:
        for sock in idle:
            sock.close()
    assert loaded < 3 * baseline + 0.001, (baseline, loaded)


def _masked_frame(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    body = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + body


def test_eventlet_websockets_take_the_connection_over(start_server: Any) -> None:
    server = start_server("-w", "1", "--timeout", "1", app="testapp:websocket_app")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(4096)
        head, _, data = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 ")
        assert b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
        for text in (b"hello", b"again"):
            time.sleep(1.5)  # longer than --timeout: a websocket is not a slow request
            sock.sendall(_masked_frame(0x1, text))
            while len(data) < 2 + len(text):
                data += sock.recv(4096)
            assert data[: 2 + len(text)] == bytes([0x81, len(text)]) + text
            data = data[2 + len(text) :]
        sock.sendall(_masked_frame(0x8, b""))  # close
        while chunk := sock.recv(4096):
            data += chunk
        assert data[:1] == b"\x88"  # the server's close frame, then the end
    assert http_get(server.port, "/")[0] == 200
    assert "Error handling" not in server.log


def test_validator_wrapped_app_without_warnings(start_server: Any) -> None:
    # wsgiref.validate checks the environ, start_response, wsgi.input and the iterable
    # protocol from inside the worker; its warnings are errors there
    warnings_are_errors = {"PYTHONWARNINGS": "error::wsgiref.validate.WSGIWarning"}
    server = start_server(app="testapp:checked", env=warnings_are_errors)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    for _ in range(3):  # one keep-alive connection
        conn.request("POST", "/echo", body=b"payload")
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"payload")
    conn.request("GET", "/")
    response = conn.getresponse()
    assert (response.status, response.read()) == (200, b"Hello, World!\n")
    conn.close()
    assert server.stop() == 0
    assert "Traceback" not in server.log and "WSGIWarning" not in server.log, server.log
