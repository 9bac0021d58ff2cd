"""Fixtures for the WSGI layer tests (helpers live in ``wsgi_support``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from wsgi_support import Served


@pytest.fixture
def serve() -> Iterator[Callable[..., Served]]:
    started: list[Served] = []

    def start(app: Callable[..., Any], **kwargs: Any) -> Served:
        served = Served(app, **kwargs)
        started.append(served)
        return served

    yield start
    for served in started:
        served.client.close()
        served.thread.join(5)
