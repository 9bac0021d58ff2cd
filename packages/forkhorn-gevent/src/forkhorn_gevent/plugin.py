"""The ``forkhorn.plugins`` entry point of forkhorn-gevent: registers the ``gevent`` worker,
also under Gunicorn's two names for its gevent ``pywsgi`` worker (``gevent_pywsgi``,
``gevent_wsgi``), so a Gunicorn configuration naming them starts unchanged. Those names
run the same worker: gevent's own WSGI server would be a second, slower HTTP
implementation with a parser of its own, and nothing a WSGI app sees depends on which
server loop runs under it.

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
GUNICORN_PYWSGI_NAMES = ("gevent_pywsgi", "gevent_wsgi")
ALIAS_SUMMARY = "Gunicorn's name for its gevent pywsgi worker: runs the gevent worker"


@hookimpl
def forkhorn_register_workers(registry: Any) -> None:
    registry.add(WORKER_NAME, WORKER_TARGET, SUMMARY)
    for name in GUNICORN_PYWSGI_NAMES:
        registry.add(name, WORKER_TARGET, ALIAS_SUMMARY)
