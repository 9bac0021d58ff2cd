"""Trusted-peer matching: IPs, CIDRs, ``*``, unix sockets; peers named in log lines."""

from __future__ import annotations

from typing import Any

import pytest
from forkhorn.http.peers import PeerMatcher, describe_peer

CASES = [
    (["127.0.0.1"], ("127.0.0.1", 5000), True),
    (["127.0.0.1"], ("127.0.0.2", 5000), False),
    (["10.0.0.0/8"], ("10.20.30.40", 1), True),
    (["10.0.0.0/8"], ("11.0.0.1", 1), False),
    (["10.0.0.0/8"], ("::ffff:10.1.2.3", 1, 0, 0), True),
    (["127.0.0.1"], ("::ffff:127.0.0.1", 1, 0, 0), True),
    (["::1"], ("::1", 1, 0, 0), True),
    (["::1"], ("0:0:0:0:0:0:0:1", 1, 0, 0), True),
    (["2001:db8::/32"], ("2001:db8:1::5", 1, 0, 0), True),
    (["2001:db8::/32"], ("fe80::1%eth0", 1, 0, 2), False),
    (["fe80::/10"], ("fe80::1%eth0", 1, 0, 2), True),
    (["*"], ("8.8.8.8", 1), True),
    (["*"], "/tmp/sock", True),
    (["*"], None, True),
    (["unix"], "/tmp/sock", True),
    (["unix"], b"\x00abstract", True),
    (["unix"], ("127.0.0.1", 1), False),
    (["127.0.0.1"], "/tmp/sock", False),
    (["127.0.0.1"], b"", False),
    (["127.0.0.1"], None, False),
    ([], ("127.0.0.1", 1), False),
    (["127.0.0.1"], ("not-an-ip", 1), False),
    ([" 127.0.0.1 ", ""], ("127.0.0.1", 1), True),
]


@pytest.mark.parametrize(("entries", "peer", "allowed"), CASES)
def test_allows(entries: list[str], peer: Any, allowed: bool) -> None:
    matcher = PeerMatcher(entries)
    assert matcher.allows(peer) is allowed
    assert matcher.allows(peer) is allowed  # cached verdict: the same


def test_invalid_entry_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="localhost"):
        PeerMatcher(["localhost"])


def test_cache_is_bounded() -> None:
    matcher = PeerMatcher(["10.0.0.0/8"])
    for i in range(3000):
        assert matcher.allows((f"10.0.{i // 256}.{i % 256}", 1))
    assert len(matcher._cache) <= 1024


@pytest.mark.parametrize(
    ("peer", "text"),
    [
        (("127.0.0.1", 5000), "127.0.0.1:5000"),
        (("::1", 80, 0, 0), "::1:80"),
        ("/run/app.sock", "/run/app.sock"),
        ("", "unix socket peer"),
        (None, "unix socket peer"),
    ],
)
def test_describe_peer_for_log_lines(peer: Any, text: str) -> None:
    assert describe_peer(peer) == text
