"""Which peers are trusted (``forwarded_allow_ips``, ``proxy_allow_ips``).

``PeerMatcher(entries)`` is built once per worker from a list of IPs, CIDRs, ``*`` (every
peer) and ``unix`` (unix-socket peers). ``allows(peer)`` takes what ``accept()`` returned:
an ``(host, port[, flow, scope])`` tuple, a unix-socket address (``str``/``bytes``) or None
(unknown, e.g. a socketpair; treated like a unix peer).

Invariants: entries are validated at construction (a hostname raises ``ValueError``: it
would silently never match); IPv4-mapped IPv6 peers (``::ffff:10.0.0.1``) match IPv4
entries; exact addresses are a set lookup on the peer's text, CIDRs are checked once per
distinct peer and the verdict is cached (a bounded dict, cleared when full).

``describe_peer(peer)`` names such a peer in log lines.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

_CACHE_SIZE = 1024


class PeerMatcher:
    __slots__ = ("_cache", "_exact", "_networks", "allow_all", "allow_unix")

    def __init__(self, entries: Iterable[str]) -> None:
        self.allow_all = False
        self.allow_unix = False
        self._exact: set[str] = set()
        networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            if entry == "*":
                self.allow_all = True
            elif entry.lower() == "unix":
                self.allow_unix = True
            else:
                try:
                    network = ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(f"not an IP address or CIDR: {entry!r}") from None
                if network.num_addresses == 1:
                    self._exact.add(str(network.network_address))
                else:
                    networks.append(network)
        self._networks = tuple(networks)
        self._cache: dict[str, bool] = {}

    def allows(self, peer: Any) -> bool:
        if self.allow_all:
            return True
        if not isinstance(peer, tuple):
            return self.allow_unix
        host = peer[0]
        if host in self._exact:
            return True
        verdict = self._cache.get(host)
        if verdict is None:
            verdict = self._match(host)
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            self._cache[host] = verdict
        return verdict

    def _match(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])  # drop an IPv6 zone
        except ValueError:
            return False
        candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [address]
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            candidates.append(address.ipv4_mapped)
        for candidate in candidates:
            if str(candidate) in self._exact:
                return True
            for network in self._networks:
                if candidate.version == network.version and candidate in network:
                    return True
        return False


def describe_peer(peer: Any) -> str:
    """A peer as ``accept()`` gave it, for log lines: ``host:port``, or the unix address."""
    if isinstance(peer, tuple):
        return f"{peer[0]}:{peer[1]}"
    return str(peer or "unix socket peer")
