"""Registers the built-in workers through the same hook third-party plugins use.

Only strings here: the worker modules are imported when a class is chosen, so listing
workers (``--list-workers``, ``--help``) imports no worker code.
"""

from __future__ import annotations

from typing import Any

from forkhorn.plugins.hookspec import hookimpl

#: name -> (target, one-line summary), in --list-workers order
BUILTIN_WORKERS: dict[str, tuple[str, str]] = {
    "sync": (
        "forkhorn.workers.sync:SyncWorker",
        "one request at a time per process (the default)",
    ),
    "gthread": (
        "forkhorn.workers.gthread:ThreadWorker",
        "a thread pool per process; idle keep-alive connections wait in a selector",
    ),
}


@hookimpl
def forkhorn_register_workers(registry: Any) -> None:
    for name, (target, summary) in BUILTIN_WORKERS.items():
        registry.add(name, target, summary)
