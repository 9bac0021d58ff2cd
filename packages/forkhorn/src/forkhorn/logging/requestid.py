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

Trust: the header is accepted from any peer. A request id is a correlation value, not a
credential, and a proxy in front sets it on every request; what matters is that a client
cannot inject anything into the logs through it, which the strict token check ensures.

Invariants: the counter is an ``itertools.count`` (its ``next`` is atomic under the GIL, so
gthread threads never share an id); the prefix is renewed in each process (``after_fork``),
so two workers never generate the same id.
"""

from __future__ import annotations

import itertools
import os
import re
from typing import Any

ENVIRON_KEY = "forkhorn.request_id"
MAX_LENGTH = 128
_TOKEN = re.compile(r"[A-Za-z0-9._~:/@+=!#$%&*^|-]{1,128}")


def environ_key_for(header: str) -> str | None:
    """The environ key a request header lands on (``X-Request-ID`` -> ``HTTP_X_REQUEST_ID``)."""
    header = header.strip()
    if not header:
        return None
    return "HTTP_" + header.upper().replace("-", "_")


class RequestIds:
    """``request_id_for(environ) -> str`` (see the module docstring)."""

    def __init__(self, cfg: Any) -> None:
        self.environ_key = environ_key_for(str(getattr(cfg, "request_id_header", "") or ""))
        self._valid = _TOKEN.fullmatch
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
            if given and self._valid(given):
                environ[ENVIRON_KEY] = given
                return str(given)
        request_id = environ[ENVIRON_KEY] = self.generate()
        return request_id
