"""Resources: no fd or RSS growth after 10,000 requests; a worker over
``max_worker_memory`` is replaced without a failed request."""

from __future__ import annotations

import re
import threading
import time

import pytest
from reliability_load import LoadClient
from reliability_support import Servers, fd_count, get, mib, report, rss

WORKERS = ["sync", "gthread"]
#: RSS growth of a worker tolerated after 10,000 requests: allocator and cache noise
RSS_NOISE = 1024 * 1024


def _snapshot(pids: list[int]) -> dict[int, tuple[int, int]]:
    return {pid: (fd_count(pid), rss(pid)) for pid in pids}


def _run_requests(port: int, count: int, keepalive: bool) -> LoadClient:
    with LoadClient(port, threads=4, keepalive=keepalive) as load:
        load.wait_requests(count, timeout=120)
    return load


@pytest.mark.parametrize("worker", WORKERS)
def test_ten_thousand_requests_leave_no_fd_or_rss_growth(servers: Servers, worker: str) -> None:
    args = ("--threads", "4") if worker == "gthread" else ()
    keepalive = worker == "gthread"
    server = servers.start(*args, worker=worker, workers=2)
    pids = server.workers()
    _run_requests(server.port, 2000, keepalive)  # warm-up: caches, arenas, thread stacks
    time.sleep(0.3)  # the server closes its side of finished connections
    before = _snapshot(pids)
    load = _run_requests(server.port, 10_000, keepalive)
    time.sleep(0.3)
    after = _snapshot(pids)
    assert server.workers() == pids, "a worker was replaced during the run"
    fd_growth = max(after[pid][0] - before[pid][0] for pid in pids)
    rss_growth = max(after[pid][1] - before[pid][1] for pid in pids)
    met = fd_growth <= 0 and rss_growth <= RSS_NOISE and load.lost == 0
    report("10,000 requests: fd and RSS of each worker", worker,
           "no fd growth; RSS growth <= 1 MiB per worker", met, requests=load.ok,
           fds=" ".join(f"{before[p][0]}->{after[p][0]}" for p in pids),
           rss_mib=" ".join(f"{mib(before[p][1])}->{mib(after[p][1])}" for p in pids),
           max_rss_growth_kib=rss_growth // 1024, lost=load.lost)  # fmt: skip
    assert met, (before, after, load.figures())


@pytest.mark.parametrize("worker", WORKERS)
def test_a_worker_over_max_worker_memory_is_replaced_without_a_failed_request(
    servers: Servers, worker: str
) -> None:
    args = ("--threads", "4") if worker == "gthread" else ()
    probe = servers.start(*args, worker=worker, workers=1)
    fresh = rss(probe.workers()[0])
    limit = fresh + 48 * 1024 * 1024  # a fresh worker plus six /grow?8 calls
    server = servers.start(*args, "--max-worker-memory", str(limit), worker=worker, workers=2)
    peak = 0
    stop = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not stop.wait(0.02):
            for pid in server.workers():
                try:
                    peak = max(peak, rss(pid))
                except OSError:
                    pass  # exited meanwhile

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    grown = failed_grows = 0
    try:
        with LoadClient(server.port, threads=4) as load:
            end = time.monotonic() + 8.0
            while time.monotonic() < end:
                try:
                    status = get(server.port, "/grow?8", timeout=10)[0]
                except OSError:
                    status = 0
                grown += status == 200
                failed_grows += status != 200
                time.sleep(0.05)
            server.wait_workers(2)
            load.wait_requests(50)
    finally:
        stop.set()
        watcher.join(timeout=5)
    log = server.log()
    recycled = len(re.findall(r"over max_worker_memory", log))
    replaced = len(re.findall(r"asks to be replaced: memory", log))
    lost = load.lost + load.refused + failed_grows
    met = recycled >= 2 and replaced == recycled and lost == 0
    report("max_worker_memory recycling under load", worker,
           "over-limit workers replaced; requests lost: 0", met,
           limit_mib=mib(limit), fresh_worker_mib=mib(fresh), peak_rss_mib=mib(peak),
           recycled=recycled, grow_requests=grown, lost=lost,
           ok=load.ok)  # fmt: skip
    assert met, (recycled, replaced, load.figures(), failed_grows, load.failures)
