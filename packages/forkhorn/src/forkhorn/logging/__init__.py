"""forkhorn's logs: ``Logger(cfg)`` (error log + access log) and the access formatter."""

from forkhorn.logging.access import AccessFormatter, escape
from forkhorn.logging.logger import Logger

__all__ = ["AccessFormatter", "Logger", "escape"]
