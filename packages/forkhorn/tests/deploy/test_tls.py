"""TLS on every worker class (``forkhorn.tls``): real clients (``requests``, ``curl``),
mutual TLS with the client certificate in the environ, the ``ssl_context`` hook from the
documented config file, a plain-HTTP request answered 400, failures logged without a
traceback; and the module's pieces on their own."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from forkhorn import tls
from forkhorn.config.config import Config
from proxies import (
    DEPLOY_DOCS,
    Certs,
    Forkhorn,
    client_context,
    curl,
    exchange,
    get,
    needs,
    parse_reply,
    worker_params,
)

pytestmark = needs("openssl")


def tls_args(certs: Certs, *extra: str) -> tuple[str, ...]:
    return ("--certfile", str(certs.server_cert), "--keyfile", str(certs.server_key), *extra)


# --- the module's pieces -----------------------------------------------------------------


def test_tls_is_off_without_a_certfile() -> None:
    assert tls.server_context(Config(), None) is None


def test_the_default_context_follows_the_settings(certs: Certs) -> None:
    cfg = Config()
    cfg.set("certfile", str(certs.server_cert))
    cfg.set("keyfile", str(certs.server_key))
    cfg.set("ca_certs", str(certs.ca_cert))
    cfg.set("cert_reqs", "2")
    cfg.set("ciphers", "ECDHE+AESGCM")
    context = tls.server_context(cfg, None)
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    subjects = [dict(rdn[0] for rdn in ca["subject"]) for ca in context.get_ca_certs()]  # type: ignore[misc]
    assert {"commonName": "forkhorn test clients CA"} in subjects
    names = {c["name"] for c in context.get_ciphers() if c["protocol"] != "TLSv1.3"}
    assert names and all("GCM" in name for name in names)


def test_the_hook_result_wins_and_gets_the_default_factory(certs: Certs) -> None:
    cfg = Config()
    cfg.set("certfile", str(certs.server_cert))
    cfg.set("keyfile", str(certs.server_key))
    seen: dict[str, Any] = {}

    def forkhorn_ssl_context(config: Any, default_ssl_context_factory: Any) -> Any:
        seen["config"] = config
        context = default_ssl_context_factory()
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        return context

    hook = SimpleNamespace(forkhorn_ssl_context=forkhorn_ssl_context)
    context = tls.server_context(cfg, SimpleNamespace(hook=hook))
    assert seen["config"] is cfg
    assert context is not None and context.minimum_version == ssl.TLSVersion.TLSv1_3


def test_an_unusable_certificate_stops_the_worker_with_boot_error(tmp_path: Path) -> None:
    from forkhorn.workers.base import WORKER_BOOT_ERROR

    cfg = Config()
    cfg.set("certfile", str(tmp_path / "missing.crt"))
    errors: list[str] = []
    log = SimpleNamespace(error=lambda msg, *args: errors.append(msg % args))
    worker = SimpleNamespace(cfg=cfg, log=log, app=None)
    with pytest.raises(SystemExit) as exit_info:
        tls.TLSAcceptor.for_worker(worker)
    assert exit_info.value.code == WORKER_BOOT_ERROR
    assert "cannot set up TLS" in errors[0] and "missing.crt" in errors[0]


def test_der_to_pem_matches_the_ssl_module(certs: Certs) -> None:
    pem = certs.client_cert.read_text()
    der = ssl.PEM_cert_to_DER_cert(pem)
    assert tls.der_to_pem(der) == ssl.DER_cert_to_PEM_cert(der)


def test_the_plain_http_answer_is_a_complete_response() -> None:
    reply = parse_reply(tls.PLAIN_HTTP_RESPONSE)
    assert reply.status == 400
    assert int(reply.headers["content-length"]) == len(reply.body)
    assert reply.headers["connection"] == "close"


def test_the_tls_modules_do_not_import_ssl() -> None:
    """The master imports the worker modules before gevent/eventlet patch ``ssl``."""
    code = (
        "import sys, forkhorn.tls, forkhorn.workers.sync, forkhorn.workers.gthread, "
        "forkhorn.workers.cooperative, forkhorn.wsgi.environ; print('ssl' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)  # fmt: skip
    assert result.stdout.strip() == "False"


# --- real servers, every worker class --------------------------------------------------------


@pytest.mark.parametrize("worker", worker_params())
def test_tls_serves_a_real_client_and_answers_plain_http_with_400(
    worker: str, launch: Any, certs: Certs
) -> None:
    server = launch(Forkhorn, worker, *tls_args(certs), certs=certs)
    url = f"https://127.0.0.1:{server.port}"
    with requests.Session() as session:
        for _ in range(3):
            reply = session.get(f"{url}/info", verify=str(certs.server_cert), timeout=15)
            assert reply.status_code == 200
            seen = reply.json()
            assert seen["wsgi.url_scheme"] == "https"
            assert seen["REMOTE_ADDR"] == "127.0.0.1"
            assert seen["SSL_CLIENT_CERT"] is None  # no mutual TLS asked for
        body = b"x" * 300_000
        posted = session.post(f"{url}/upload", data=body, verify=str(certs.server_cert), timeout=15)
        assert posted.json()["body_length"] == len(body)

    plain = parse_reply(server.request(get("/"), tls=None))
    assert plain.status == 400
    assert b"https://" in plain.body
    assert server.get_json("/")["wsgi.url_scheme"] == "https"  # the worker is fine
    assert "Plain HTTP request from 127.0.0.1:" in server.log
    assert "Traceback" not in server.log


@needs("curl")
@pytest.mark.parametrize("worker", worker_params())
def test_curl_over_tls(worker: str, launch: Any, certs: Certs) -> None:
    server = launch(Forkhorn, worker, *tls_args(certs), certs=certs)
    result = curl(f"https://127.0.0.1:{server.port}/curl")
    assert result.returncode == 0, result.stderr
    assert '"wsgi.url_scheme": "https"' in result.stdout


@pytest.mark.parametrize("worker", worker_params())
def test_mutual_tls_puts_the_client_certificate_in_the_environ(
    worker: str, launch: Any, certs: Certs
) -> None:
    server = launch(
        Forkhorn, worker,
        *tls_args(certs, "--ca-certs", str(certs.ca_cert), "--cert-reqs", "2",
                  "--log-level", "debug"),
        certs=certs,
    )  # fmt: skip
    reply = requests.get(
        f"https://127.0.0.1:{server.port}/whoami",
        verify=str(certs.server_cert),
        cert=(str(certs.client_cert), str(certs.client_key)),
        timeout=15,
    )
    seen = reply.json()
    assert seen["peer_subject"] == {"commonName": "client-1"}
    shown = ssl.PEM_cert_to_DER_cert(seen["SSL_CLIENT_CERT"])
    assert shown == ssl.PEM_cert_to_DER_cert(certs.client_cert.read_text())

    # no client certificate: refused in the handshake, logged at debug, no traceback
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        server.request(get("/"), tls=client_context(certs))
    assert server.get_json("/")["peer_subject"] == {"commonName": "client-1"}
    assert "TLS handshake with 127.0.0.1:" in server.log
    assert "Traceback" not in server.log


@pytest.mark.parametrize("worker", worker_params("sync", "gthread"))
def test_the_documented_ssl_context_hook_sets_tls13_minimum(
    worker: str, launch: Any, certs: Certs
) -> None:
    """``docs/deploy/tls.conf.py`` as shown (mutual TLS, TLS 1.3 minimum), its paths
    replaced by this run's on the command line."""
    server = launch(
        Forkhorn, worker, "-c", str(DEPLOY_DOCS / "tls.conf.py"),
        *tls_args(certs, "--ca-certs", str(certs.ca_cert)),
        certs=certs, mutual=True,
    )  # fmt: skip
    assert "--cert-reqs" not in server.proc.args  # cert_reqs = 2 comes from the file
    mutual = client_context(certs, client_cert=True)
    assert server.get_json("/", tls=mutual)["peer_subject"] == {"commonName": "client-1"}
    old = client_context(certs, client_cert=True)
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        server.request(get("/"), tls=old)


@pytest.mark.parametrize(
    ("content", "status", "said"),
    [
        (None, 2, "'{path}' is not a file"),  # refused before anything starts
        ("not a certificate\n", 3, "cannot set up TLS"),  # the workers cannot load it
    ],
)
def test_an_unusable_certificate_halts_the_server(
    tmp_path: Path, content: str | None, status: int, said: str
) -> None:
    from proxies import Process, free_port

    cert = tmp_path / "server.crt"
    if content is not None:
        cert.write_text(content)
    port = free_port()
    argv = [sys.executable, "-m", "forkhorn", "-b", f"127.0.0.1:{port}",
            "--certfile", str(cert), "deploy_app:app"]  # fmt: skip
    env = {"PYTHONPATH": str(Path(__file__).parent), "FORKHORN_DISABLE_PLUGIN_AUTOLOAD": "1",
           "PATH": "/usr/bin:/bin"}  # fmt: skip
    server = Process(argv, tmp_path / "server.log", env)
    try:
        assert server.proc.wait(30) == status
    finally:
        server.stop()
    assert said.format(path=cert) in server.log
    assert "Traceback" not in server.log


def test_tls_client_sees_the_certificate_it_was_given(launch: Any, certs: Certs) -> None:
    """A sanity check of the fixtures: the server certificate verifies for 127.0.0.1."""
    server = launch(Forkhorn, "sync", *tls_args(certs), certs=certs)
    data = exchange(server.address, get("/"), tls=client_context(certs))
    assert parse_reply(data).status == 200
    assert shutil.which("openssl")


@pytest.mark.parametrize("worker", worker_params())
def test_a_stalled_handshake_meets_the_timeout(worker: str, launch: Any, certs: Certs) -> None:
    server = launch(Forkhorn, worker, *tls_args(certs, "--timeout", "2"), certs=certs)
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as stalled:
        stalled.sendall(b"\x16\x03\x01")  # the start of a ClientHello, then nothing
        started = time.monotonic()
        try:
            assert stalled.recv(100) == b""
        except ConnectionResetError:
            pass
        assert time.monotonic() - started < 8
    assert server.get_json("/")["wsgi.url_scheme"] == "https"  # the worker was freed
    assert "Traceback" not in server.log
