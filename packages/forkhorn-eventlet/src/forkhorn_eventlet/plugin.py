"""The ``forkhorn.plugins`` entry point of forkhorn-eventlet: registers the ``eventlet`` worker.

Holds only hook implementations. Invariant: importing this module imports neither eventlet nor
``forkhorn_eventlet.worker``; the registry imports ``forkhorn_eventlet.worker:EventletWorker`` only
when ``-k eventlet`` is chosen (``forkhorn --list-workers`` stays cheap and works even if
eventlet itself is broken).
"""

from __future__ import annotations

from typing import Any

from forkhorn.plugins.hookspec import hookimpl

WORKER_NAME = "eventlet"
WORKER_TARGET = "forkhorn_eventlet.worker:EventletWorker"
SUMMARY = "eventlet green threads: many concurrent connections per process (monkey-patches)"


@hookimpl
def forkhorn_register_workers(registry: Any) -> None:
    registry.add(WORKER_NAME, WORKER_TARGET, SUMMARY)
