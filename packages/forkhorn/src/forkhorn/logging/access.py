"""The access-log formatter: Gunicorn's ``%(atom)s`` format, computing only the atoms used.

Theory of operation
-------------------
The format is parsed once per process (``AccessFormatter(fmt)``): every ``%(name)s`` key is
mapped to a small function of the request context. Per request, only those functions run,
then one ``fmt % values``. Unknown atoms render as ``-`` (as in Gunicorn).

Atoms: ``h`` remote address, ``l`` ``-``, ``u`` user (basic auth), ``t`` date, ``r`` request
line, ``m`` method, ``U`` path, ``q`` query, ``H`` protocol, ``s`` status, ``B`` body bytes,
``b`` body bytes or ``-``, ``f`` referer, ``a`` user agent, ``T``/``M``/``D``/``L`` request time
in s/ms/us/decimal s, ``p`` ``<pid>``, ``{name}i`` request header, ``{name}o`` response
header, ``{name}e`` environ variable.

Invariant: a value a client can influence never reaches the log raw. ``"``, ``\\``, control
characters and bytes >= 0x7f are escaped (``\\"``, ``\\\\``, ``\\xHH``) as Apache does, so
no client can end a field or forge a line.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_ATOM = re.compile(r"%\(([^)]*)\)")

# Environ strings are latin-1 decoded bytes (PEP 3333), so every char is < 256.
_ESCAPES: dict[int, str] = {c: f"\\x{c:02x}" for c in [*range(0x20), *range(0x7F, 0x100)]}
_ESCAPES[ord('"')] = '\\"'
_ESCAPES[ord("\\")] = "\\\\"


def escape(value: str) -> str:
    """Make a client-supplied value safe inside a log line."""
    if value.isprintable() and value.isascii() and '"' not in value and "\\" not in value:
        return value
    return value.translate(_ESCAPES)


@dataclass
class AccessContext:
    environ: dict[str, Any]
    status: str
    response_headers: list[tuple[str, str]]
    sent_bytes: int
    request_time: float


Getter = Callable[[AccessContext], str]


def _env(key: str) -> Getter:
    return lambda ctx: escape(str(ctx.environ.get(key) or "-"))


def _request_line(ctx: AccessContext) -> str:
    env = ctx.environ
    target = env.get("RAW_URI")
    if not target:
        target = env.get("PATH_INFO", "")
        if env.get("QUERY_STRING"):
            target += "?" + env["QUERY_STRING"]
    method = env.get("REQUEST_METHOD", "-")
    return escape(f"{method} {target} {env.get('SERVER_PROTOCOL', '-')}")


def _user(ctx: AccessContext) -> str:
    auth = ctx.environ.get("HTTP_AUTHORIZATION", "")
    if auth[:6].lower() != "basic ":
        return "-"
    try:
        decoded = base64.b64decode(auth[6:].strip(), validate=True).decode("latin-1")
    except (binascii.Error, ValueError):
        return "-"
    user = decoded.partition(":")[0]
    return escape(user) if user else "-"


def _date(ctx: AccessContext) -> str:
    return time.strftime("[%d/%b/%Y:%H:%M:%S %z]")


def _status(ctx: AccessContext) -> str:
    return escape(ctx.status.split(None, 1)[0]) if ctx.status else "-"


def _response_header(name: str) -> Getter:
    lowered = name.lower()

    def get(ctx: AccessContext) -> str:
        for key, value in ctx.response_headers:
            if key.lower() == lowered:
                return escape(str(value))
        return "-"

    return get


def _request_header(name: str) -> Getter:
    key = "HTTP_" + name.upper().replace("-", "_")
    if name.lower() == "content-type":
        key = "CONTENT_TYPE"
    elif name.lower() == "content-length":
        key = "CONTENT_LENGTH"
    return _env(key)


_FIXED: dict[str, Getter] = {
    "h": _env("REMOTE_ADDR"),
    "l": lambda ctx: "-",
    "u": _user,
    "t": _date,
    "r": _request_line,
    "m": _env("REQUEST_METHOD"),
    "U": _env("PATH_INFO"),
    "q": lambda ctx: escape(ctx.environ.get("QUERY_STRING", "")),
    "H": _env("SERVER_PROTOCOL"),
    "s": _status,
    "B": lambda ctx: str(ctx.sent_bytes),
    "b": lambda ctx: str(ctx.sent_bytes) if ctx.sent_bytes else "-",
    "f": _env("HTTP_REFERER"),
    "a": _env("HTTP_USER_AGENT"),
    "T": lambda ctx: str(int(ctx.request_time)),
    "M": lambda ctx: str(int(ctx.request_time * 1_000)),
    "D": lambda ctx: str(int(ctx.request_time * 1_000_000)),
    "L": lambda ctx: f"{ctx.request_time:.6f}",
    "p": lambda ctx: f"<{os.getpid()}>",
}


def _getter_for(atom: str) -> Getter:
    fixed = _FIXED.get(atom)
    if fixed is not None:
        return fixed
    if atom.startswith("{") and len(atom) > 3 and atom[-2] == "}":
        name, kind = atom[1:-2], atom[-1]
        if kind == "i":
            return _request_header(name)
        if kind == "o":
            return _response_header(name)
        if kind == "e":
            return _env(name)
    return lambda ctx: "-"


class AccessFormatter:
    """``format(ctx)`` -> one access-log line (without the newline)."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self._getters = [(atom, _getter_for(atom)) for atom in dict.fromkeys(_ATOM.findall(fmt))]
        try:
            fmt % {atom: "" for atom, _ in self._getters}
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"invalid access_log_format {fmt!r}: {exc}") from None

    def format(self, ctx: AccessContext) -> str:
        return self.fmt % {atom: get(ctx) for atom, get in self._getters}
