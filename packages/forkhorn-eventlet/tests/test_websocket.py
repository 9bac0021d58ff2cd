"""Eventlet's own websockets (``eventlet.websocket``) in a real ``forkhorn -k eventlet`` process:
the app takes the connection over, past ``--timeout``."""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from conftest import http_get


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
