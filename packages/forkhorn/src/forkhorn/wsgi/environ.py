"""The PEP 3333 environ for one request, built from a prebuilt per-listener base.

Strategy: everything that is the same for every request on a listener (``wsgi.*``, the
server software, the listener's SERVER_NAME/SERVER_PORT, the default scheme) lives in a
base dict built once per listener address; a request pays for one ``dict.copy()`` plus the
keys that vary.

Invariants:
- a request header can never overwrite another key: every header becomes ``HTTP_<NAME>``
  (dashes to underscores), except Content-Type/Content-Length which become the CGI keys;
  two headers that land on the same key are joined with ``,`` (PEP 3333, RFC 9110 5.3);
- CONTENT_LENGTH is the parser's validated integer, never a raw (possibly repeated) value;
- ``wsgi.url_scheme`` is ``https`` on TLS listeners; ``secure_scheme_headers`` and a
  ``SCRIPT_NAME`` header are honoured only from peers in ``forwarded_allow_ips``, and two
  scheme headers that disagree are refused (400 ``InvalidSchemeHeaders``);
- PATH_INFO is the percent-decoded path as a latin-1 ``str`` ("bytes as latin-1", PEP 3333),
  with SCRIPT_NAME removed from its front;
- REMOTE_ADDR/REMOTE_PORT are the PROXY protocol client when the connection carried one,
  the socket peer otherwise (unix peers: REMOTE_ADDR only, as Gunicorn);
- with ``cert_reqs`` set on a TLS listener, a verified client certificate is in
  ``SSL_CLIENT_CERT`` (PEM) and ``forkhorn.peercert`` (``getpeercert()``'s dict);
- ``gunicorn.socket`` is the connection's socket, as Gunicorn gives it: websocket
  libraries (simple-websocket, hence Flask-Sock) take the connection over through it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

from forkhorn import SERVER_SOFTWARE
from forkhorn.http.errors import HTTPError
from forkhorn.http.forwarded import url_scheme_from_headers
from forkhorn.http.peers import PeerMatcher
from forkhorn.tls import ClientCertEnviron

if TYPE_CHECKING:
    from forkhorn.http.request import Request
    from forkhorn.wsgi.handler import Connection

#: header name -> environ key for the names that do not get the HTTP_ prefix (a
#: SCRIPT_NAME header lands on the base's SCRIPT_NAME key and is decided apart)
_CGI_KEYS = {
    "CONTENT-TYPE": "CONTENT_TYPE",
    "CONTENT-LENGTH": "CONTENT_LENGTH",
    "SCRIPT_NAME": "SCRIPT_NAME",
}
#: bound on the header-name -> environ-key and Host -> (name, port) caches (client data)
_CACHE_MAX = 512
_PROTOCOLS = {(1, 1): "HTTP/1.1", (1, 0): "HTTP/1.0"}


class ScriptNameMismatch(HTTPError):
    """The request path does not start with the configured SCRIPT_NAME (a deployment error)."""

    status = 500
    reason = "Internal Server Error"


def _split_host(host: str, default_port: str) -> tuple[str, str]:
    """``example.com:8080`` -> (name, port); ``[::1]:80`` keeps the brackets off the name."""
    if host.startswith("["):
        end = host.find("]")
        if end > 0:
            name = host[1:end]
            rest = host[end + 1 :]
            return name, rest[1:] if rest.startswith(":") and rest[1:] else default_port
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit():
        return name, port
    return host, default_port


class EnvironBuilder:
    """Builds environs for one worker. Thread-safe: it keeps no per-request state."""

    def __init__(
        self,
        cfg: Any,
        *,
        forwarded_peers: PeerMatcher,
        multithread: bool,
        file_wrapper: Callable[..., Any],
        errors: Any = None,
    ) -> None:
        self._is_ssl = bool(getattr(cfg, "certfile", None))
        self._scheme = "https" if self._is_ssl else "http"
        self._script_name = os.environ.get("SCRIPT_NAME", "")
        self._secure_headers: dict[str, str] = {
            name.upper(): value for name, value in (cfg.secure_scheme_headers or {}).items()
        }
        self._secure_keys = {"HTTP_" + name.replace("-", "_") for name in self._secure_headers}
        forwarder = {name.upper().replace("-", "_") for name in cfg.forwarder_headers or ()}
        self._honour_script_name = "SCRIPT_NAME" in forwarder
        self._forwarded_peers = forwarded_peers
        #: mutual TLS: the client certificate goes into the environ (forkhorn.tls)
        mutual = self._is_ssl and bool(getattr(cfg, "cert_reqs", 0))
        self._client_cert = ClientCertEnviron() if mutual else None
        self._common: dict[str, Any] = {
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": self._scheme,
            "wsgi.errors": errors if errors is not None else sys.stderr,
            "wsgi.multithread": multithread,
            "wsgi.multiprocess": cfg.workers > 1,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
            "wsgi.file_wrapper": file_wrapper,
            "SERVER_SOFTWARE": SERVER_SOFTWARE,
            "SCRIPT_NAME": self._script_name,
            "REMOTE_ADDR": "",
        }
        self._bases: dict[Any, dict[str, Any]] = {}
        self._keys: dict[str, str] = dict(_CGI_KEYS)
        #: Host value -> (SERVER_NAME, SERVER_PORT), one cache per default port
        self._hosts: dict[str, dict[str, tuple[str, str]]] = {"80": {}, "443": {}}

    def base_for(self, server_addr: Any) -> dict[str, Any]:
        """The environ keys shared by every request on the listener ``server_addr``."""
        base = self._bases.get(server_addr)
        if base is None:
            base = dict(self._common)
            default_port = "443" if self._is_ssl else "80"
            if isinstance(server_addr, tuple):
                base["SERVER_NAME"] = str(server_addr[0])
                base["SERVER_PORT"] = str(server_addr[1])
            else:
                # unix socket: no port; name it by its path, as Gunicorn does
                path = server_addr.decode() if isinstance(server_addr, bytes) else server_addr
                base["SERVER_NAME"] = path or "localhost"
                base["SERVER_PORT"] = default_port
            self._bases[server_addr] = base
        return base

    def _key_for(self, name: str) -> str:
        key = "HTTP_" + name.replace("-", "_")
        if len(self._keys) < _CACHE_MAX:
            self._keys[name] = key
        return key

    def build(self, req: Request, conn: Connection, wsgi_input: Any) -> dict[str, Any]:
        """The environ for ``req`` on ``conn``. Raises ``HTTPError`` (400/500) on refusal."""
        environ = (self._bases.get(conn.server) or self.base_for(conn.server)).copy()
        environ["REQUEST_METHOD"] = req.method
        environ["QUERY_STRING"] = req.query
        environ["RAW_URI"] = req.uri
        environ["SERVER_PROTOCOL"] = _PROTOCOLS.get(req.version) or "HTTP/{}.{}".format(
            *req.version
        )
        environ["wsgi.input"] = wsgi_input
        environ["gunicorn.socket"] = conn.sock
        if req.content_length is not None:
            environ["CONTENT_LENGTH"] = str(req.content_length)

        script_name = self._script_name
        keys = self._keys
        for name, value in req.headers:
            key = keys.get(name) or self._key_for(name)
            if key not in environ:
                environ[key] = value
            elif key == "CONTENT_LENGTH":
                pass  # already set from the parser's validated value
            elif key == "SCRIPT_NAME":
                # the parser lets it through from trusted forwarders (or header_map=dangerous)
                if self._honour_script_name and conn.is_trusted(self._forwarded_peers):
                    script_name = value
            else:
                environ[key] = environ[key] + "," + value  # one key, several fields

        if (
            self._secure_keys
            and environ.keys() & self._secure_keys
            and conn.is_trusted(self._forwarded_peers)
        ):
            scheme = url_scheme_from_headers(req.headers, self._secure_headers)
            if scheme is not None:
                environ["wsgi.url_scheme"] = scheme
        host = environ.get("HTTP_HOST")
        if req.host:
            # absolute-form target: its authority wins over Host (RFC 9112 3.2.2)
            environ["SERVER_NAME"] = req.host
            if req.port:
                environ["SERVER_PORT"] = str(req.port)
        elif host:
            default_port = "443" if environ["wsgi.url_scheme"] == "https" else "80"
            hosts = self._hosts[default_port]
            server = hosts.get(host)
            if server is None:
                server = _split_host(host, default_port)
                if len(hosts) < _CACHE_MAX:
                    hosts[host] = server
            environ["SERVER_NAME"], environ["SERVER_PORT"] = server

        path = req.path
        if script_name:
            if not path.startswith(script_name):
                raise ScriptNameMismatch(
                    f"request path {path!r} does not start with SCRIPT_NAME {script_name!r}"
                )
            path = path[len(script_name) :]
            environ["SCRIPT_NAME"] = script_name
        if "%" in path:
            path = unquote_to_bytes(path.encode("latin-1")).decode("latin-1")
        environ["PATH_INFO"] = path

        client = conn.client
        proxy = conn.proxy
        if proxy is not None and proxy.client_host is not None:
            environ["REMOTE_ADDR"] = proxy.client_host
            environ["REMOTE_PORT"] = str(proxy.client_port)
            environ["PROXY_ADDR"] = proxy.proxy_host
            environ["PROXY_PORT"] = str(proxy.proxy_port)
        elif type(client) is tuple:
            environ["REMOTE_ADDR"] = client[0]
            environ["REMOTE_PORT"] = str(client[1])
        elif client:
            environ["REMOTE_ADDR"] = client.decode() if isinstance(client, bytes) else client
        if self._client_cert is not None:
            environ.update(self._client_cert(conn.sock))
        return environ
