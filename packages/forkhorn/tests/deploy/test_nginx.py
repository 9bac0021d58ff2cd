"""Real nginx in front of each worker class, running ``docs/deploy/nginx.conf``: HTTP/1.1
keep-alive to forkhorn, X-Forwarded-For/-Proto honoured because nginx is a trusted peer,
TLS terminated by nginx seen as ``https``, and nothing a client sends can change that."""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest
import requests
from proxies import (
    Certs,
    Forkhorn,
    Nginx,
    client_context,
    curl,
    http_client,
    needs,
    worker_params,
)

pytestmark = needs("nginx", "openssl")


def fetch(port: int, path: str = "/", headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
    """One request through the proxy from ``source`` (see ``http_client``): its JSON."""
    conn = http_client(port, **kwargs)
    try:
        conn.request("GET", path, headers={"Host": "myapp.example", **(headers or {})})
        reply = conn.getresponse()
        assert reply.status == 200, reply.read()
        return json.loads(reply.read())
    finally:
        conn.close()


@pytest.mark.parametrize("worker", worker_params())
def test_nginx_in_front_of_each_worker_class(worker: str, launch: Any, certs: Certs) -> None:
    app = launch(Forkhorn, worker, "--keep-alive", "75")
    nginx = launch(Nginx, app.port, certs)

    # a client at 127.0.0.2: the app sees nginx as the peer, the client in X-Forwarded-For
    seen = fetch(nginx.http_port, "/page", source="127.0.0.2")
    assert seen["REMOTE_ADDR"] == "127.0.0.1"
    assert seen["HTTP_X_FORWARDED_FOR"] == "127.0.0.2"
    assert seen["wsgi.url_scheme"] == "http"
    assert (seen["HTTP_HOST"], seen["PATH_INFO"]) == ("myapp.example", "/page")

    # TLS terminated by nginx: https, from a trusted proxy
    secure = fetch(nginx.https_port, tls=client_context(certs), source="127.0.0.2")
    assert secure["wsgi.url_scheme"] == "https"
    assert secure["SERVER_PORT"] == "443"

    # a client cannot claim https or another address: nginx overwrites the scheme and
    # appends the real peer to X-Forwarded-For (the app must read it from the right)
    spoof = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    spoofed = fetch(nginx.http_port, headers=spoof, source="127.0.0.2")
    assert spoofed["wsgi.url_scheme"] == "http"
    assert spoofed["HTTP_X_FORWARDED_FOR"] == "203.0.113.9, 127.0.0.2"

    # a real client, bodies, and upstream keep-alive (the sync worker closes every time)
    ports = set()
    with requests.Session() as session:
        for size in (0, 10, 200_000, 1):
            reply = session.post(f"http://127.0.0.1:{nginx.http_port}/up", data=b"x" * size,
                                 timeout=15)  # fmt: skip
            assert reply.status_code == 200
            assert reply.json()["body_length"] == size
            ports.add(reply.json()["REMOTE_PORT"])
    if worker == "sync":
        assert len(ports) == 4
    else:
        assert len(ports) < 4, "nginx should reuse its upstream connection"

    if shutil.which("curl"):
        out = curl(f"https://127.0.0.1:{nginx.https_port}/curl")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["wsgi.url_scheme"] == "https"
    assert "Traceback" not in app.log


def test_an_untrusted_nginx_cannot_set_the_scheme(launch: Any, certs: Certs) -> None:
    """forkhorn trusting another address: nginx's X-Forwarded-Proto is ignored."""
    app = launch(Forkhorn, "gthread", "--forwarded-allow-ips", "127.0.0.2")
    nginx = launch(Nginx, app.port, certs)
    seen = fetch(nginx.https_port, tls=client_context(certs))
    assert seen["HTTP_X_FORWARDED_PROTO"] == "https"
    assert seen["wsgi.url_scheme"] == "http"
