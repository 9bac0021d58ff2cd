"""Request ids: taken from a request header when it is a sane token, generated otherwise.

Theory of operation
-------------------
``RequestIds(cfg)`` is built once per process. ``request_id_for(environ)`` returns the id of
the request and stores it in the environ as ``forkhorn.request_id`` (so the app, the access
log and any later call agree on one value). The id comes from the ``request_id_header``
setting's header (default ``X-Request-ID``) when that header holds a token of 1 to 128
characters from ``[A-Za-z0-9._~:/@+=!#$%&*^|-]``; otherwise (absent, empty, too long, spaces,
quotes, control or non-ASCII characters, or ``request_id_header = ""``) a fresh id is
generated: a random per-process prefix (48 bits from ``os.urandom``) and a counter,
``3f2a9c1b7e4d-1a``: unique without a syscall per request.

Trust: the header is honoured only from peers in ``forwarded_allow_ips`` (the proxies
trusted with the other forwarded headers; unix-socket peers by default); from anyone else
it is ignored and an id is generated, so a client cannot choose the id that ties its
request to the logs. The peer is judged by ``REMOTE_ADDR``, which with the PROXY protocol
is the client's address: behind HAProxy, list the client networks or let ids be generated.

Invariants: the counter is an ``itertools.count`` (its ``next`` is atomic under the GIL, so
gthread threads never share an id); the prefix is renewed in each process (``after_fork``),
so two workers never generate the same id.
"""

from __future__ import annotations

import itertools
import os
import re
from typing import Any

from forkhorn.http.peers import PeerMatcher
from forkhorn.logging.access import request_header_key

ENVIRON_KEY = "forkhorn.request_id"
MAX_LENGTH = 128
_TOKEN = re.compile(rf"[A-Za-z0-9._~:/@+=!#$%&*^|-]{{1,{MAX_LENGTH}}}")


def environ_key_for(header: str) -> str | None:
    """The environ key of the request-id header (``X-Request-ID`` -> ``HTTP_X_REQUEST_ID``);
    None when the setting is empty."""
    header = header.strip()
    return request_header_key(header) if header else None


class RequestIds:
    """``request_id_for(environ) -> str`` (see the module docstring)."""

    def __init__(self, cfg: Any) -> None:
        self.environ_key = environ_key_for(str(getattr(cfg, "request_id_header", "") or ""))
        self._valid = _TOKEN.fullmatch
        self._trusted = PeerMatcher(list(getattr(cfg, "forwarded_allow_ips", None) or ())).allows
        self.after_fork()

    def after_fork(self) -> None:
        self._prefix = os.urandom(6).hex() + "-"
        self._counter = itertools.count(1)

    def generate(self) -> str:
        return f"{self._prefix}{next(self._counter):x}"

    def request_id_for(self, environ: dict[str, Any]) -> str:
        request_id = environ.get(ENVIRON_KEY)
        if request_id is not None:
            return str(request_id)
        key = self.environ_key
        if key is not None:
            given = environ.get(key)
            if given and self._valid(given) and self._from_trusted_peer(environ):
                environ[ENVIRON_KEY] = given
                return str(given)
        request_id = environ[ENVIRON_KEY] = self.generate()
        return request_id

    def _from_trusted_peer(self, environ: dict[str, Any]) -> bool:
        address = environ.get("REMOTE_ADDR") or None  # "": a unix-socket peer
        return bool(self._trusted((address, 0) if address else None))
