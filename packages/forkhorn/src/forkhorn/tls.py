"""TLS for every worker class: the server context, the handshake, the client certificate.

Theory of operation:

- ``server_context(cfg, plugin_manager)`` builds the ``ssl.SSLContext`` once per worker,
  after fork (after gevent/eventlet patched ``ssl``): the first non-None result of the
  ``ssl_context`` hook, else ``default_context(cfg)``. The default is Python's server
  context (``create_default_context(Purpose.CLIENT_AUTH)``: TLS 1.2 minimum, no
  compression, secure ciphers) with ``certfile``/``keyfile``, ``ca_certs``, ``cert_reqs``
  and ``ciphers``. ``ssl_version`` is ignored, as in Gunicorn: raise the minimum version
  or pin protocols in the hook.
- ``TLSAcceptor.wrap`` never handshakes (no blocking in an acceptor); ``handshake`` runs
  in the thread or green thread that serves the connection, before its first request, so
  the worker's own request clock bounds it.
- A failed handshake is the client's problem: one log line with the peer (info for a
  plain-HTTP request, debug for the rest: scanners and stale clients are common), never a
  traceback; the connection is closed by the caller.
- A plain-HTTP request on a TLS port (OpenSSL says ``HTTP_REQUEST`` or
  ``HTTPS_PROXY_REQUEST``) is answered with a plain-text 400 on the raw socket, then the
  connection is closed gently (write side shut, the unread request drained briefly) so the
  answer is not lost to a TCP reset.
- ``ClientCertEnviron`` gives the environ keys for the client certificate (mutual TLS):
  ``SSL_CLIENT_CERT`` (PEM, as Apache's mod_ssl names it) and ``forkhorn.peercert`` (the
  ``getpeercert()`` dict). Absent when no verified certificate was presented.

Invariants: ``ssl`` is imported inside functions only (this module may be imported where
``ssl`` must not be yet); nothing is built at import time.
"""

from __future__ import annotations

import base64
import os
import socket
from typing import TYPE_CHECKING, Any

from forkhorn.http.peers import describe_peer

if TYPE_CHECKING:
    import ssl

#: OpenSSL's verdicts for a first record that is a plain HTTP request
PLAIN_HTTP_REASONS = frozenset({"HTTP_REQUEST", "HTTPS_PROXY_REQUEST"})
_PLAIN_HTTP_BODY = b"400 Bad Request: this port speaks HTTPS (TLS); use an https:// URL.\n"
PLAIN_HTTP_RESPONSE = (
    b"HTTP/1.1 400 Bad Request\r\n"
    b"Connection: close\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: " + str(len(_PLAIN_HTTP_BODY)).encode() + b"\r\n\r\n" + _PLAIN_HTTP_BODY
)
#: how long the gentle close after a plain-HTTP answer waits, and how much it reads
_LINGER_SECONDS = 0.5
_DRAIN_LIMIT = 65536
_CERT_CACHE_MAX = 256


class TLSSetupError(Exception):
    """The TLS settings cannot make a context (a missing or unreadable file, bad ciphers)."""


def default_context(cfg: Any) -> ssl.SSLContext:
    """The context the TLS settings describe (the hook's ``default_ssl_context_factory``)."""
    import ssl

    try:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=cfg.ca_certs or None)
        context.load_cert_chain(certfile=cfg.certfile, keyfile=cfg.keyfile or None)
        context.verify_mode = ssl.VerifyMode(int(cfg.cert_reqs or 0))
        if cfg.ciphers:
            context.set_ciphers(cfg.ciphers)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        raise TLSSetupError(
            f"cannot set up TLS (certfile={cfg.certfile!r}, keyfile={cfg.keyfile!r}, "
            f"ca_certs={cfg.ca_certs!r}, ciphers={cfg.ciphers!r}): {exc}"
        ) from exc
    return context


def server_context(cfg: Any, plugin_manager: Any) -> ssl.SSLContext | None:
    """The context to serve with: the ``ssl_context`` hook's, else the default one.
    None when TLS is off (no ``certfile``)."""
    if not getattr(cfg, "certfile", None):
        return None

    def default_ssl_context_factory() -> ssl.SSLContext:
        return default_context(cfg)

    context = None
    if plugin_manager is not None:
        context = plugin_manager.hook.forkhorn_ssl_context(
            config=cfg, default_ssl_context_factory=default_ssl_context_factory
        )
    return context if context is not None else default_ssl_context_factory()


class TLSAcceptor:
    """Wraps accepted sockets and runs their handshake (one per worker process)."""

    def __init__(self, context: ssl.SSLContext, cfg: Any, log: Any) -> None:
        self.context = context
        self.log = log
        self.suppress_ragged_eofs = bool(getattr(cfg, "suppress_ragged_eofs", True))

    @classmethod
    def for_worker(cls, worker: Any) -> TLSAcceptor | None:
        """The worker's acceptor, None when TLS is off. A context that cannot be built
        stops the worker with ``WORKER_BOOT_ERROR`` (the master then halts: a bad
        certificate path is not fixed by forking again)."""
        from forkhorn.workers.base import WORKER_BOOT_ERROR

        app = getattr(worker, "app", None)
        try:
            context = server_context(worker.cfg, getattr(app, "plugin_manager", None))
        except TLSSetupError as exc:
            worker.log.error("%s", exc)
            raise SystemExit(WORKER_BOOT_ERROR) from None
        return None if context is None else cls(context, worker.cfg, worker.log)

    def wrap(self, sock: socket.socket) -> ssl.SSLSocket:
        """``sock`` as a server-side TLS socket; the handshake is left to ``handshake``."""
        return self.context.wrap_socket(
            sock,
            server_side=True,
            do_handshake_on_connect=False,
            suppress_ragged_eofs=self.suppress_ragged_eofs,
        )

    def handshake(self, tls_sock: Any, peer: Any) -> bool:
        """Complete the handshake; False (logged, plain HTTP answered) when it failed.
        The caller closes the socket either way on False. Timeouts of the worker
        (``BaseException``\\s) pass through."""
        try:
            tls_sock.do_handshake()
        except OSError as exc:  # ssl.SSLError included
            reason = getattr(exc, "reason", None)
            if reason in PLAIN_HTTP_REASONS:
                self.log.info("Plain HTTP request from %s on a TLS listener: answered 400",
                              describe_peer(peer))  # fmt: skip
                answer_plain_http(tls_sock)
            else:
                self.log.debug("TLS handshake with %s failed: %s", describe_peer(peer), exc)
            return False
        return True

    def accept(self, sock: socket.socket, peer: Any) -> ssl.SSLSocket | None:
        """Wrap and handshake at once; None (the socket closed) when the handshake failed."""
        tls_sock = self.wrap(sock)
        if self.handshake(tls_sock, peer):
            return tls_sock
        _close(tls_sock)
        return None


def answer_plain_http(tls_sock: Any) -> None:
    """Write the plain-text 400 on the raw connection under ``tls_sock`` and drain it."""
    try:
        # A plain socket on a dup of the descriptor: the TLS object cannot write cleartext.
        # Created through the socket module at call time, so it is cooperative under
        # gevent/eventlet. (Shares the file status flags: the connection is closing anyway.)
        raw = socket.socket(fileno=os.dup(tls_sock.fileno()))
    except OSError:
        return
    from forkhorn.wsgi.handler import linger  # only on this error path

    try:
        raw.settimeout(_LINGER_SECONDS)
        raw.sendall(PLAIN_HTTP_RESPONSE)
        linger(raw, _LINGER_SECONDS, _DRAIN_LIMIT)
    except OSError:
        pass
    finally:
        raw.close()


class ClientCertEnviron:
    """The environ keys for the client certificate of a TLS connection (mutual TLS).

    The certificate's DER bytes key a small cache, so a keep-alive connection (or a
    client reconnecting) does not re-encode its certificate for every request."""

    def __init__(self) -> None:
        self._cache: dict[bytes, tuple[str, dict[str, Any]]] = {}

    def __call__(self, sock: Any) -> dict[str, Any]:
        getpeercert = getattr(sock, "getpeercert", None)
        if getpeercert is None:
            return {}
        try:
            der = getpeercert(binary_form=True)
        except (OSError, ValueError):
            return {}
        if not der:
            return {}
        cached = self._cache.get(der)
        if cached is None:
            cached = (der_to_pem(der), getpeercert() or {})
            if len(self._cache) >= _CERT_CACHE_MAX:
                self._cache.clear()
            self._cache[der] = cached
        pem, details = cached
        return {"SSL_CLIENT_CERT": pem, "forkhorn.peercert": dict(details)}


def der_to_pem(der: bytes) -> str:
    """A DER certificate as PEM text (``ssl.DER_cert_to_PEM_cert`` without ``ssl``)."""
    text = base64.b64encode(der).decode("ascii")
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


def _close(sock: Any) -> None:
    try:
        sock.close()
    except OSError:
        pass
