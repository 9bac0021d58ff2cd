"""A readiness path for load balancers and Kubernetes: ``/healthz`` answers 200 from a
worker, without touching the app (wrap the app: ``app = Healthz(app)``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


class Healthz:
    def __init__(self, app: Callable[..., Iterable[bytes]], path: str = "/healthz") -> None:
        self.app = app
        self.path = path

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") == self.path:
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
            return [b"ok\n"]
        return self.app(environ, start_response)
