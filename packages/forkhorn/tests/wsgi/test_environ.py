"""The PEP 3333 environ: keys, decoding, trust, and headers that can never overwrite others."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from forkhorn.http.errors import HTTPError, InvalidSchemeHeaders
from forkhorn.http.parser import ParserLimits, RequestParser
from forkhorn.http.peers import PeerMatcher
from forkhorn.http.proxy import ProxyInfo
from forkhorn.wsgi.environ import EnvironBuilder, ScriptNameMismatch
from forkhorn.wsgi.handler import Connection
from forkhorn.wsgi.input import EmptyInput
from forkhorn.wsgi.response import FileWrapper
from wsgi_support import make_config


def build(
    head: bytes,
    *,
    client: Any = ("10.1.2.3", 40000),
    server: Any = ("127.0.0.1", 8000),
    proxy: Any = None,
    monkeypatch: pytest.MonkeyPatch | None = None,
    **settings: Any,
) -> dict[str, Any]:
    cfg = make_config(**settings)
    peers = PeerMatcher(list(cfg.forwarded_allow_ips))
    sock = socket.socket()
    try:
        conn = Connection(sock, client, server)
        conn.proxy = proxy
        parser = RequestParser(ParserLimits.from_config(cfg), trusted=conn.is_trusted(peers))
        parsed = parser.parse_head(head)
        assert parsed is not None
        builder = EnvironBuilder(
            cfg, forwarded_peers=peers, multithread=False, file_wrapper=FileWrapper
        )
        return builder.build(parsed[0], conn, EmptyInput())
    finally:
        sock.close()


def test_pep3333_keys_and_types() -> None:
    env = build(b"GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: example.com\r\n\r\n")
    assert env["REQUEST_METHOD"] == "GET"
    assert env["SCRIPT_NAME"] == ""
    assert env["PATH_INFO"] == "/a/b"
    assert env["QUERY_STRING"] == "x=1&y=2"
    assert env["RAW_URI"] == "/a/b?x=1&y=2"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["SERVER_NAME"] == "example.com"
    assert env["SERVER_PORT"] == "80"
    assert env["REMOTE_ADDR"] == "10.1.2.3"
    assert env["REMOTE_PORT"] == "40000"
    assert env["HTTP_HOST"] == "example.com"
    assert env["wsgi.version"] == (1, 0)
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.input_terminated"] is True
    assert env["wsgi.multithread"] is False
    assert env["wsgi.multiprocess"] is False
    assert env["wsgi.run_once"] is False
    assert env["wsgi.file_wrapper"] is FileWrapper
    assert env["SERVER_SOFTWARE"].startswith("forkhorn/")
    assert "CONTENT_LENGTH" not in env and "CONTENT_TYPE" not in env
    for key, value in env.items():
        if key.isupper():
            assert type(value) is str, key


def test_multiprocess_follows_workers() -> None:
    env = build(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", workers=3)
    assert env["wsgi.multiprocess"] is True


def test_path_info_is_percent_decoded_as_latin1() -> None:
    env = build(b"GET /caf%C3%A9/%2F%20x?q=%20 HTTP/1.1\r\nHost: h\r\n\r\n")
    assert env["PATH_INFO"] == "/caf\xc3\xa9// x"
    assert env["PATH_INFO"].encode("latin-1").decode("utf-8") == "/café// x"
    assert env["QUERY_STRING"] == "q=%20"  # the query string stays encoded
    assert env["RAW_URI"] == "/caf%C3%A9/%2F%20x?q=%20"


def test_server_name_and_port_from_host() -> None:
    assert build(b"GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n")["SERVER_PORT"] == "8080"
    env = build(b"GET / HTTP/1.1\r\nHost: [::1]:9000\r\n\r\n")
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("::1", "9000")


def test_server_name_falls_back_to_the_listener() -> None:
    env = build(b"GET / HTTP/1.0\r\n\r\n", server=("127.0.0.1", 8123))
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("127.0.0.1", "8123")
    assert env["SERVER_PROTOCOL"] == "HTTP/1.0"


def test_absolute_form_authority_wins_over_host() -> None:
    env = build(b"GET http://target.example:81/p HTTP/1.1\r\nHost: other\r\n\r\n")
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("target.example", "81")
    assert env["PATH_INFO"] == "/p"


def test_unix_socket_peer() -> None:
    env = build(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", client="", server="/tmp/app.sock")
    assert env["REMOTE_ADDR"] == ""
    assert "REMOTE_PORT" not in env
    env = build(b"GET / HTTP/1.0\r\n\r\n", client="", server="/tmp/app.sock")
    assert env["SERVER_NAME"] == "/tmp/app.sock"


def test_proxy_protocol_client_replaces_the_peer() -> None:
    proxy = ProxyInfo("192.0.2.7", 5555, "198.51.100.1", 443)
    env = build(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", proxy=proxy)
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("192.0.2.7", "5555")
    assert (env["PROXY_ADDR"], env["PROXY_PORT"]) == ("198.51.100.1", "443")


def test_content_headers_get_cgi_names() -> None:
    env = build(
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n"
    )
    assert env["CONTENT_TYPE"] == "text/plain"
    assert env["CONTENT_LENGTH"] == "0"
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env


def test_repeated_headers_are_joined_with_commas() -> None:
    env = build(b"GET / HTTP/1.1\r\nHost: h\r\nAccept: a\r\nX-Tag: 1\r\nAccept: b\r\n\r\n")
    assert env["HTTP_ACCEPT"] == "a,b"
    assert env["HTTP_X_TAG"] == "1"


def test_underscore_header_cannot_overwrite_its_dash_twin() -> None:
    head = b"GET / HTTP/1.1\r\nHost: h\r\nX-Auth: real\r\nX_Auth: forged\r\n\r\n"
    assert build(head)["HTTP_X_AUTH"] == "real"  # header_map=drop: the forged one is dropped
    assert build(head, header_map="dangerous")["HTTP_X_AUTH"] == "real,forged"


def test_https_on_a_tls_listener(tmp_path: Any) -> None:
    env = build(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", certfile=str(tmp_path / "c.pem"))
    assert env["wsgi.url_scheme"] == "https"
    assert env["SERVER_PORT"] == "443"


def test_secure_scheme_headers_only_from_trusted_peers() -> None:
    head = b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: https\r\n\r\n"
    assert build(head, client=("127.0.0.1", 1))["wsgi.url_scheme"] == "https"
    assert build(head, client=("10.9.9.9", 1))["wsgi.url_scheme"] == "http"
    assert (
        build(head, client=("10.9.9.9", 1), forwarded_allow_ips="10.0.0.0/8")["wsgi.url_scheme"]
        == "https"
    )


def test_conflicting_scheme_headers_are_refused() -> None:
    head = b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: https\r\nX-Forwarded-SSL: off\r\n\r\n"
    with pytest.raises(InvalidSchemeHeaders) as caught:
        build(head, client=("127.0.0.1", 1))
    assert caught.value.status == 400


def test_script_name_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCRIPT_NAME", "/app")
    env = build(b"GET /app/x%2Fy HTTP/1.1\r\nHost: h\r\n\r\n")
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/app", "/x/y")
    with pytest.raises(ScriptNameMismatch) as caught:
        build(b"GET /other HTTP/1.1\r\nHost: h\r\n\r\n")
    assert isinstance(caught.value, HTTPError) and caught.value.status == 500


def test_script_name_header_only_from_trusted_forwarders() -> None:
    head = b"GET /mount/page HTTP/1.1\r\nHost: h\r\nSCRIPT_NAME: /mount\r\n\r\n"
    env = build(head, client=("127.0.0.1", 1))
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/mount", "/page")
    env = build(head, client=("10.9.9.9", 1))
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("", "/mount/page")
    assert "HTTP_SCRIPT_NAME" not in env
