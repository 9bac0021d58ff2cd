"""Real ``python -m forkhorn`` servers for the sync and gthread worker tests.

Each server runs in its own session; teardown sends TERM, then KILLs the whole session if
anything is left, so no test leaves a process behind. Every wait is bounded.
"""

from __future__ import annotations

import http.client
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from forkhorn.testing.processes import Process
from forkhorn.testing.servers import free_port

APP = """
import gc, os, time
from wsgiref.validate import validator

def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/sleep":
        time.sleep(float(environ["QUERY_STRING"] or "0"))
    if path == "/echo":
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    elif path == "/gc":
        body = str(gc.get_freeze_count()).encode()
    else:
        body = "{} {} {}".format(
            os.getpid(), environ["REMOTE_PORT"], environ["wsgi.multithread"]).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]

checked = validator(app)
"""


class Server:
    """``python -m forkhorn ... app:app`` (``APP``, written to ``tmp_path``), ready."""

    def __init__(self, tmp_path: Path, args: list[str], app: str = "app:app",
                 python_flags: tuple[str, ...] = ()) -> None:  # fmt: skip
        (tmp_path / "app.py").write_text(APP)
        self.port = free_port()
        env = dict(os.environ, PYTHONPATH=str(tmp_path), FORKHORN_DISABLE_PLUGIN_AUTOLOAD="1")
        self.process = Process(
            [sys.executable, *python_flags, "-m", "forkhorn", "-b", f"127.0.0.1:{self.port}",
             "--chdir", str(tmp_path), *args, app],
            tmp_path / "server.log", env,
        )  # fmt: skip
        self.proc = self.process.proc
        self.process.wait_until(lambda: self.get("/")[0] == 200, "server", timeout=15)

    def connection(self, timeout: float = 5) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def get(self, path: str, timeout: float = 5) -> tuple[int, bytes]:
        conn = self.connection(timeout)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def log(self) -> str:
        return self.process.log

    def terminate(self, timeout: float = 10) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        """KILL the whole session now (TERM first, but no wait for it)."""
        self.process.stop(timeout=0)


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(*args: str, **kwargs: Any) -> Server:
        server = Server(tmp_path, list(args), **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.kill()
