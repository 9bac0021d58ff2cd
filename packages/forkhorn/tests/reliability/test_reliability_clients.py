"""Hostile clients: 500 slowloris connections against gthread while a normal client
measures its latency, and the header deadline freeing sync workers."""

from __future__ import annotations

import time

import pytest
from forkhorn.config.settings import BY_NAME
from reliability_load import Slowloris
from reliability_scenarios import slowloris_latency
from reliability_support import Servers, get, report

needs_header_timeout = pytest.mark.skipif(
    "header_timeout" not in BY_NAME, reason="header_timeout is not implemented yet"
)


@needs_header_timeout
def test_slowloris_does_not_starve_gthread(servers: Servers) -> None:
    slowloris_latency(servers, "gthread")


@needs_header_timeout
def test_the_header_deadline_frees_sync_workers(servers: Servers) -> None:
    """Every sync worker is held by a trickling client; each is freed by the header
    deadline, and an ordinary request queued behind them is answered within it."""
    deadline = 1.0
    workers = 2
    server = servers.start("--header-timeout", str(deadline), worker="sync", workers=workers)
    with Slowloris(server.port, workers, interval=0.2) as loris:
        time.sleep(0.2)  # each worker is reading a trickling head
        started = time.monotonic()
        status, _ = get(server.port, "/", timeout=10)
        waited = time.monotonic() - started
        time.sleep(max(0.0, deadline + 0.5 - (time.monotonic() - started)))
        held = list(loris.closed_after)
    met = (
        status == 200
        and waited < deadline + 0.5
        and len(held) == workers
        and max(held) < deadline + 0.5
    )
    report("header deadline frees sync workers held by slowloris", "sync",
           f"each worker freed within header_timeout ({deadline:g} s)", met,
           slowloris=workers, max_held_s=round(max(held or [0]), 2),
           queued_request_waited_s=round(waited, 2), status=status)  # fmt: skip
    assert met, (status, waited, held)
