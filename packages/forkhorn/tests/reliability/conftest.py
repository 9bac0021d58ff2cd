"""Fixtures of the reliability suite (the helpers live in ``reliability_support``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from reliability_support import Servers


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    """Start servers with ``servers.start(...)``; every process is gone after the test."""
    started = Servers(tmp_path)
    try:
        yield started
    finally:
        started.close()
