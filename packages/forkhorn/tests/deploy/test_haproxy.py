"""Real HAProxy in front of each worker class, running ``docs/deploy/haproxy.cfg``: the
client's address arrives by the PROXY protocol v2, the scheme as X-Forwarded-Proto from a
trusted peer, HAProxy's health checks (PROXY v2 LOCAL) pass, clients cannot spoof either."""

from __future__ import annotations

import json
import shutil
import time
from typing import Any

import pytest
import requests
from proxies import (
    Certs,
    Forkhorn,
    HAProxy,
    client_context,
    curl,
    http_client,
    needs,
    worker_params,
)

pytestmark = needs("haproxy", "openssl")


def fetch(port: int, headers: dict[str, str] | None = None, **kwargs: Any) -> tuple[Any, int]:
    """One request through HAProxy: its JSON and the client's own source port."""
    conn = http_client(port, **kwargs)
    try:
        conn.request("GET", "/page", headers={"Host": "myapp.example", **(headers or {})})
        reply = conn.getresponse()
        body = reply.read()
        assert reply.status == 200, body
        assert conn.sock is not None
        return json.loads(body), conn.sock.getsockname()[1]
    finally:
        conn.close()


@pytest.mark.parametrize("worker", worker_params())
def test_haproxy_with_proxy_v2_in_front_of_each_worker_class(
    worker: str, launch: Any, certs: Certs
) -> None:
    app = launch(Forkhorn, worker, "--proxy-protocol", "v2", "--keep-alive", "75",
                 "--access-logfile", "-")  # fmt: skip
    checks_before = app.log.count("GET /healthz")
    lb = launch(HAProxy, app.port, certs)

    seen, client_port = fetch(lb.http_port, source="127.0.0.2")
    assert (seen["REMOTE_ADDR"], seen["REMOTE_PORT"]) == ("127.0.0.2", str(client_port))
    assert (seen["PROXY_ADDR"], seen["PROXY_PORT"]) == ("127.0.0.1", str(lb.http_port))
    assert seen["wsgi.url_scheme"] == "http"

    secure, client_port = fetch(lb.https_port, tls=client_context(certs), source="127.0.0.3")
    assert (secure["REMOTE_ADDR"], secure["REMOTE_PORT"]) == ("127.0.0.3", str(client_port))
    assert secure["wsgi.url_scheme"] == "https"

    spoofed, _ = fetch(lb.http_port, {"X-Forwarded-Proto": "https"}, source="127.0.0.2")
    assert spoofed["wsgi.url_scheme"] == "http"  # HAProxy overwrites it

    with requests.Session() as session:
        for size in (0, 100_000, 3):
            reply = session.post(f"http://127.0.0.1:{lb.http_port}/up", data=b"y" * size,
                                 timeout=15)  # fmt: skip
            assert reply.status_code == 200
            assert reply.json()["body_length"] == size
            assert reply.json()["REMOTE_ADDR"] == "127.0.0.1"

    if shutil.which("curl"):
        out = curl(f"https://127.0.0.1:{lb.https_port}/curl", "--interface", "127.0.0.4")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["REMOTE_ADDR"] == "127.0.0.4"

    # HAProxy's health checks (PROXY v2 LOCAL, then GET /healthz) are served
    deadline = time.monotonic() + 10
    while app.log.count("GET /healthz") <= checks_before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert app.log.count("GET /healthz") > checks_before, app.log
    assert "is DOWN" not in lb.log, lb.log
    assert "Invalid request" not in app.log
    assert "Traceback" not in app.log
