"""The app the deployment tests serve: it reports what it saw of the request as JSON.

``/healthz`` is the readiness path the proxies' health checks and the docs use.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import Any

REPORTED = (
    "REMOTE_ADDR",
    "REMOTE_PORT",
    "PROXY_ADDR",
    "PROXY_PORT",
    "SERVER_NAME",
    "SERVER_PORT",
    "SCRIPT_NAME",
    "PATH_INFO",
    "HTTP_HOST",
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_PROTO",
    "SSL_CLIENT_CERT",
    "wsgi.url_scheme",
)


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/healthz":
        body = b"ok\n"
        content_type = "text/plain"
    else:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        received = environ["wsgi.input"].read(length) if length else b""
        report = {key: environ.get(key) for key in REPORTED}
        report["pid"] = os.getpid()
        report["body_length"] = len(received)
        peercert = environ.get("forkhorn.peercert")
        report["peer_subject"] = (
            dict(item for rdn in peercert.get("subject", ()) for item in rdn) if peercert else None
        )
        body = json.dumps(report).encode()
        content_type = "application/json"
    start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]
