"""The text exposition, checked with prometheus_client's own parser."""

from __future__ import annotations

import pytest
from forkhorn.instrument.board import MetricsBoard
from forkhorn.instrument.prometheus import BacklogSample, Snapshot, WorkerSample, render

parser = pytest.importorskip(
    "prometheus_client.parser", reason="prometheus_client (a test dependency) is not installed"
)


def families(text: str) -> dict:
    return {family.name: family for family in parser.text_string_to_metric_families(text)}


def test_render_parses_and_carries_every_family():
    board = MetricsBoard(capacity=2)
    region = board.region(0)
    assert region is not None
    region.record("GET", "200 OK", 0.003)
    region.record("GET", "200 OK", 0.3)
    region.record("POST", "500 Internal Server Error", 12.0)
    region.begin()
    snap = Snapshot(
        totals=board.totals([0]),
        workers=[WorkerSample(101, 1, "ready", 20_000_000), WorkerSample(102, 2, "booting", None)],
        wanted_workers=2, worker_spawns=3, worker_exits=1, worker_timeouts=1,
        master_rss_bytes=10_000_000,
        backlogs=[BacklogSample('http://127.0.0.1:8000 "x"\n', 3, 128)], version="1.2.3",
    )  # fmt: skip
    text = render(snap).decode()
    found = families(text)
    requests = {(s.labels["method"], s.labels["status"]): s.value
                for s in found["forkhorn_requests"].samples}  # fmt: skip
    assert requests == {("GET", "200"): 2, ("POST", "500"): 1}
    histogram = found["forkhorn_request_duration_seconds"]
    buckets = {s.labels["le"]: s.value for s in histogram.samples if s.name.endswith("_bucket")}
    assert buckets["0.005"] == 1 and buckets["0.5"] == 2 and buckets["10.0"] == 2
    assert buckets["+Inf"] == 3
    count = [s.value for s in histogram.samples if s.name.endswith("_count")]
    assert count == [3]
    assert found["forkhorn_requests_in_flight"].samples[0].value == 1
    workers = {s.labels["state"]: s.value for s in found["forkhorn_workers"].samples}
    assert workers["ready"] == 1 and workers["booting"] == 1 and workers["drain"] == 0
    assert found["forkhorn_worker_restarts"].samples[0].value == 1
    assert found["forkhorn_worker_timeouts"].samples[0].value == 1
    rss = found["forkhorn_worker_resident_memory_bytes"].samples
    assert [(s.labels["pid"], s.value) for s in rss] == [("101", 20_000_000)]
    backlog = found["forkhorn_listen_backlog"].samples[0]
    assert backlog.value == 3 and backlog.labels["listener"] == 'http://127.0.0.1:8000 "x"\n'
    assert found["forkhorn_build_info"].samples[0].labels["version"] == "1.2.3"
