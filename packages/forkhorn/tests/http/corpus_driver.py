"""A tiny connection loop over the sans-IO API, as a worker would run it, for the tests.

PROXY header first (when the mode says so), then a head, then its body, then the next
pipelined request from the leftover bytes, until a request that does not keep the
connection alive, an error, or the end of the input. ``drive`` takes the input already cut
into chunks, so every test can feed the same bytes whole, byte by byte or in random splits.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from typing import Any

from forkhorn.http.body import body_decoder
from forkhorn.http.errors import HTTPError, NoMoreData
from forkhorn.http.forwarded import url_scheme_from_headers
from forkhorn.http.parser import ParserLimits, RequestParser
from forkhorn.http.peers import PeerMatcher
from forkhorn.http.proxy import parse_proxy_header

#: the simulated peer: not loopback, so only ``forwarded_allow_ips = *`` trusts it
PEER = ("192.0.2.10", 40000)


@dataclass
class Outcome:
    requests: list[dict[str, Any]] = field(default_factory=list)
    error: tuple[str, int | None] | None = None


def splits(raw: bytes, seeds: range = range(5)) -> dict[str, list[bytes]]:
    """The feeding strategies: whole, byte by byte, and seeded random splits."""
    result = {"whole": [raw], "bytewise": [raw[i : i + 1] for i in range(len(raw))]}
    for seed in seeds:
        rng = random.Random(seed)
        cuts = sorted(rng.sample(range(1, len(raw)), min(len(raw) - 1, rng.randint(1, 12))))
        bounds = [0, *cuts, len(raw)]
        result[f"random{seed}"] = [raw[a:b] for a, b in itertools.pairwise(bounds)]
    return result


def describe(request: Any) -> dict[str, Any]:
    return {
        "method": request.method,
        "uri": {
            "raw": request.uri,
            "scheme": request.scheme,
            "host": request.host,
            # Gunicorn reports 80 when the target names no port
            "port": request.port if request.port is not None else 80,
            "path": request.path,
            "query": request.query,
            "fragment": request.fragment,
        },
        "version": list(request.version),
        "headers": [list(pair) for pair in request.headers],
        "body": b"",
        "trailers": [],
    }


def drive(
    chunks: list[bytes],
    limits: ParserLimits,
    *,
    proxy_mode: str = "off",
    forwarded_allow_ips: list[str] | None = None,
    secure_scheme_headers: dict[str, str] | None = None,
) -> Outcome:
    outcome = Outcome()
    trusted = PeerMatcher(forwarded_allow_ips or []).allows(PEER)
    parser = RequestParser(limits, trusted=trusted)
    buf = bytearray()
    phase = "head" if proxy_mode in ("off", "false") else "proxy"
    decoder: Any = None
    current: dict[str, Any] = {}
    try:
        for chunk in [*chunks, None]:
            if chunk is None:  # the peer closed the connection
                if phase == "body":
                    decoder.eof()
                elif phase != "closed" and bytes(buf).lstrip(b"\r\n"):
                    raise NoMoreData("connection closed inside a request head")
                break
            buf += chunk
            while phase != "closed":
                if phase == "proxy":
                    parsed = parse_proxy_header(buf, proxy_mode)
                    if parsed is None:
                        break
                    del buf[: parsed[1]]
                    phase = "head"
                elif phase == "head":
                    head = parser.parse_head(buf)
                    if head is None:
                        break
                    request, consumed = head
                    del buf[:consumed]
                    if trusted and secure_scheme_headers:
                        url_scheme_from_headers(request.headers, secure_scheme_headers)
                    current = describe(request)
                    outcome.requests.append(current)
                    decoder = body_decoder(request, limits)
                    phase = "body" if decoder is not None else "done"
                elif phase == "body":
                    if not buf:
                        break
                    payload, leftover = decoder.feed(bytes(buf))
                    current["body"] += payload
                    buf = bytearray(leftover)
                    if decoder.done:
                        current["trailers"] = [list(pair) for pair in decoder.trailers or []]
                        phase = "done"
                if phase == "done":
                    phase = "head" if request.keep_alive else "closed"
    except HTTPError as error:
        outcome.error = (type(error).__name__, error.status)
    return outcome
