"""``Logger(cfg)``: the error log and the access log of one server run.

Theory of operation
-------------------
Two stdlib loggers, ``forkhorn.error`` and ``forkhorn.access``, configured from the settings
when a ``Logger`` is built (never at import time); ``propagate`` is off so the app's own
logging configuration cannot duplicate or swallow our lines. The error log uses Gunicorn's
line format ``[2014-09-10 10:22:28 +0000] [30869] [INFO] message``.

Invariants
----------
* ``access()`` is only called when ``access_enabled``; the formatter computes only the atoms
  the format uses, and escapes every client-supplied value.
* ``reopen_files()`` (SIGUSR1, in the master and every worker) reopens file handlers under
  their lock, so a line is written either to the old file or to the new one, never lost.
* Files are opened in append mode: master and workers write whole lines with O_APPEND.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from forkhorn.logging.access import AccessContext, AccessFormatter

ERROR_FORMAT = "%(asctime)s [%(process)d] [%(levelname)s] %(message)s"
DATE_FORMAT = "[%Y-%m-%d %H:%M:%S %z]"
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


class Logger:
    """The server's logs. Subclasses (issue 9: JSON, StatsD) override ``setup`` / ``access``."""

    error_log_name = "forkhorn.error"
    access_log_name = "forkhorn.access"

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        self.error_log = logging.getLogger(self.error_log_name)
        self.access_log = logging.getLogger(self.access_log_name)
        self.access_enabled = False
        self._access_formatter: AccessFormatter | None = None
        self.setup(cfg)

    # --- configuration ------------------------------------------------------------------

    def setup(self, cfg: Any) -> None:
        """(Re)configure from ``cfg``; called again on SIGHUP with the reloaded settings."""
        self.cfg = cfg
        self.error_log.propagate = False
        self.access_log.propagate = False
        level = LEVELS.get(str(getattr(cfg, "loglevel", "info")).lower(), logging.INFO)
        self.error_log.setLevel(level)
        self.access_log.setLevel(logging.INFO)
        self._replace_handlers(self.error_log, getattr(cfg, "errorlog", "-"), sys.stderr)
        error_formatter = logging.Formatter(ERROR_FORMAT, DATE_FORMAT)
        for handler in self.error_log.handlers:
            handler.setFormatter(error_formatter)
        accesslog = getattr(cfg, "accesslog", None)
        self.access_enabled = bool(accesslog)
        if accesslog:
            self._replace_handlers(self.access_log, accesslog, sys.stdout)
            for handler in self.access_log.handlers:
                handler.setFormatter(logging.Formatter("%(message)s"))
            self._access_formatter = AccessFormatter(
                getattr(cfg, "access_log_format", None)
                or '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'
            )
        else:
            self._replace_handlers(self.access_log, None, sys.stdout)
        if getattr(cfg, "capture_output", False) and getattr(cfg, "errorlog", "-") != "-":
            self._capture_output()

    @staticmethod
    def _replace_handlers(logger: logging.Logger, target: str | None, stream: Any) -> None:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()
        if target is None:
            logger.addHandler(logging.NullHandler())
        elif target == "-":
            logger.addHandler(logging.StreamHandler(stream))
        else:
            logger.addHandler(logging.FileHandler(target, mode="a", encoding="utf-8"))

    def _capture_output(self) -> None:
        """Send the app's prints (fd 1 and 2) to the error log file."""
        fileno = self.error_fileno()
        if fileno is None:
            return
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(fileno, 1)
        os.dup2(fileno, 2)

    def reopen_files(self) -> None:
        for logger in (self.error_log, self.access_log):
            for handler in logger.handlers:
                if not isinstance(handler, logging.FileHandler):
                    continue
                handler.acquire()
                try:
                    if handler.stream:
                        handler.stream.close()
                    handler.stream = handler._open()
                finally:
                    handler.release()
        if getattr(self.cfg, "capture_output", False) and getattr(self.cfg, "errorlog", "-") != "-":
            self._capture_output()

    def close_on_exec(self) -> None:
        """Log files must not leak into a re-exec'd master (it opens its own)."""
        for logger in (self.error_log, self.access_log):
            for handler in logger.handlers:
                stream = getattr(handler, "stream", None)
                if isinstance(handler, logging.FileHandler) and stream is not None:
                    os.set_inheritable(stream.fileno(), False)

    def error_fileno(self) -> int | None:
        """The fd the error log writes to (for faulthandler's stack dumps), or None."""
        for handler in self.error_log.handlers:
            stream = getattr(handler, "stream", None)
            if stream is None:
                continue
            try:
                stream.flush()
                return int(stream.fileno())
            except (OSError, ValueError, AttributeError):
                continue
        return None

    # --- the error log ------------------------------------------------------------------

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.error_log.debug(msg, *args, **kwargs)

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.error_log.info(msg, *args, **kwargs)

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.error_log.warning(msg, *args, **kwargs)

    def error(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.error_log.error(msg, *args, **kwargs)

    def critical(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.error_log.critical(msg, *args, **kwargs)

    def exception(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.error_log.exception(msg, *args, **kwargs)

    def log(self, level: int | str, msg: str, *args: Any, **kwargs: Any) -> None:
        if isinstance(level, str):
            level = LEVELS.get(level.lower(), logging.INFO)
        self.error_log.log(level, msg, *args, **kwargs)

    # --- the access log -----------------------------------------------------------------

    def access(
        self,
        environ: dict[str, Any],
        status: str,
        response_headers: list[tuple[str, str]],
        sent_bytes: int,
        request_time: float,
    ) -> None:
        formatter = self._access_formatter
        if formatter is None:
            return
        ctx = AccessContext(environ, status, response_headers, sent_bytes, request_time)
        try:
            line = formatter.format(ctx)
        except Exception:
            self.error_log.exception("Failed to format the access log line")
            return
        self.access_log.info(line)
