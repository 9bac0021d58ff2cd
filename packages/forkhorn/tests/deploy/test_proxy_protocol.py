"""The PROXY protocol over real sockets: v1 and v2 headers put the client's address in
REMOTE_ADDR/REMOTE_PORT on every worker class; ``proxy_protocol`` modes; peers outside
``proxy_allow_ips`` that send a header are refused (403, connection closed)."""

from __future__ import annotations

from typing import Any

import pytest
from proxies import Forkhorn, get, parse_reply, proxy_v1, proxy_v2, worker_params

CLIENT = ("198.51.100.7", 40123)
FRONTEND = ("192.0.2.1", 443)


@pytest.mark.parametrize("worker", worker_params())
def test_proxy_headers_set_the_client_address(worker: str, launch: Any) -> None:
    server = launch(Forkhorn, worker, "--proxy-protocol", "auto")
    v2 = server.get_json("/", prefix=proxy_v2(CLIENT, FRONTEND))
    assert (v2["REMOTE_ADDR"], v2["REMOTE_PORT"]) == ("198.51.100.7", "40123")
    assert (v2["PROXY_ADDR"], v2["PROXY_PORT"]) == ("192.0.2.1", "443")
    v1 = server.get_json("/", prefix=proxy_v1(("2001:db8::5", 5555), ("2001:db8::1", 80)))
    assert (v1["REMOTE_ADDR"], v1["REMOTE_PORT"]) == ("2001:db8::5", "5555")
    # LOCAL (a proxy's own health check) and no header at all (auto): the socket peer
    assert server.get_json("/", prefix=proxy_v2(None))["REMOTE_ADDR"] == "127.0.0.1"
    assert server.get_json("/")["REMOTE_ADDR"] == "127.0.0.1"

    # a peer outside proxy_allow_ips (127.0.0.1,::1) may not claim another address
    refused = parse_reply(server.request(get("/"), prefix=proxy_v2(CLIENT), source="127.0.0.2"))
    assert refused.status == 403
    assert refused.headers["connection"] == "close"
    # ...but it is served as itself when it sends no header
    assert server.get_json("/", source="127.0.0.2")["REMOTE_ADDR"] == "127.0.0.2"
    assert "Traceback" not in server.log


def test_keep_alive_requests_keep_the_proxied_address(launch: Any) -> None:
    server = launch(Forkhorn, "gthread", "--proxy-protocol", "v2")
    twice = get("/").replace(b"Connection: close", b"Connection: keep-alive") + get("/")
    data = server.request(twice, prefix=proxy_v2(CLIENT))
    assert data.count(b'"REMOTE_ADDR": "198.51.100.7"') == 2


@pytest.mark.parametrize(
    ("mode", "prefix", "status"),
    [
        ("v1", proxy_v1(CLIENT, FRONTEND), 200),
        ("v1", proxy_v2(CLIENT, FRONTEND), 400),
        ("v1", b"", 400),  # required from an allowed peer
        ("v2", proxy_v2(CLIENT, FRONTEND), 200),
        ("v2", proxy_v1(CLIENT, FRONTEND), 400),
        ("v2", b"", 400),
        ("off", proxy_v1(CLIENT, FRONTEND), 400),  # not HTTP
        ("off", b"", 200),
    ],
)
def test_proxy_protocol_modes(mode: str, prefix: bytes, status: int, launch: Any) -> None:
    server = launch(Forkhorn, "sync", "--proxy-protocol", mode)
    assert parse_reply(server.request(get("/"), prefix=prefix)).status == status


def test_proxy_allow_ips_takes_networks(launch: Any) -> None:
    server = launch(Forkhorn, "sync", "--proxy-protocol", "v2", "--proxy-allow-from", "127.0.0.0/8")
    seen = server.get_json("/", prefix=proxy_v2(CLIENT), source="127.0.0.3")
    assert seen["REMOTE_ADDR"] == "198.51.100.7"
