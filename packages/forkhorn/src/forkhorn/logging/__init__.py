"""forkhorn's logs: ``Logger(cfg)`` (error log, access log, per-request metric sinks),
``make_logger(cfg)`` (honours ``logger_class``), the access formatters and request ids."""

from __future__ import annotations

from typing import Any

from forkhorn.logging.access import AccessFormatter, escape
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


def __getattr__(name: str) -> Any:
    # RequestIds pulls in the peer matcher (ipaddress): loaded only when asked for
    if name == "RequestIds":
        from forkhorn.logging.requestid import RequestIds

        return RequestIds
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
