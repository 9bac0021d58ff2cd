"""Handler microbenchmark over a fake socket (not a test module): the Python cost of one
request through the shared per-request path, without system calls.

``bench_handler(n, keepalive, **settings)`` serves ``bench.app``'s hello ``n`` times through
a real ``ConnectionHandler`` of a ``SyncWorker`` with a heartbeat slot: a new
``Connection`` per request (what the sync worker does, ``Connection: close``) or
``serve_one`` on one connection (what gthread, gevent and eventlet do for keep-alive
requests). ``settings`` are config settings (``accesslog``, ``metrics_bind``,
``log_format``...): the worker's logger is bound to it, with a metrics region when
``metrics_bind`` is set, as in a real worker. Returns microseconds per request, best of
several rounds (the machines are shared and noisy). For counts that do not move with
the machine's load, run it under ``valgrind --tool=callgrind`` with two values of ``n``
and divide the difference.

    python packages/forkhorn/tests/wsgi/microbench.py [n]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from forkhorn.config import Config
from forkhorn.logging.factory import make_logger
from forkhorn.workers.heartbeat import HeartbeatBoard
from forkhorn.workers.sync import SyncWorker
from forkhorn.wsgi.handler import Connection, ConnectionHandler

SERVER = ("127.0.0.1", 8000)
CLIENT = ("127.0.0.1", 50000)
HEAD = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: wrk\r\n"


class FakeSocket:
    """Just what the hot path calls: one ``recv`` returns the request, sends succeed."""

    def __init__(self, data: bytes = b"") -> None:
        self.data = data

    def recv(self, size: int) -> bytes:
        data, self.data = self.data, b""
        return data

    def send(self, data: bytes, flags: int = 0) -> int:
        return len(data)

    def sendall(self, data: bytes, flags: int = 0) -> None:
        pass

    def close(self) -> None:
        pass


def _bench_app() -> Any:
    root = Path(__file__).resolve().parents[4]  # the repository: bench/app.py
    sys.path.insert(0, str(root))
    from bench.app import app

    return app


def _worker(**settings: Any) -> SyncWorker:
    cfg = Config()
    for name, value in settings.items():
        cfg.set(name, value)
    log = make_logger(cfg)
    worker = SyncWorker(0, os.getppid(), [], None, 30, cfg, log)
    worker.wsgi = _bench_app()
    worker.slot = HeartbeatBoard(capacity=1).allocate(os.getpid())
    if cfg.metrics_bind:
        from forkhorn.instrument.board import MetricsBoard

        worker.metrics = MetricsBoard(capacity=1).region(0)
    log.bind_worker(worker)
    return worker


def bench_handler(n: int, keepalive: bool, rounds: int = 7, **settings: Any) -> float:
    """Microseconds per request (best round)."""
    worker = _worker(**settings)
    handler = ConnectionHandler(worker, keepalive=keepalive)
    best = float("inf")
    for _ in range(rounds):
        if keepalive:
            sock = FakeSocket()
            conn = Connection(sock, CLIENT, SERVER)  # type: ignore[arg-type]
            start = time.perf_counter()
            for _ in range(n):
                sock.data = HEAD + b"\r\n"
                handler.serve_one(conn)
        else:
            socks = [FakeSocket(HEAD + b"Connection: close\r\n\r\n") for _ in range(n)]
            start = time.perf_counter()
            for sock in socks:
                handler.serve(Connection(sock, CLIENT, SERVER))  # type: ignore[arg-type]
        best = min(best, time.perf_counter() - start)
    flush = getattr(worker.log, "flush", None)
    if flush is not None:
        flush()
    return best / n * 1e6


#: keep-alive modes of the observability comparison (access log to a temporary file)
OBSERVABILITY: dict[str, dict[str, Any]] = {
    "all off": {},
    "access log": {"accesslog": "ACCESS"},
    "metrics": {"metrics_bind": "127.0.0.1:9100"},
    "access log + metrics": {"accesslog": "ACCESS", "metrics_bind": "127.0.0.1:9100"},
    "json log + metrics": {
        "accesslog": "ACCESS", "metrics_bind": "127.0.0.1:9100", "log_format": "json",
    },
}  # fmt: skip


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    print(f"Connection: close  {bench_handler(count, keepalive=False):6.2f} us/request")
    print(f"keep-alive         {bench_handler(count, keepalive=True):6.2f} us/request")
    base = 0.0
    for name, settings in OBSERVABILITY.items():
        with tempfile.TemporaryDirectory() as tmpdir:
            if settings.get("accesslog"):
                settings = dict(settings, accesslog=os.path.join(tmpdir, "access.log"))
            cost = bench_handler(count, keepalive=True, **settings)
        base = base or cost
        print(f"keep-alive, {name:22} {cost:6.2f} us/request  ({cost / base - 1:+.1%})")
