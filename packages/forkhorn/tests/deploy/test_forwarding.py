"""Forwarded information over real sockets: ``secure_scheme_headers`` and
``forwarder_headers`` are honoured only from peers in ``forwarded_allow_ips`` (addresses,
networks, ``*``, ``unix``); contradictory scheme headers are refused; REMOTE_ADDR stays the
socket peer (the client address travels in X-Forwarded-For, or by the PROXY protocol).

Clients connect from other loopback addresses (127.0.0.2, ...) to play untrusted peers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from proxies import Forkhorn, get, parse_reply, worker_params

HTTPS = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}


@pytest.mark.parametrize("worker", worker_params())
def test_scheme_headers_are_honoured_only_from_trusted_peers(worker: str, launch: Any) -> None:
    server = launch(Forkhorn, worker)  # forwarded_allow_ips: 127.0.0.1,::1 (the default)
    trusted = server.get_json("/", HTTPS)
    assert trusted["wsgi.url_scheme"] == "https"
    assert trusted["SERVER_PORT"] == "443"  # Host without a port: the scheme's default
    assert trusted["REMOTE_ADDR"] == "127.0.0.1"  # the peer, whatever X-Forwarded-For says
    assert trusted["HTTP_X_FORWARDED_FOR"] == "203.0.113.7"

    spoofed = server.get_json("/", HTTPS, source="127.0.0.2")
    assert spoofed["wsgi.url_scheme"] == "http"
    assert spoofed["REMOTE_ADDR"] == "127.0.0.2"

    contradiction = {"X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "off"}
    refused = parse_reply(server.request(get("/", contradiction)))
    assert refused.status == 400
    # from an untrusted peer the headers mean nothing, so they cannot contradict
    ignored = server.get_json("/", contradiction, source="127.0.0.2")
    assert ignored["wsgi.url_scheme"] == "http"


@pytest.mark.parametrize("worker", worker_params("sync", "gthread"))
def test_script_name_header_only_from_trusted_peers(worker: str, launch: Any) -> None:
    server = launch(Forkhorn, worker)
    trusted = server.get_json("/app/page", {"SCRIPT_NAME": "/app"})
    assert (trusted["SCRIPT_NAME"], trusted["PATH_INFO"]) == ("/app", "/page")
    untrusted = server.get_json("/app/page", {"SCRIPT_NAME": "/app"}, source="127.0.0.2")
    assert (untrusted["SCRIPT_NAME"], untrusted["PATH_INFO"]) == ("", "/app/page")


def test_forwarded_allow_ips_takes_networks(launch: Any) -> None:
    server = launch(Forkhorn, "gthread", "--forwarded-allow-ips", "127.0.0.0/30")
    assert server.get_json("/", HTTPS, source="127.0.0.2")["wsgi.url_scheme"] == "https"
    assert server.get_json("/", HTTPS, source="127.0.0.5")["wsgi.url_scheme"] == "http"


def test_forwarded_allow_ips_star_trusts_every_peer(launch: Any) -> None:
    server = launch(Forkhorn, "sync", "--forwarded-allow-ips", "*")
    assert server.get_json("/", HTTPS, source="127.0.0.9")["wsgi.url_scheme"] == "https"


@pytest.mark.parametrize(
    ("allow", "scheme"), [(None, "https"), ("unix", "https"), ("127.0.0.1", "http")]
)
def test_unix_socket_peers_are_trusted_by_default_and_while_listed(
    allow: str | None, scheme: str, launch: Any, tmp_path: Path
) -> None:
    # Gunicorn trusts unix-socket peers (a local nginx) unconditionally; forkhorn's default
    # list says so with "unix", and a list without it stops trusting them.
    args = ("--forwarded-allow-ips", allow) if allow else ()
    server = launch(Forkhorn, "gthread", *args, bind=f"unix:{tmp_path / 'app.sock'}")
    seen = server.get_json("/", HTTPS)
    assert seen["wsgi.url_scheme"] == scheme
    assert seen["REMOTE_ADDR"] == ""  # a unix peer has no address (as in Gunicorn)
