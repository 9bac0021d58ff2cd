"""``max_worker_memory``: the setting's values, the RSS check and the worker's retirement.

The end-to-end behaviour (a worker over the limit replaced under load, no failed request)
is in ``tests/reliability/test_reliability_resources.py``.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from forkhorn.config.config import Config, ConfigError
from forkhorn.config.validators import memory_size
from forkhorn.workers import memory
from forkhorn.workers.base import Worker
from forkhorn.workers.memory import MemoryLimit

MIB = 1024 * 1024


class Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def __getattr__(self, level: str) -> Any:
        return lambda msg, *args: self.lines.append((level, msg % args))


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (0, 0),
        (None, 0),
        ("off", 0),
        ("0", 0),
        ("512M", 512 * MIB),
        ("512mib", 512 * MIB),
        ("64MB", 64 * MIB),
        ("1.5G", 1536 * MIB),
        (" 2 g ", 2048 * MIB),
        ("2048K", 2 * MIB),
        (str(3 * MIB), 3 * MIB),
        (3 * MIB, 3 * MIB),
    ],
)
def test_sizes_accepted(value: Any, size: int) -> None:
    assert memory_size(value) == size
    assert memory_size(memory_size(value)) == size  # the canonical value passes through


@pytest.mark.parametrize("value", ["512", 512, "lots", "12Q", "-1M", True, 1.5, "M"])
def test_sizes_refused(value: Any) -> None:
    with pytest.raises(ValueError):
        memory_size(value)


def test_the_setting_is_off_by_default_and_takes_a_size() -> None:
    cfg = Config()
    assert cfg.max_worker_memory == 0
    cfg.set("max_worker_memory", "256M")
    assert cfg.max_worker_memory == 256 * MIB
    with pytest.raises((ConfigError, ValueError)):
        cfg.set("max_worker_memory", "256")


def test_rss_is_read_from_this_process() -> None:
    limit = MemoryLimit(1, Log())
    first = limit.rss()
    assert first is not None and first > MIB
    block = bytearray(b"\x01") * (32 * MIB)  # filled, so resident
    grown = limit.rss()
    assert grown is not None and grown - first >= 24 * MIB
    del block
    limit.close()


def test_checked_at_most_once_per_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(memory.time, "monotonic", lambda: now[0])
    limit = MemoryLimit(10 * 1024 * MIB, Log())
    for _ in range(50):
        assert limit.over_limit() is None
    assert limit.checks == 1
    now[0] += memory.CHECK_INTERVAL
    limit.over_limit()
    assert limit.checks == 2


def test_over_the_limit_after_the_first_check(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(memory.time, "monotonic", lambda: now[0])
    limit = MemoryLimit(100 * MIB, Log())
    sizes = iter([50 * MIB, 150 * MIB])
    monkeypatch.setattr(MemoryLimit, "rss", lambda self: next(sizes))
    assert limit.over_limit() is None
    now[0] += memory.CHECK_INTERVAL
    assert limit.over_limit() == 150 * MIB


def test_a_worker_over_the_limit_from_the_start_is_not_recycled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = Log()
    limit = MemoryLimit(10 * MIB, log)
    monkeypatch.setattr(MemoryLimit, "rss", lambda self: 50 * MIB)
    assert limit.over_limit() is None
    assert limit.limit == 0  # turned off: a replacement would be as big
    assert log.lines[0][0] == "error" and "Raise the limit" in log.lines[0][1]


def test_without_proc_the_check_turns_itself_off(monkeypatch: pytest.MonkeyPatch) -> None:
    log = Log()
    limit = MemoryLimit(10 * MIB, log)
    monkeypatch.setattr(MemoryLimit, "rss", lambda self: None)
    assert limit.over_limit() is None
    assert limit.limit == 0
    assert log.lines[0][0] == "warning"


def make_worker(limit: str | None) -> tuple[Worker, Log]:
    cfg = Config()
    if limit is not None:
        cfg.set("max_worker_memory", limit)
    log = Log()
    worker = Worker(1, os.getpid(), [], None, 15.0, cfg, log)  # type: ignore[arg-type]
    return worker, log


def test_count_request_asks_for_retirement_over_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker, log = make_worker("64M")
    assert worker._memory is not None
    monkeypatch.setattr(MemoryLimit, "over_limit", lambda self: 96 * MIB)
    worker.count_request()
    assert not worker.alive  # no master (no slot): it stops after this request
    assert any("RSS 96.0 MiB is over max_worker_memory 64.0 MiB" in line for _, line in log.lines)
    assert any("(memory)" in line for _, line in log.lines)


def test_no_limit_costs_no_check() -> None:
    worker, _ = make_worker(None)
    assert worker._memory is None
    worker.count_request()
    assert worker.alive
