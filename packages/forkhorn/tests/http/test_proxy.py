"""PROXY protocol v1/v2 headers: valid forms, every refusal, incremental feeding."""

from __future__ import annotations

import struct

import pytest
from forkhorn.http.errors import HTTPError, InvalidProxyLine
from forkhorn.http.proxy import NO_PROXY_INFO, V2_SIGNATURE, ProxyInfo, parse_proxy_header


def v2(command: int, family: int, addresses: bytes, tlvs: bytes = b"") -> bytes:
    body = addresses + tlvs
    return V2_SIGNATURE + bytes([0x20 | command, family]) + struct.pack("!H", len(body)) + body


V4 = bytes([192, 168, 1, 10, 10, 0, 0, 1]) + struct.pack("!HH", 56324, 443)
V6 = bytes(15) + b"\x01" + bytes(15) + b"\x02" + struct.pack("!HH", 1, 2)

VALID = [
    (
        "v1",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1000 80\r\nGET",
        ProxyInfo("1.2.3.4", 1000, "5.6.7.8", 80),
        36,
    ),
    (
        "auto",
        b"PROXY TCP6 ::1 2001:db8::2 0 65535\r\n",
        ProxyInfo("::1", 0, "2001:db8::2", 65535),
        36,
    ),
    ("true", b"PROXY UNKNOWN\r\n", NO_PROXY_INFO, 15),
    ("v1", b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", NO_PROXY_INFO, 35),
    ("v2", v2(1, 0x11, V4) + b"GET", ProxyInfo("192.168.1.10", 56324, "10.0.0.1", 443), 28),
    ("auto", v2(1, 0x21, V6), ProxyInfo("::1", 1, "::2", 2), 52),
    (
        "auto",
        v2(1, 0x11, V4, b"\x03\x00\x04abcd"),
        ProxyInfo("192.168.1.10", 56324, "10.0.0.1", 443),
        35,
    ),
    ("v2", v2(0, 0x11, V4), NO_PROXY_INFO, 28),  # LOCAL: a health check
    ("v2", v2(1, 0x00, b""), NO_PROXY_INFO, 16),  # UNSPEC
    ("v2", v2(1, 0x31, bytes(216)), NO_PROXY_INFO, 232),  # unix
    ("auto", b"GET / HTTP/1.1\r\n", NO_PROXY_INFO, 0),  # no header: optional in auto
    ("off", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", NO_PROXY_INFO, 0),
    ("false", b"anything", NO_PROXY_INFO, 0),
]


@pytest.mark.parametrize(("mode", "raw", "info", "consumed"), VALID)
def test_valid_headers_any_split(mode: str, raw: bytes, info: ProxyInfo, consumed: int) -> None:
    assert parse_proxy_header(raw, mode) == (info, consumed)
    results = set()
    for end in range(1, len(raw) + 1):  # every prefix: None until complete, then the same
        result = parse_proxy_header(bytearray(raw[:end]), mode)
        if result is not None:
            results.add(result)
    assert results == {(info, consumed)}


INVALID = [
    ("v1", b"PROXY TCP4 192.168.0.1 192.16...\r\n"),
    ("v1", b"PROXY TCP4 192.168.0.1 192.168.0.11 65iii 100000\r\n"),
    ("v1", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n"),
    ("v1", b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n"),
    ("v1", b"PROXY TCP4 not-an-ip 192.168.0.11 56324 443\r\n"),
    ("v1", b"PROXY TCP4 ::1 ::2 1 2\r\n"),
    ("v1", b"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n"),
    ("v1", b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n"),
    ("v1", b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"),
    ("v1", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"),
    ("v1", b"PROXY " + b"A" * 120),
    ("v1", b"GET / HTTP/1.1\r\n"),  # v1 required
    ("v2", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"),  # v2 required
    ("v2", V2_SIGNATURE + b"\x11\x11\x00\x0c" + V4),  # version 1
    ("v2", V2_SIGNATURE + b"\x22\x11\x00\x0c" + V4),  # command 2
    ("v2", v2(1, 0x11, V4[:8])),  # address block too short
    ("v2", v2(1, 0x41, V4)),  # unknown family
    ("v2", V2_SIGNATURE + b"\x21\x11\xff\xff"),  # too long
]


@pytest.mark.parametrize(("mode", "raw"), INVALID)
def test_invalid_headers(mode: str, raw: bytes) -> None:
    with pytest.raises(InvalidProxyLine) as info:
        parse_proxy_header(raw, mode)
    assert info.value.status == 400
    assert isinstance(info.value, HTTPError)


def test_incomplete_headers_need_more() -> None:
    assert parse_proxy_header(b"", "auto") is None
    assert parse_proxy_header(b"\r\n\r\n", "auto") is None
    assert parse_proxy_header(b"PRO", "auto") is None
    assert parse_proxy_header(b"PROXY TCP4 1.2.3.4", "v1") is None
    assert parse_proxy_header(v2(1, 0x11, V4)[:20], "v2") is None
