"""Resolving the worker class when the caller did not pass one to ``Arbiter``.

The CLI resolves the class itself (and calls ``patch_master``) before building the arbiter;
this fallback serves other entry points (tests, embedding). It uses the registry module when
it exists, else the ``forkhorn_register_workers`` hook and a direct import for
``module:Class`` / dotted paths.
"""

from __future__ import annotations

import importlib
from typing import Any


class WorkerClassError(Exception):
    """The worker class cannot be found or imported."""


def import_worker_class(path: str) -> Any:
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise WorkerClassError(f"invalid worker class {path!r}: expected module:Class")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise WorkerClassError(f"cannot import worker class {path!r}: {exc}") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise WorkerClassError(f"module {module_name!r} has no worker class {attr!r}") from None


class _Names:
    def __init__(self) -> None:
        self.paths: dict[str, str] = {}

    def add(self, name: str, path: str, summary: str = "") -> None:
        self.paths.setdefault(name, path)


def load_worker_class(app: Any, cfg: Any) -> Any:
    resolved = getattr(app, "worker_class", None)
    if resolved is not None:
        return resolved  # resolved (and patched) by the CLI
    value = cfg.worker_class
    if not isinstance(value, str):
        return value  # a class given directly (config file)
    if value == "sync" and int(getattr(cfg, "threads", 1) or 1) > 1:
        value = "gthread"  # as Gunicorn
    if ":" in value or "." in value:
        cls = import_worker_class(value)
    else:
        names = _Names()
        app.plugin_manager.hook.forkhorn_register_workers(registry=names)
        if value not in names.paths:
            known = ", ".join(sorted(names.paths)) or "none"
            raise WorkerClassError(f"unknown worker class {value!r} (known: {known})")
        cls = import_worker_class(names.paths[value])
    cls.patch_master(bool(getattr(cfg, "preload_app", False)))
    return cls
