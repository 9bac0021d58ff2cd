"""The metrics board: per-worker regions in shared memory, folded when a worker dies."""

from __future__ import annotations

import os

from forkhorn.instrument import board as board_module
from forkhorn.instrument.board import BUCKETS, N_BUCKETS, LockedWorkerMetrics, MetricsBoard


def test_a_forked_child_counts_into_the_masters_board():
    board = MetricsBoard(capacity=4)
    region = board.region(2)
    assert region is not None
    pid = os.fork()
    if pid == 0:
        try:
            sink = region.sink()
            for _ in range(3):
                region.begin()
                sink({"REQUEST_METHOD": "GET"}, "200 OK", [], 0, 0.004)
                region.end()
            region.begin()  # still in flight when the scrape happens
            sink({"REQUEST_METHOD": "BREW"}, "418 I'm a teapot", [], 0, 20.0)
            region.record("POST", "599 Odd", 0.2)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    totals = board.totals([2])
    assert sorted(totals.requests()) == [("GET", "200", 3), ("POST", "5xx", 1),
                                         ("other", "4xx", 1)]  # fmt: skip
    assert totals.in_flight == 1
    buckets = totals.buckets()
    assert len(buckets) == N_BUCKETS == len(BUCKETS) + 1
    assert buckets[0] == 3 and buckets[-1] == 1 and sum(buckets) == 5
    assert abs(totals.duration_sum - (3 * 0.004 + 20.0 + 0.2)) < 1e-9


def test_fold_keeps_counters_monotonic_and_drops_in_flight():
    board = MetricsBoard(capacity=4)
    first = board.region(0)
    assert first is not None
    first.begin()
    first.record("GET", "200 OK", 0.01)
    before = board.totals([0])
    board.fold(0)  # the worker died with a request in flight
    after = board.totals([])
    assert after.requests() == before.requests() == [("GET", "200", 1)]
    assert after.in_flight == 0 and after.duration_sum == before.duration_sum
    reused = board.region(0)  # the slot is reused by the replacement: zeroed
    assert reused is not None
    reused.record("GET", "200 OK", 0.01)
    assert board.totals([0]).requests() == [("GET", "200", 2)]


def test_out_of_capacity_slots_have_no_region():
    board = MetricsBoard(capacity=1)
    assert board.region(1) is None
    board.fold(5)
    assert board.totals([7]).requests() == []


def test_free_threaded_regions_count_under_their_lock(monkeypatch):
    monkeypatch.setattr(board_module, "_gil_enabled", lambda: False)
    board = MetricsBoard(capacity=1)
    region = board.region(0)
    assert isinstance(region, LockedWorkerMetrics)
    region.begin()
    region.sink()({"REQUEST_METHOD": "GET"}, "200 OK", [], 0, 0.004)
    region.record("PUT", "201 Created", 0.02)
    region.end()
    region.begin()
    totals = board.totals([0])
    assert sorted(totals.requests()) == [("GET", "200", 1), ("PUT", "201", 1)]
    assert totals.in_flight == 1
    assert abs(totals.duration_sum - 0.024) < 1e-9
    assert not region._lock.locked()


def test_record_source_compiles_into_another_function():
    board = MetricsBoard(capacity=2)
    region = board.region(1)
    assert region is not None
    statements, names = region.record_source()
    assert all(name.startswith("_m_") for name in names)
    namespace = dict(names)
    source = "def job(environ, status, headers, sent, took):\n" + "\n".join(statements)
    exec(source, namespace)
    namespace["job"]({"REQUEST_METHOD": "DELETE"}, "204 No Content", [], 0, 0.3)
    namespace["job"]({}, "204 No Content", [], 0, 0.001)
    totals = board.totals([1])
    assert sorted(totals.requests()) == [("DELETE", "204", 1), ("other", "204", 1)]
    assert totals.buckets()[0] == 1 and totals.buckets()[BUCKETS.index(0.5)] == 1
    assert board.totals([0]).requests() == []  # region 0 untouched
