"""Metrics from real servers: the master's Prometheus endpoint summing every worker, and
StatsD datagrams received by a real UDP listener."""

from __future__ import annotations

import re
import signal
import socket
import threading
import urllib.request
from collections import Counter

import pytest
from conftest import free_port, wait_for  # the arbiter tests' helpers

parser = pytest.importorskip(
    "prometheus_client.parser", reason="prometheus_client (a test dependency) is not installed"
)


def request(port: int, method: str = "GET", path: str = "/") -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                     "Content-Length: 0\r\n\r\n".encode())  # fmt: skip
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return int(data.split()[1])


def scrape(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    return {family.name: family for family in parser.text_string_to_metric_families(text)}


def requests_by_label(found: dict) -> Counter:
    counts: Counter = Counter()
    for sample in found["forkhorn_requests"].samples:
        counts[(sample.labels["method"], sample.labels["status"])] += int(sample.value)
    return counts


def value(found: dict, name: str, **labels: str) -> float:
    for sample in found[name].samples:
        if all(sample.labels.get(k) == v for k, v in labels.items()):
            return float(sample.value)
    raise KeyError(name)


@pytest.mark.parametrize("worker_class", ["sync", "gthread"])
def test_request_counter_equals_requests_sent_summed_over_workers(serve, worker_class):
    metrics_port = free_port()
    server = serve("-k", worker_class, "--threads", "4", "--metrics-bind",
                   f"127.0.0.1:{metrics_port}", workers=2)  # fmt: skip
    baseline = sum(requests_by_label(scrape(metrics_port)).values())  # the readiness probes
    sent: Counter = Counter()

    def client(kind: str) -> None:
        for _ in range(20):
            method, path, status = {
                "get": ("GET", "/", "200"),
                "post": ("POST", "/", "200"),
                "missing": ("GET", "/missing", "404"),
            }[kind]
            assert request(server.port, method, path) == int(status)
            with lock:
                sent[(method, status)] += 1

    lock = threading.Lock()
    threads = [threading.Thread(target=client, args=(kind,)) for kind in ("get", "post", "missing")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    total = sum(sent.values())
    assert total == 60

    def settled() -> dict | None:
        found = scrape(metrics_port)
        return found if sum(requests_by_label(found).values()) - baseline == total else None

    found = wait_for(settled, 10, "the request counter to reach the requests sent")
    counts = requests_by_label(found)
    counts[("GET", "200")] -= baseline
    assert +counts == sent
    duration_count = value(found, "forkhorn_request_duration_seconds", le="+Inf")
    assert duration_count == total + baseline
    assert value(found, "forkhorn_workers", state="ready") == 2
    assert value(found, "forkhorn_requests_in_flight") == 0
    pids = {s.labels["pid"] for s in found["forkhorn_worker_resident_memory_bytes"].samples}
    assert pids == {str(pid) for pid in server.workers()}
    assert value(found, "forkhorn_listen_backlog", listener=f"http://127.0.0.1:{server.port}") >= 0
    server.kill(signal.SIGTERM)
    assert server.wait_exit(15) == 0


def test_counters_stay_monotonic_across_worker_restarts_and_count_in_flight(serve):
    metrics_port = free_port()
    server = serve("--metrics-bind", f"127.0.0.1:{metrics_port}", "--max-requests", "5",
                   workers=2)  # fmt: skip
    baseline = sum(requests_by_label(scrape(metrics_port)).values())
    for _ in range(30):
        assert request(server.port) == 200

    def settled() -> dict | None:
        found = scrape(metrics_port)
        total = sum(requests_by_label(found).values()) - baseline
        return found if total == 30 and value(found, "forkhorn_worker_restarts") >= 1 else None

    found = wait_for(settled, 20, "30 requests counted across restarted workers")
    assert value(found, "forkhorn_worker_spawns") >= 3
    slow = threading.Thread(target=lambda: request(server.port, "GET", "/sleep?2"))
    slow.start()
    wait_for(lambda: value(scrape(metrics_port), "forkhorn_requests_in_flight") == 1, 5,
             "the slow request to be in flight")  # fmt: skip
    slow.join(10)


def test_timeout_names_the_request_dumps_stacks_and_is_counted(serve):
    metrics_port = free_port()
    server = serve("--metrics-bind", f"127.0.0.1:{metrics_port}", "--timeout", "2", workers=1)
    (stuck,) = server.workers()
    hang = threading.Thread(target=lambda: _ignore_errors(request, server.port, "GET", "/hang"))
    hang.start()
    wait_for(lambda: value(scrape(metrics_port), "forkhorn_worker_timeouts") == 1, 15,
             "the timeout to be counted")  # fmt: skip
    hang.join(15)

    def dumped() -> str | None:
        text = server.log()
        return text if "most recent call first" in text.split("WORKER TIMEOUT")[-1] else None

    log = wait_for(dumped, 10, "the stack dump")
    assert re.search(rf"WORKER TIMEOUT \(pid:{stuck}\) serving GET /hang for \d+\.\d s", log)
    assert "instrument_apps.py" in log.split("WORKER TIMEOUT")[-1]  # the stuck frame
    server.wait_workers(1)
    # the aborted worker may still be unreaped (one worker: itself); its exit counts on reap
    wait_for(lambda: stuck not in server.workers(), 10, "the stuck worker to be reaped")
    assert value(scrape(metrics_port), "forkhorn_worker_restarts") == 1


def _ignore_errors(function, *args) -> None:
    try:
        function(*args)
    except (OSError, IndexError, ValueError):
        pass


def test_statsd_metrics_reach_a_real_udp_listener(serve):
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(0.5)
    lines: list[str] = []
    try:
        server = serve("--statsd-host", f"127.0.0.1:{listener.getsockname()[1]}",
                       "--statsd-prefix", "svc", "--dogstatsd-tags", "env:test", workers=2)  # fmt: skip
        for _ in range(25):
            assert request(server.port, "GET", "/missing") == 404

        def count(metric: str) -> int:
            while True:
                try:
                    lines.extend(listener.recv(65536).decode().split("\n"))
                except TimeoutError:
                    break
            return sum(1 for line in lines if line == metric)

        wait_for(lambda: count("svc.forkhorn.request.status.404:1|c|#env:test") == 25, 10,
                 "25 status counters")  # fmt: skip
        assert count("svc.forkhorn.requests:1|c|#env:test") >= 25  # + the readiness probes
        durations = [line for line in lines if line.startswith("svc.forkhorn.request.duration:")]
        assert all(re.fullmatch(r"svc\.forkhorn\.request\.duration:\d+\.\d{3}\|ms\|#env:test", d)
                   for d in durations)  # fmt: skip
        wait_for(lambda: count("svc.forkhorn.workers:2|g|#env:test") > 0, 5, "the workers gauge")
        server.kill(signal.SIGTERM)
        assert server.wait_exit(15) == 0
    finally:
        listener.close()
