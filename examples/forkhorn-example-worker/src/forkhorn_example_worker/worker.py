"""The example worker: the built-in sync worker, marked so tests can tell it was chosen."""

from __future__ import annotations

from forkhorn.workers.sync import SyncWorker


class ExampleWorker(SyncWorker):
    """Serves exactly like ``sync``; ``worker_name`` shows which class the master chose."""

    worker_name = "example"
