"""Real ``forkhorn -k <worker>`` processes for the tests, always cleaned up.

Each server runs in its own session (process group), so teardown can end the master and
every worker it forked, even after a test broke the master. Plugin autoload is on (the
core's test suite turns it off): the worker is found through its entry point, as a user's
``-k <worker>`` would find it. The worker is the ``worker_name`` fixture, which the plugin's
``conftest.py`` defines.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from forkhorn.testing.processes import Process

#: the app ``start_server`` serves unless told otherwise (see :mod:`forkhorn.testing.apps`)
DEFAULT_APP = "forkhorn.testing.apps:app"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_env(*paths: str, **extra: str) -> dict[str, str]:
    """This environment for a server: autoload on, ``paths`` first on ``PYTHONPATH``, ``extra``."""
    env = dict(os.environ)
    env.pop("FORKHORN_DISABLE_PLUGIN_AUTOLOAD", None)
    env.pop("FORKHORN_CMD_ARGS", None)
    env.pop("GUNICORN_CMD_ARGS", None)
    env.pop("PYTEST_CURRENT_TEST", None)  # eventlet hides its RLock check under pytest
    env["PYTHONPATH"] = os.pathsep.join(p for p in (*paths, env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def http_get(
    port: int, path: str = "/", timeout: float = 10.0, scheme: str = "http"
) -> tuple[int, bytes]:
    """One GET on a fresh connection: (status, body)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock: Any = raw
    if scheme == "https":
        import ssl

        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        sock = context.wrap_socket(raw)
    with sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head:
        raise ConnectionError("connection closed without a response")
    return int(head.split(b" ", 2)[1]), body


class Server(Process):
    """A running ``forkhorn`` master on ``port``; ``stop()`` ends it and its workers."""

    def __init__(
        self, command: list[str], log: Path, env: dict[str, str], port: int, **popen: Any
    ) -> None:
        super().__init__(command, log, env, **popen)
        self.port = port

    def wait_ready(self, timeout: float = 20.0, scheme: str = "http") -> None:
        """Until ``GET /`` answers 200 (the server is stopped if it never does)."""

        def ready() -> bool:
            return http_get(self.port, "/", timeout=2.0, scheme=scheme)[0] == 200

        self.wait_until(ready, "server", timeout)

    def get_json(self, path: str) -> Any:
        status, body = http_get(self.port, path)
        assert status == 200, body
        return json.loads(body)


@pytest.fixture
def start_server(request: pytest.FixtureRequest, tmp_path: Path, worker_name: str) -> Iterator[Any]:
    """``start_server(*args, app=, env=, ready=, scheme=, launcher=)`` -> a (ready) Server.

    ``-k`` is the ``worker_name`` fixture. The requesting test's directory is on the
    server's ``PYTHONPATH`` (so ``app`` may name a module beside the tests).
    ``launcher``: a script run instead of ``python -m forkhorn`` (it calls the bootstrap)."""
    servers: list[Server] = []
    tests = str(Path(request.path).resolve().parent)

    def start(
        *args: str,
        app: str = DEFAULT_APP,
        env: dict[str, str] | None = None,
        ready: bool = True,
        scheme: str = "http",
        launcher: Path | None = None,
    ) -> Server:
        port = free_port()
        argv = ["-k", worker_name, "-b", f"127.0.0.1:{port}", "--log-level", "info", *args, app]
        command = [sys.executable, *([str(launcher)] if launcher else ["-m", "forkhorn"]), *argv]
        log = tmp_path / f"server-{len(servers)}.log"
        server = Server(command, log, server_env(tests, **(env or {})), port)
        servers.append(server)
        if ready:
            server.wait_ready(scheme=scheme)
        return server

    yield start
    for server in servers:
        server.stop()
