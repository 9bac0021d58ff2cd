"""PROXY protocol v1 (text) and v2 (binary) headers, as HAProxy's spec defines them. Sans-IO.

``parse_proxy_header(buf, mode)`` -> ``(ProxyInfo, consumed)`` or None (need more bytes).
Modes: ``off``/``false`` (nothing is read: ``(NO_PROXY_INFO, 0)``), ``v1`` or ``v2`` (that
header is required), ``auto``/``true`` (either header if one is there, else nothing; this is
Gunicorn's behaviour). Whether the peer may send a header at all (``proxy_allow_ips``) is the
connection's business, not this module's.

Invariants: a v1 line is at most 107 bytes with CRLF, ``PROXY TCP4|TCP6 src dst sport dport``
(single spaces, addresses of the stated family, ports 0-65535 as 1-5 digits) or
``PROXY UNKNOWN ...``; a v2 header has the 12-byte signature, version 2, command LOCAL or
PROXY, an address block no longer than ``MAX_V2_LENGTH`` and at least as long as its family
needs; TLVs are skipped. LOCAL, UNSPEC, UNKNOWN and unix addresses give ``NO_PROXY_INFO``
(no client address: use the socket's). Every refusal is ``InvalidProxyLine`` (400).
"""

from __future__ import annotations

import ipaddress
import re
from typing import NamedTuple

from forkhorn.http.errors import InvalidProxyLine

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_PREFIX = b"PROXY "
MAX_V1_LINE = 107
MAX_V2_LENGTH = 8192
_PORT_RE = re.compile(r"[0-9]{1,5}")
#: v2 family byte -> (address bytes, ip class); unix and UNSPEC carry no client address
_V2_INET = {0x11: 4, 0x12: 4, 0x21: 16, 0x22: 16}
_V2_NO_ADDRESS = {0x00, 0x31, 0x32}


class ProxyInfo(NamedTuple):
    client_host: str | None
    client_port: int | None
    proxy_host: str | None
    proxy_port: int | None


NO_PROXY_INFO = ProxyInfo(None, None, None, None)


def _is_prefix(buf: bytes | bytearray, signature: bytes) -> bool:
    return signature.startswith(bytes(buf[: len(signature)]))


def parse_proxy_header(buf: bytes | bytearray, mode: str) -> tuple[ProxyInfo, int] | None:
    mode = {"true": "auto", "false": "off"}.get(mode, mode)
    if mode == "off":
        return NO_PROXY_INFO, 0
    if mode in ("v2", "auto") and _is_prefix(buf, V2_SIGNATURE):
        return _parse_v2(buf) if len(buf) >= len(V2_SIGNATURE) else None
    if mode in ("v1", "auto") and _is_prefix(buf, V1_PREFIX):
        return _parse_v1(buf) if len(buf) >= len(V1_PREFIX) else None
    if mode == "auto":
        return NO_PROXY_INFO, 0
    raise InvalidProxyLine(f"PROXY protocol {mode} header expected")


def _parse_v1(buf: bytes | bytearray) -> tuple[ProxyInfo, int] | None:
    eol = buf.find(b"\r\n", 0, MAX_V1_LINE)
    if eol < 0:
        if len(buf) >= MAX_V1_LINE or b"\n" in buf:
            raise InvalidProxyLine("PROXY line without CRLF within 107 bytes")
        return None
    line = bytes(buf[:eol]).decode("latin-1")
    parts = line.split(" ")
    if len(parts) >= 2 and parts[1] == "UNKNOWN":
        return NO_PROXY_INFO, eol + 2
    if len(parts) != 6 or parts[1] not in ("TCP4", "TCP6"):
        raise InvalidProxyLine(f"invalid PROXY line {line[:60]!r}")
    family = ipaddress.IPv4Address if parts[1] == "TCP4" else ipaddress.IPv6Address
    try:
        client, proxy = family(parts[2]), family(parts[3])
    except ValueError:
        raise InvalidProxyLine(f"invalid address in PROXY line {line[:60]!r}") from None
    ports = []
    for text in parts[4:]:
        if not _PORT_RE.fullmatch(text) or int(text) > 65535:
            raise InvalidProxyLine(f"invalid port in PROXY line {line[:60]!r}")
        ports.append(int(text))
    return ProxyInfo(str(client), ports[0], str(proxy), ports[1]), eol + 2


def _parse_v2(buf: bytes | bytearray) -> tuple[ProxyInfo, int] | None:
    if len(buf) < 16:
        return None
    version_command, family, length = buf[12], buf[13], int.from_bytes(buf[14:16], "big")
    if version_command >> 4 != 2 or version_command & 0x0F > 1:
        raise InvalidProxyLine("unsupported PROXY v2 version or command")
    if length > MAX_V2_LENGTH:
        raise InvalidProxyLine("PROXY v2 header too long")
    if len(buf) < 16 + length:
        return None
    consumed = 16 + length
    if version_command & 0x0F == 0:  # LOCAL: health check from the proxy itself
        return NO_PROXY_INFO, consumed
    if family in _V2_NO_ADDRESS:
        return NO_PROXY_INFO, consumed
    size = _V2_INET.get(family)
    if size is None:
        raise InvalidProxyLine(f"unsupported PROXY v2 family 0x{family:02x}")
    if length < 2 * size + 4:
        raise InvalidProxyLine("PROXY v2 address block too short")
    block = bytes(buf[16 : 16 + 2 * size + 4])
    make = ipaddress.IPv4Address if size == 4 else ipaddress.IPv6Address
    client, proxy = make(block[:size]), make(block[size : 2 * size])
    ports = block[2 * size :]
    return (
        ProxyInfo(
            str(client),
            int.from_bytes(ports[:2], "big"),
            str(proxy),
            int.from_bytes(ports[2:], "big"),
        ),
        consumed,
    )
