"""A ``logger_class``: forkhorn's logger, plus a warning for every slow request.

forkhorn calls ``access(environ, status, headers, sent, request_time)`` once per request,
not Gunicorn's ``access(resp, req, environ, request_time)``.
(docs/guides/logging.md includes this file; tests/test_docs.py runs it.)
"""

from typing import Any

from forkhorn.logging import Logger

SLOW = 1.0  # seconds


class SlowRequestLogger(Logger):
    def access(
        self,
        environ: dict[str, Any],
        status: str,
        headers: list[tuple[str, str]],
        sent: int,
        request_time: float,
    ) -> None:
        super().access(environ, status, headers, sent, request_time)  # the access log, metrics
        if request_time > SLOW:
            self.warning(
                "slow request: %s %s took %.1f s",
                environ.get("REQUEST_METHOD"),
                environ.get("PATH_INFO"),
                request_time,
            )
