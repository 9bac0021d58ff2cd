"""forkhorn's logs: ``Logger(cfg)`` (error log, access log, per-request metric sinks),
``make_logger(cfg)`` (honours ``logger_class``), the access formatters and request ids."""

from forkhorn.logging.access import AccessFormatter, escape
from forkhorn.logging.factory import LoggerClassError, load_logger_class, make_logger
from forkhorn.logging.logger import Logger
from forkhorn.logging.requestid import RequestIds

__all__ = [
    "AccessFormatter",
    "Logger",
    "LoggerClassError",
    "RequestIds",
    "escape",
    "load_logger_class",
    "make_logger",
]
