"""The client's address behind trusted proxies, from X-Forwarded-For (WSGI middleware).

forkhorn leaves REMOTE_ADDR as the TCP peer (the proxy). Each proxy appends the address it
received the request from to X-Forwarded-For, so only the entries added by your own
proxies can be believed: walk the list from the right, skipping your proxies; the first
other address is the client. (Whatever a client wrote itself sits further left.)
Wrap the app: ``app = RealClientIP(app, trusted=["127.0.0.1", "10.0.0.0/8"])``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import Any


class RealClientIP:
    def __init__(self, app: Callable[..., Iterable[bytes]], trusted: Iterable[str]) -> None:
        self.app = app
        self.trusted = [ipaddress.ip_network(entry) for entry in trusted]

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.strip())
        except ValueError:
            return False
        return any(ip in network for network in self.trusted)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        peer = environ.get("REMOTE_ADDR", "")
        forwarded = environ.get("HTTP_X_FORWARDED_FOR")
        if forwarded and self._is_trusted(peer):
            client = peer
            for hop in reversed(forwarded.split(",")):
                client = hop.strip()
                if not self._is_trusted(client):
                    break
            environ["forkhorn.proxy_addr"] = peer
            environ["REMOTE_ADDR"] = client
        return self.app(environ, start_response)
