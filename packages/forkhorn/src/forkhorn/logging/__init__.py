"""forkhorn's logs: ``Logger(cfg)`` (error log, access log, per-request metric sinks),
``make_logger(cfg)`` (honours ``logger_class``), the access formatters and request ids."""

from __future__ import annotations

from typing import Any

from forkhorn.logging.factory import LoggerClassError, load_logger_class, make_logger
from forkhorn.logging.logger import Logger

__all__ = [
    "AccessFormatter",
    "Logger",
    "LoggerClassError",
    "RequestIds",
    "escape",
    "load_logger_class",
    "make_logger",
]


#: loaded when first asked for: a start without an access log or request ids needs neither
_LAZY = {
    "AccessFormatter": "forkhorn.logging.access",
    "escape": "forkhorn.logging.access",
    "RequestIds": "forkhorn.logging.requestid",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        import importlib

        return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
