"""Fixtures for the arbiter tests: real server processes, real signals, real sockets.

Every server is started in its own session (so a WINCH is never a terminal resize and the
whole process tree can be found by session id); teardown kills what is left and fails the
test if any process of that session survives. ``free_port``, ``http_get``, ``wait_for`` and
``children`` are the worker test kit's (:mod:`forkhorn.testing`), re-exported for the tests.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from forkhorn.testing.processes import children, end_session, wait_for
from forkhorn.testing.servers import free_port, http_get

HERE = Path(__file__).parent
SRC = HERE.parents[1] / "src"


class Server:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, tmp: Path) -> None:
        self.proc = proc
        self.port = port
        self.tmp = tmp
        self.pidfile = tmp / "forkhorn.pid"
        self.errlog = tmp / "error.log"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def workers(self, master: int | None = None) -> list[int]:
        return children(master or self.pid)

    def wait_workers(
        self, count: int, timeout: float = 10.0, master: int | None = None
    ) -> list[int]:
        found = wait_for(
            lambda: (w,) if len(w := self.workers(master)) == count else None,
            timeout,
            f"{count} workers of {master or self.pid}",
        )
        return list(found[0])

    def get(self, path: str = "/", timeout: float = 5.0) -> tuple[int, bytes]:
        return http_get(self.port, path, timeout)

    def wait_serving(self, timeout: float = 10.0) -> None:
        def ok() -> bool:
            try:
                return self.get(timeout=1.0)[0] == 200
            except OSError:
                return False

        wait_for(ok, timeout, "the server to answer", step=0.05)

    def kill(self, sig: int, pid: int | None = None) -> None:
        os.kill(pid or self.pid, sig)

    def wait_exit(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def log(self) -> str:
        return self.errlog.read_text(errors="replace") if self.errlog.exists() else ""


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(
        *args: str,
        app: str = "arbiter_apps:app",
        workers: int = 1,
        port: int | None = None,
        wait: bool = True,
        env: dict[str, str] | None = None,
        bind: bool = True,
        pass_fds: tuple[int, ...] = (),
        command: list[str] | None = None,
    ) -> Server:
        port = port or free_port()
        environ = dict(os.environ)
        environ["PYTHONPATH"] = os.pathsep.join(
            [str(HERE), str(SRC), environ.get("PYTHONPATH", "")]
        )
        environ["FORKHORN_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        environ.pop("NOTIFY_SOCKET", None)
        environ.update(env or {})
        argv = command or [sys.executable, "-m", "forkhorn"]
        argv += ["-w", str(workers), "--pid", str(tmp_path / "forkhorn.pid")]
        if bind:
            argv += ["-b", f"127.0.0.1:{port}"]
        argv += [*args, app]
        with open(tmp_path / "error.log", "ab") as errlog:
            proc = subprocess.Popen(
                argv,
                cwd=tmp_path,
                env=environ,
                stdout=errlog,
                stderr=errlog,
                start_new_session=True,
                pass_fds=pass_fds,
            )
        server = Server(proc, port, tmp_path)
        started.append(server)
        if wait:
            server.wait_serving()
            server.wait_workers(workers)
        return server

    yield start

    strays: list[int] = []
    for server in started:
        if server.proc.poll() is None:
            try:
                os.killpg(server.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            server.proc.wait(timeout=10)
        strays += end_session(server.pid, 5.0)
    assert not strays, f"stray processes left behind: {strays}"


class LoadClient:
    """Threads doing HTTP requests in a loop; counts what happened to each request.

    ``refused``: the connection was never accepted (refused, or the SYN never answered),
    which is how a stopped server may answer. ``failed``: accepted, then reset, cut short,
    or answered with something other than 200: never acceptable.
    """

    def __init__(self, port: int, threads: int = 4, path: str = "/") -> None:
        self.port = port
        self.path = path
        self.ok = 0
        self.refused = 0
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(threads)]

    def __enter__(self) -> LoadClient:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)

    def wait_requests(self, count: int, timeout: float = 10.0) -> None:
        start = self.ok
        wait_for(lambda: self.ok >= start + count, timeout, f"{count} more requests")

    def _loop(self) -> None:
        request = f"GET {self.path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode()
        while not self._stop.is_set():
            sock = socket.socket()
            sock.settimeout(3.0)
            try:
                sock.connect(("127.0.0.1", self.port))
            except OSError:
                with self._lock:
                    self.refused += 1
                sock.close()
                time.sleep(0.01)
                continue
            try:
                sock.settimeout(10.0)
                sock.sendall(request)
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
                ok = data.startswith(b"HTTP/1.1 200") and data.endswith(b"\n")
                with self._lock:
                    if ok:
                        self.ok += 1
                    else:
                        self.failures.append(f"bad response {data[:80]!r}")
            except OSError as exc:
                with self._lock:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
            finally:
                sock.close()
