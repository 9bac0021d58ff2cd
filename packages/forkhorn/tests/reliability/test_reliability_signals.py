"""Signals under load: HUP reloads, SIGKILLed workers, TERM with a full backlog, and
a thousand reloads without a leak in the master."""

from __future__ import annotations

import signal
import time

import pytest
from reliability_scenarios import (
    graceful_stop_serves_a_late_request,
    hup_under_load,
    sigkill_under_load,
    term_with_full_backlog,
)
from reliability_support import Server, Servers, fd_count, mib, report, rss, threads, wait_for

WORKERS = ["sync", "gthread"]


@pytest.mark.parametrize("worker", WORKERS)
def test_twenty_hup_reloads_under_load_lose_nothing(servers: Servers, worker: str) -> None:
    hup_under_load(servers, worker, 20, keepalive=False)


def test_twenty_hup_reloads_under_keepalive_load_lose_nothing(servers: Servers) -> None:
    hup_under_load(servers, "gthread", 20, keepalive=True)


@pytest.mark.slow
@pytest.mark.parametrize("worker", WORKERS)
def test_hundred_hup_reloads_under_load_lose_nothing(servers: Servers, worker: str) -> None:
    hup_under_load(servers, worker, 100, keepalive=worker == "gthread")


@pytest.mark.parametrize("worker", WORKERS)
def test_sigkilled_workers_are_replaced_within_a_second(servers: Servers, worker: str) -> None:
    sigkill_under_load(servers, worker, kills=5)


@pytest.mark.slow
@pytest.mark.parametrize("worker", WORKERS)
def test_thirty_sigkills_under_load(servers: Servers, worker: str) -> None:
    sigkill_under_load(servers, worker, kills=30)


@pytest.mark.parametrize("worker", WORKERS)
def test_term_under_load_with_a_full_backlog_loses_nothing(servers: Servers, worker: str) -> None:
    term_with_full_backlog(servers, worker)


def reloads_leave_the_master_unchanged(servers: Servers, reloads: int) -> None:
    server = servers.start("--log-level", "warning", worker="sync", workers=1)
    master = server.pid
    (current,) = server.workers()
    for _ in range(3):  # warm up: first reloads import what later ones reuse
        current = _reload_once(server, current)
    before = (fd_count(master), threads(master), rss(master))
    started = time.monotonic()
    for _ in range(reloads):
        current = _reload_once(server, current)
    elapsed = time.monotonic() - started
    time.sleep(0.2)
    after = (fd_count(master), threads(master), rss(master))
    growth = after[2] - before[2]
    met = after[:2] == before[:2] and growth < 4 * 1024 * 1024
    report(f"{reloads} HUP reloads, 1 worker", "sync",
           "master fd and thread counts unchanged; RSS growth < 4 MiB", met,
           fds=f"{before[0]}->{after[0]}", threads=f"{before[1]}->{after[1]}",
           master_rss_mib=f"{mib(before[2])}->{mib(after[2])}",
           reloads_per_s=round(reloads / elapsed, 1))  # fmt: skip
    assert met, (before, after)
    assert server.wait_workers(1) == [current]


def _reload_once(server: Server, current: int) -> int:
    server.signal(signal.SIGHUP)
    found = wait_for(
        lambda: (w,) if (w := server.workers()) and current not in w and len(w) == 1 else None,
        10,
        "the reload",
        0.005,
    )
    return int(found[0][0])


def test_fifty_reloads_leave_the_master_unchanged(servers: Servers) -> None:
    reloads_leave_the_master_unchanged(servers, 50)


@pytest.mark.slow
def test_a_thousand_reloads_leave_the_master_unchanged(servers: Servers) -> None:
    reloads_leave_the_master_unchanged(servers, 1000)


def test_gthread_graceful_stop_serves_a_connection_accepted_before_its_request(
    servers: Servers,
) -> None:
    graceful_stop_serves_a_late_request(servers, "gthread", "--threads", "2")
