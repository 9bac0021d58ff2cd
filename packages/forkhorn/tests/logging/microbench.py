"""Access-log and metrics microbenchmarks, importable by the bench session (not tests).

``bench_access(n, tmpdir, **settings)`` calls ``Logger.access`` ``n`` times with a realistic
browser environ, the access log writing to a file in ``tmpdir``, and returns calls per
second (best of 5 rounds, so a busy machine's hiccups do not decide the figure).

``bench_request_work(n, tmpdir, **settings)`` is the observability work of one request alone,
as the worker and the handler run it (``metrics.begin()``, two clock reads, the handler's
guarded ``log.access(...)`` call, ``metrics.end()``), minus the same code with everything
off: CPU microseconds per request (best of 25 rounds). The cost relative to a whole
request's path (parse, environ, app, send) with these settings on and off:
``tests/wsgi/microbench.py``, which serves requests through the real handler.

Run directly: ``python tests/logging/microbench.py`` prints the figures of each mode.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from types import SimpleNamespace
from typing import Any

from forkhorn.config import Config
from forkhorn.logging import Logger

ENVIRON: dict[str, Any] = {
    "REQUEST_METHOD": "GET",
    "SCRIPT_NAME": "",
    "PATH_INFO": "/articles/2024/forkhorn-is-fast",
    "QUERY_STRING": "utm_source=feed&page=2",
    "RAW_URI": "/articles/2024/forkhorn-is-fast?utm_source=feed&page=2",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "SERVER_NAME": "www.example.com",
    "SERVER_PORT": "80",
    "REMOTE_ADDR": "192.168.10.23",
    "REMOTE_PORT": "51234",
    "HTTP_HOST": "www.example.com",
    "HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "HTTP_ACCEPT": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "HTTP_REFERER": "https://www.example.com/articles/",
    "HTTP_COOKIE": "session=3f9a1c7e5b2d4a8f; theme=dark; consent=1",
    "wsgi.url_scheme": "http",
}
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", "14")]


def make_logger(tmpdir: str, **settings: Any) -> Logger:
    cfg = Config()
    cfg.set("errorlog", os.path.join(tmpdir, "error.log"))
    cfg.set("accesslog", os.path.join(tmpdir, "access.log"))
    for name, value in settings.items():
        cfg.set(name, value)
    return Logger(cfg)


def bench_access(n: int, tmpdir: str, **settings: Any) -> float:
    log = make_logger(tmpdir, **settings)
    access = log.access
    environ = ENVIRON
    best = 0.0
    per_round = max(1, n // 5)
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(per_round):
            access(environ, "200 OK", HEADERS, 14, 0.000731)
        elapsed = time.perf_counter() - start
        best = max(best, per_round / elapsed)
    flush = getattr(log, "flush", None)
    if flush is not None:
        flush()
    return best


def _bound_logger(tmpdir: str, **settings: Any) -> tuple[Logger, Any]:
    """A logger (access log only if ``settings`` name one) bound as in a worker, and its
    metrics region when ``metrics_bind`` is set."""
    from forkhorn.instrument.board import MetricsBoard

    cfg = Config()
    cfg.set("errorlog", os.path.join(tmpdir, "error.log"))
    for name, value in settings.items():
        cfg.set(name, value)
    log = Logger(cfg)
    metrics = MetricsBoard(capacity=1).region(0) if cfg.metrics_bind else None
    log.bind_worker(SimpleNamespace(metrics=metrics))
    return log, metrics


class _Guarded:
    """What the connection handler does per request around the logger (``_access``)."""

    def __init__(self, log: Any, metrics: Any) -> None:
        self.log = log
        self.metrics = metrics
        self.access_enabled = bool(getattr(log, "access_enabled", False))

    def _access(self, environ: dict[str, Any], started: float) -> None:
        try:
            self.log.access(environ, "200 OK", HEADERS, 14, time.monotonic() - started)
        except Exception:
            self.log.exception("access log failed")

    def request(self, environ: dict[str, Any]) -> None:
        metrics = self.metrics
        if metrics is not None:
            metrics.begin()
        started = time.monotonic() if self.access_enabled else 0.0
        if self.access_enabled:
            self._access(environ, started)
        if metrics is not None:
            metrics.end()


def bench_request_work(n: int, tmpdir: str, **settings: Any) -> float:
    log, metrics = _bound_logger(tmpdir, **settings)
    on = _Guarded(log, metrics).request
    off = _Guarded(None, None).request
    environ = ENVIRON
    best_on = best_off = float("inf")
    per_round = max(1, n // 25)
    for _ in range(25):  # interleaved, so both see the same machine
        for function, best in ((on, best_on), (off, best_off)):
            start = time.process_time()
            for _ in range(per_round):
                function(environ)
            elapsed = (time.process_time() - start) / per_round * 1e6
            if function is on:
                best_on = min(best, elapsed)
            else:
                best_off = min(best, elapsed)
    log.flush()
    return best_on - best_off


MODES: dict[str, dict[str, Any]] = {
    "text (Gunicorn default format)": {},
    "json": {"log_format": "json"},
}


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    for name, settings in MODES.items():
        with tempfile.TemporaryDirectory() as tmpdir:
            try:
                rate = bench_access(n, tmpdir, **settings)
            except Exception as exc:  # a mode this version does not have
                print(f"{name:40} n/a ({exc})")
                continue
        print(f"{name:40} {rate:>12,.0f} calls/s  {1e6 / rate:6.2f} us/call")
    work_modes: dict[str, dict[str, Any]] = {
        "request work: access log + metrics": {"accesslog": "ACCESS", "metrics_bind": "X"},
        "request work: json log + metrics": {
            "accesslog": "ACCESS",
            "metrics_bind": "X",
            "log_format": "json",
        },
        "request work: metrics": {"metrics_bind": "X"},
    }
    for name, settings in work_modes.items():
        with tempfile.TemporaryDirectory() as tmpdir:
            settings = dict(settings, metrics_bind="127.0.0.1:9100")
            if settings.get("accesslog"):
                settings["accesslog"] = os.path.join(tmpdir, "access.log")
            cost = bench_request_work(n, tmpdir, **settings)
        print(f"{name:40} {cost:6.2f} us CPU/request over the same code with all off")


if __name__ == "__main__":
    main()
