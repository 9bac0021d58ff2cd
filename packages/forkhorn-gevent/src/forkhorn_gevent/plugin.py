"""The ``forkhorn.plugins`` entry point of forkhorn-gevent: registers the ``gevent`` worker.

Holds only hook implementations. Invariant: importing this module imports neither gevent nor
``forkhorn_gevent.worker``; the registry imports ``forkhorn_gevent.worker:GeventWorker`` only
when ``-k gevent`` is chosen (``forkhorn --list-workers`` stays cheap and works even if
gevent itself is broken).
"""

from __future__ import annotations

from typing import Any

from forkhorn.plugins.hookspec import hookimpl

WORKER_NAME = "gevent"
WORKER_TARGET = "forkhorn_gevent.worker:GeventWorker"
SUMMARY = "gevent greenlets: thousands of concurrent connections per process (monkey-patches)"


@hookimpl
def forkhorn_register_workers(registry: Any) -> None:
    registry.add(WORKER_NAME, WORKER_TARGET, SUMMARY)
