"""Real ``forkhorn -k gevent`` processes for the tests, always cleaned up.

The fixtures and helpers are the core's worker test kit (:mod:`forkhorn.testing`); this
names the worker. Plugin autoload is on in the servers: the worker is found through its
entry point, as a user's ``-k gevent`` would find it.
"""

from __future__ import annotations

import pytest
from forkhorn.testing.servers import free_port, http_get, server_env, start_server  # noqa: F401

WORKER = "gevent"


@pytest.fixture
def worker_name() -> str:
    """The worker class the shared suite (``forkhorn.testing.suite``) runs against."""
    return WORKER
