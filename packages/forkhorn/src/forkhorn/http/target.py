"""The request-target (RFC 9112 §3.2) and the Host field value (RFC 9110 §7.2).

Invariants:
- the four forms are told apart by method and first char, never by guessing:
  CONNECT takes exactly authority-form (``host:port``); ``*`` only with OPTIONS;
  ``/...`` is origin-form; anything else must be absolute-form ``scheme://authority...``.
  A relative reference (``foo/bar``) or a bare ``host:port`` outside CONNECT is refused.
- origin-form is split on the first ``#`` then the first ``?`` only: the path keeps every
  slash (``///x`` stays ``///x``; no urlsplit authority guessing) and stays %-encoded.
- absolute-form authorities must have a host and no userinfo (RFC 9110 §4.2.4: a recipient
  SHOULD treat userinfo in an http(s) URI as an error: it is used to disguise the host).
- every error here is ``InvalidRequestLine`` (target) or ``InvalidHost`` (Host field).
"""

from __future__ import annotations

import ipaddress
import re

from forkhorn.http.errors import InvalidHost, InvalidRequestLine

#: (scheme, host, port, path, query, fragment)
Target = tuple[str, "str | None", "int | None", str, str, str]

_REG_NAME = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})"
_IP_LITERAL = r"\[[0-9A-Fa-f:.]+\]"
#: host [":" port], host possibly empty (the Host field may be empty, RFC 9112 §3.2)
_AUTHORITY_RE = re.compile(f"({_IP_LITERAL}|{_REG_NAME}*)(?::([0-9]{{1,5}}))?")
_ABSOLUTE_RE = re.compile(r"([A-Za-z][A-Za-z0-9+\-.]*)://([^/?#]*)(.*)", re.DOTALL)
#: visible ASCII and obs-text: no CTL, SP or DEL anywhere in a target
_TARGET_CHARS_RE = re.compile(r"[\x21-\x7e\x80-\xff]+")


def _authority(text: str, *, need_host: bool, need_port: bool) -> tuple[str, int | None]:
    """Validate ``host[:port]``; returns (host, port or None). Raises ValueError."""
    match = _AUTHORITY_RE.fullmatch(text)
    if match is None:
        raise ValueError("invalid authority")
    host, port_text = match.group(1), match.group(2)
    if need_host and not host:
        raise ValueError("empty host")
    if host.startswith("["):
        ipaddress.IPv6Address(host[1:-1])  # ValueError when not an IPv6 address
    port = None
    if port_text is not None:
        port = int(port_text)
        if port > 65535:
            raise ValueError("port out of range")
    elif need_port:
        raise ValueError("missing port")
    return host, port


def split_target(method: str, target: str) -> Target:
    """Classify and split a request-target; raises InvalidRequestLine."""
    if not _TARGET_CHARS_RE.fullmatch(target):
        raise InvalidRequestLine("invalid characters in the request-target")
    first = target[0]
    if method == "CONNECT":
        try:
            _authority(target, need_host=True, need_port=True)
        except ValueError:
            raise InvalidRequestLine("CONNECT needs an authority-form target (host:port)") from None
        return "", None, None, target, "", ""
    if first == "/":
        rest, _, fragment = target.partition("#")
        path, _, query = rest.partition("?")
        return "", None, None, path, query, fragment
    if target == "*":
        if method != "OPTIONS":
            raise InvalidRequestLine("asterisk-form is only allowed with OPTIONS")
        return "", None, None, "*", "", ""
    match = _ABSOLUTE_RE.fullmatch(target)
    if match is None:
        raise InvalidRequestLine("request-target is not origin-form or absolute-form")
    scheme, authority, rest = match.groups()
    if "@" in authority:
        raise InvalidRequestLine("userinfo in the request-target is refused")
    try:
        host, port = _authority(authority, need_host=True, need_port=False)
    except ValueError:
        raise InvalidRequestLine("invalid authority in the request-target") from None
    rest, _, fragment = rest.partition("#")
    path, _, query = rest.partition("?")
    return scheme, host, port, path, query, fragment


def check_host(value: str) -> None:
    """A Host field value: ``uri-host [":" port]``, possibly empty; raises InvalidHost."""
    try:
        _authority(value, need_host=False, need_port=False)
    except ValueError:
        raise InvalidHost(f"invalid Host header {value[:60]!r}") from None
