"""Real processes for the deployment tests: forkhorn, nginx, HAProxy, and the certificates.

- nginx and HAProxy run the configuration files the docs show (``docs/deploy/nginx.conf``,
  ``docs/deploy/haproxy.cfg``): ``render`` swaps in loopback ports and this run's
  certificate paths, and fails if a value it replaces is no longer in the file, so the docs
  and the tests cannot drift apart.
- Every process runs in its own session; ``Process.stop`` ends it with TERM, then kills
  the whole group, so nothing outlives its test. Every wait is bounded.
- Programs come from ``ci/install-proxies.sh``; a test needing one that is missing is
  skipped with the reason (``needs``).
- Worker classes: ``sync`` and ``gthread`` always; ``gevent`` and ``eventlet`` when the
  library and its forkhorn plugin are importable (installed, or the plugin's ``src`` in
  this repository), run by dotted path (core tests run with plugin autoload off).
  ``FORKHORN_DEPLOY_WORKERS=gevent`` (comma-separated) limits the run to those classes.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from forkhorn.testing.processes import Process
from forkhorn.testing.servers import free_port

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parents[3]
DEPLOY_DOCS = REPO / "docs" / "deploy"

#: name -> (the -k value, the library it needs, the plugin package, its src dir in the repo)
WORKERS: dict[str, tuple[str, str | None, str | None, Path | None]] = {
    "sync": ("sync", None, None, None),
    "gthread": ("gthread", None, None, None),
    "gevent": (
        "forkhorn_gevent.worker:GeventWorker",
        "gevent",
        "forkhorn_gevent",
        REPO / "packages" / "forkhorn-gevent" / "src",
    ),
    "eventlet": (
        "forkhorn_eventlet.worker:EventletWorker",
        "eventlet",
        "forkhorn_eventlet",
        REPO / "packages" / "forkhorn-eventlet" / "src",
    ),
}


def needs(*programs: str) -> pytest.MarkDecorator:
    missing = [name for name in programs if shutil.which(name) is None]
    return pytest.mark.skipif(
        bool(missing),
        reason=f"{', '.join(missing)} not installed (run: bash ci/install-proxies.sh)",
    )


def _worker_missing(name: str) -> str | None:
    """Why worker class ``name`` cannot run here, or None."""
    _, library, plugin, src = WORKERS[name]
    wanted = os.environ.get("FORKHORN_DEPLOY_WORKERS")
    if wanted and name not in {w.strip() for w in wanted.split(",")}:
        return f"FORKHORN_DEPLOY_WORKERS={wanted}"
    if library is None:
        return None
    if importlib.util.find_spec(library) is None:
        return f"{library} is not installed (its deploy tests run in the {name} nox session)"
    if importlib.util.find_spec(plugin or "") is None and not (src and src.is_dir()):
        return f"forkhorn-{name} is not installed"
    return None


def worker_params(*names: str) -> list[Any]:
    """pytest params for the worker classes (all four by default), skipped with a reason
    where the class cannot run."""
    params = []
    for name in names or tuple(WORKERS):
        reason = _worker_missing(name)
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        params.append(pytest.param(name, id=name, marks=marks))
    return params


# --- certificates ------------------------------------------------------------------------


@dataclass(frozen=True)
class Certs:
    """A self-signed server certificate for 127.0.0.1/localhost, and a client certificate
    (CN ``client-1``) signed by a separate CA."""

    server_cert: Path
    server_key: Path
    server_pem: Path  # certificate then key, one file (HAProxy's ``crt``)
    ca_cert: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certs(directory: Path) -> Certs:
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl("req", "-x509", *ec, "-days", "2", "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
             "-keyout", "server.key", "-out", "server.crt", cwd=directory)  # fmt: skip
    _openssl("req", "-x509", *ec, "-days", "2", "-subj", "/CN=forkhorn test clients CA",
             "-keyout", "ca.key", "-out", "ca.crt", cwd=directory)  # fmt: skip
    _openssl("req", "-new", *ec, "-subj", "/CN=client-1", "-keyout", "client.key",
             "-out", "client.csr", cwd=directory)  # fmt: skip
    (directory / "client.ext").write_text("extendedKeyUsage = clientAuth\n")
    _openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", "client.ext",
             "-out", "client.crt", cwd=directory)  # fmt: skip
    pem = directory / "server.pem"
    pem.write_bytes(
        (directory / "server.crt").read_bytes() + (directory / "server.key").read_bytes()
    )
    return Certs(
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        server_pem=pem,
        ca_cert=directory / "ca.crt",
        client_cert=directory / "client.crt",
        client_key=directory / "client.key",
    )


def client_context(certs: Certs, *, client_cert: bool = False) -> ssl.SSLContext:
    """A verifying client context that trusts the test server certificate."""
    context = ssl.create_default_context(cafile=str(certs.server_cert))
    if client_cert:
        context.load_cert_chain(str(certs.client_cert), str(certs.client_key))
    return context


# --- raw HTTP over real sockets ----------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def parse_reply(data: bytes) -> Reply:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Reply(int(lines[0].split(" ", 2)[1]), headers, body)


def exchange(
    address: tuple[str, int] | str,
    data: bytes,
    *,
    prefix: bytes = b"",
    tls: ssl.SSLContext | None = None,
    source: str | None = None,
    timeout: float = 15.0,
) -> bytes:
    """Connect (from ``source`` if given), send ``prefix`` (a PROXY header, before any TLS),
    then ``data`` (over TLS if ``tls``); everything read until the server closes."""
    if isinstance(address, str):
        raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        raw.settimeout(timeout)
        raw.connect(address)
    else:
        raw = socket.create_connection(
            address, timeout=timeout, source_address=(source, 0) if source else None
        )
    sock: Any = raw
    try:
        if prefix:
            raw.sendall(prefix)
        if tls is not None:
            sock = tls.wrap_socket(raw, server_hostname="127.0.0.1")
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received
    finally:
        sock.close()


def get(path: str = "/", headers: Mapping[str, str] | None = None, host: str = "t") -> bytes:
    """A ``GET`` request head with ``Connection: close``."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def proxy_v1(client: tuple[str, int], proxy: tuple[str, int]) -> bytes:
    family = "TCP6" if ":" in client[0] else "TCP4"
    return f"PROXY {family} {client[0]} {proxy[0]} {client[1]} {proxy[1]}\r\n".encode()


def proxy_v2(client: tuple[str, int] | None, proxy: tuple[str, int] | None = None) -> bytes:
    """A PROXY v2 header: PROXY over TCP/IPv4, or LOCAL (a health check) without ``client``."""
    signature = b"\r\n\r\n\x00\r\nQUIT\n"
    if client is None:
        return signature + bytes([0x20, 0x00]) + (0).to_bytes(2, "big")
    proxy = proxy or ("127.0.0.1", 443)
    block = (
        socket.inet_aton(client[0])
        + socket.inet_aton(proxy[0])
        + client[1].to_bytes(2, "big")
        + proxy[1].to_bytes(2, "big")
    )
    return signature + bytes([0x21, 0x11]) + len(block).to_bytes(2, "big") + block


# --- processes (``Process``: the worker test kit's, a program in its own session) -----------


def port_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


class Forkhorn(Process):
    """``python -m forkhorn -k <worker> -b <bind> ... deploy_app:app``, ready when
    ``/healthz`` answers 200 (through TLS, a PROXY LOCAL header, a client certificate, as
    the arguments require; ``mutual``: present the client certificate, when ``cert_reqs``
    comes from a config file)."""

    def __init__(self, tmp: Path, worker: str, *args: str, bind: str | None = None,
                 certs: Certs | None = None, name: str = "forkhorn",
                 mutual: bool | None = None) -> None:  # fmt: skip
        spec, _, plugin, src = WORKERS[worker]
        self.worker = worker
        self.port = free_port() if bind is None else 0
        self.bind = bind or f"127.0.0.1:{self.port}"
        self.address: tuple[str, int] | str = (
            self.bind[len("unix:") :] if self.bind.startswith("unix:") else ("127.0.0.1", self.port)
        )
        paths = [str(TESTS)]
        if plugin and src and importlib.util.find_spec(plugin) is None:
            paths.append(str(src))  # the plugin from this repository, not installed
        env = dict(os.environ, FORKHORN_DISABLE_PLUGIN_AUTOLOAD="1")
        env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        for name_ in ("FORKHORN_CMD_ARGS", "FORWARDED_ALLOW_IPS", "PYTEST_CURRENT_TEST"):
            env.pop(name_, None)
        argv = [sys.executable, "-m", "forkhorn", "-k", spec, "-b", self.bind, "-w", "1",
                "--graceful-timeout", "5", *args, "deploy_app:app"]  # fmt: skip
        super().__init__(argv, tmp / f"{name}.log", env)
        self.tls: ssl.SSLContext | None = None
        if "--certfile" in args:
            assert certs is not None
            mutual = "--cert-reqs" in args if mutual is None else mutual
            self.tls = client_context(certs, client_cert=mutual)
        mode = args[args.index("--proxy-protocol") + 1] if "--proxy-protocol" in args else "off"
        self.probe_prefix = proxy_v2(None) if mode in ("v2", "auto") else b""
        if mode == "v1":
            self.probe_prefix = b"PROXY UNKNOWN\r\n"
        self.wait_until(self._healthy, f"forkhorn -k {worker}")

    def _healthy(self) -> bool:
        data = self.request(get("/healthz"), timeout=5, prefix=self.probe_prefix)
        return parse_reply(data).status == 200

    def request(self, data: bytes, **kwargs: Any) -> bytes:
        kwargs.setdefault("tls", self.tls)
        return exchange(self.address, data, **kwargs)

    def get_json(self, path: str = "/", headers: Mapping[str, str] | None = None,
                 **kwargs: Any) -> Any:  # fmt: skip
        reply = parse_reply(self.request(get(path, headers), **kwargs))
        assert reply.status == 200, (reply, self.log)
        return reply.json()


def render(template: str, replacements: Mapping[str, str]) -> str:
    """``docs/deploy/<template>`` with each key replaced; each key must be there once."""
    text = (DEPLOY_DOCS / template).read_text()
    for old, new in replacements.items():
        count = text.count(old)
        assert count == 1, f"docs/deploy/{template}: expected {old!r} once, found it {count}x"
        text = text.replace(old, new)
    return text


class Nginx(Process):
    """nginx running ``docs/deploy/nginx.conf`` in front of ``upstream`` (plain HTTP on
    ``http_port``, TLS on ``https_port``)."""

    def __init__(self, tmp: Path, upstream: int, certs: Certs) -> None:
        self.http_port, self.https_port = free_port(), free_port()
        prefix = tmp / "nginx"
        prefix.mkdir()
        site = render("nginx.conf", {
            "127.0.0.1:8000": f"127.0.0.1:{upstream}",
            "listen 80;": f"listen 127.0.0.1:{self.http_port};",
            "listen 443 ssl;": f"listen 127.0.0.1:{self.https_port} ssl;",
            "/etc/nginx/tls/myapp.crt": str(certs.server_cert),
            "/etc/nginx/tls/myapp.key": str(certs.server_key),
        })  # fmt: skip
        (prefix / "myapp.conf").write_text(site)
        temp_paths = "".join(
            f"    {kind}_temp_path {prefix / kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (prefix / "nginx.conf").write_text(
            ("user root;\n" if os.geteuid() == 0 else "")
            + "worker_processes 1;\n"
            + "events { worker_connections 256; }\n"
            + "http {\n    access_log off;\n"
            + temp_paths
            + f"    include {prefix / 'myapp.conf'};\n}}\n"
        )
        directives = f"daemon off; master_process on; pid {prefix / 'nginx.pid'}; error_log stderr;"
        argv = ["nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", directives]
        super().__init__(argv, tmp / "nginx.log")
        self.wait_until(lambda: port_open(self.http_port) and port_open(self.https_port), "nginx")


class HAProxy(Process):
    """HAProxy running ``docs/deploy/haproxy.cfg`` in front of ``upstream`` (PROXY v2)."""

    def __init__(self, tmp: Path, upstream: int, certs: Certs) -> None:
        self.http_port, self.https_port = free_port(), free_port()
        config = render("haproxy.cfg", {
            "127.0.0.1:8000": f"127.0.0.1:{upstream}",
            "bind :80\n": f"bind 127.0.0.1:{self.http_port}\n",
            "bind :443 ssl": f"bind 127.0.0.1:{self.https_port} ssl",
            "/etc/haproxy/tls/myapp.pem": str(certs.server_pem),
        })  # fmt: skip
        path = tmp / "haproxy.cfg"
        path.write_text(config)
        check = subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True,
                               text=True, timeout=30)  # fmt: skip
        assert check.returncode == 0, check.stdout + check.stderr
        super().__init__(["haproxy", "-f", str(path), "-db"], tmp / "haproxy.log")
        self.wait_until(lambda: port_open(self.http_port) and port_open(self.https_port), "haproxy")


def http_client(port: int, *, tls: ssl.SSLContext | None = None, source: str | None = None,
                timeout: float = 15.0) -> http.client.HTTPConnection:  # fmt: skip
    """An ``http.client`` connection to 127.0.0.1:``port`` from ``source`` (127.0.0.x)."""
    source_address = (source, 0) if source else None
    if tls is not None:
        return http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=tls,
                                           source_address=source_address)  # fmt: skip
    return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                      source_address=source_address)  # fmt: skip


def curl(url: str, *options: str) -> subprocess.CompletedProcess[str]:
    """``curl`` (another real client) over HTTP/1.1, not verifying the certificate."""
    argv = ["curl", "--http1.1", "-k", "-sS", "--max-time", "15", *options, url]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)
