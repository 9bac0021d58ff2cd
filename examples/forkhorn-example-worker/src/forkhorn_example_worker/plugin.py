"""The entry-point module: hook implementations only, no worker code imported here."""

from __future__ import annotations

from typing import Any

from forkhorn.plugins.hookspec import hookimpl


@hookimpl
def forkhorn_register_workers(registry: Any) -> None:
    registry.add(
        "example",
        "forkhorn_example_worker.worker:ExampleWorker",
        "the sync worker under another name (an example plugin)",
    )
