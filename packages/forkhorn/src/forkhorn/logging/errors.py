"""``wsgi.errors``: what the app writes there goes where the error log goes.

Gunicorn gives the app a stream that writes to its error log's streams (the error log
file, or stderr). Flask's default log handler, for one, writes there during a request, so
a Gunicorn user running with ``--error-logfile`` finds the app's messages in that file.
``ErrorsStream`` does the same: one object per logger, in the environ of every request,
which looks the error log's streams up at each write (``USR1`` may have reopened the file,
``HUP`` may have changed it; writes are rare). In the JSON log format a raw line would
break a file of JSON lines, so each line becomes a record of the error log instead.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import Any


class ErrorsStream:
    """A text stream (PEP 3333's ``write``, ``writelines``, ``flush``) onto the error log."""

    def __init__(self, logger: Any) -> None:
        self._logger = logger  # a forkhorn.logging.Logger (its cfg and error_log may change)

    def _as_json(self) -> bool:
        return str(getattr(self._logger.cfg, "log_format", "text")).lower() == "json"

    def _streams(self) -> list[Any]:
        handlers = self._logger.error_log.handlers
        streams = [
            h.stream
            for h in handlers
            # (a FileHandler made with delay=True has no stream until its first record)
            if isinstance(h, logging.StreamHandler) and h.stream is not None
        ]
        return streams or [sys.stderr]  # (syslog only: as Gunicorn, stderr still gets it)

    def write(self, text: str) -> int:
        if self._as_json():
            for line in text.splitlines():
                if line.strip():
                    self._logger.error_log.error("%s", line)
            return len(text)
        for stream in self._streams():
            try:
                stream.write(text)
                stream.flush()
            except (OSError, ValueError):
                pass  # a closed or full log must not fail the request
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        """Nothing left to do: each ``write`` has flushed what it wrote (and a JSON line
        went out as a log record)."""
