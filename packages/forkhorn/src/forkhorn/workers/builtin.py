"""Registers the built-in workers through the same hook third-party plugins use."""

from __future__ import annotations

from typing import Any

from forkhorn.plugins.hookspec import hookimpl


@hookimpl
def forkhorn_register_workers(registry: Any) -> None:
    registry.add("sync", "forkhorn.workers.sync:SyncWorker", "one request at a time per process (default)")
    registry.add("gthread", "forkhorn.workers.gthread:ThreadWorker", "thread pool with keep-alive connections parked in a selector")
