"""``Logger(cfg)``: the error log, the access log and the per-request metric sinks.

Theory of operation
-------------------
The error log is the stdlib logger ``forkhorn.error`` (Gunicorn's line format
``[2014-09-10 10:22:28 +0000] [30869] [INFO] message``, or JSON), with ``propagate`` off so
the app's own logging configuration cannot duplicate or swallow our lines; ``syslog`` and
the ``logconfig*`` settings are set up by ``forkhorn.logging.handlers``.

``access()`` is the one call the connection handler makes per request, and only when
``access_enabled`` is true: when the access log, StatsD or the metrics endpoint is on.
It fans out to a tuple of sinks chosen by ``setup`` (Gunicorn's statsd logger rides the
same call), so a sink that is off costs nothing:

* the access line (text atoms or JSON), formatted once, written straight into a buffered
  ``LineWriter`` (a file or stdout), and/or handed to the stdlib ``forkhorn.access``
  logger when it must reach syslog or a ``logconfig``;
* ``StatsdClient.request`` (requests, duration, status counters in one batch entry);
* ``WorkerMetrics.record`` into the worker's shared-memory region (``metrics_bind``).

With a plain access-log file and a text format (the usual case) these are one function the
formatter compiles (``AccessFormatter.sink``): the line, its write, StatsD's call and the
metrics' stores run in a single Python frame per request.

Invariants
----------
* A sink failing never fails the request (the handler guards the call; each sink swallows
  its I/O errors itself).
* ``reopen_files()`` (SIGUSR1, in the master and every worker) reopens file handlers under
  their lock and the access writer new-file-first, so a line is written to the old file
  or to the new one, never lost. Files are opened in append mode: whole lines, O_APPEND.
* Buffered sinks are flushed at least every second (``flush_if_due``, from the worker's
  ``notify()``), on reopen and on exit (``flush``); only a SIGKILL can lose the last second.
* Per-process state (pid stamped on lines, request-id prefix, the worker's metrics
  region) is renewed in each worker by ``bind_worker`` after the fork.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeGuard

from forkhorn.logging.clock import LogClock
from forkhorn.logging.errors import ErrorsStream
from forkhorn.logging.handlers import (
    DATE_FORMAT,
    ERROR_FORMAT,
    LogConfigError,
    apply_logconfig,
    logger_names,
    syslog_handler,
    uses_logconfig,
)
from forkhorn.logging.writer import LineWriter

if TYPE_CHECKING:  # imported where used: only access logs and request ids need them
    from forkhorn.logging.access import AccessFormatter
    from forkhorn.logging.jsonlog import JsonAccessFormatter
    from forkhorn.logging.requestid import RequestIds

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
#: Gunicorn's custom-metric convention: ``log.info("", extra={"metric": ..., ...})``
_METRIC_TYPES = ("gauge", "counter", "histogram")
_STATSD_LEVEL_COUNTERS = {
    logging.CRITICAL: "forkhorn.log.critical",
    logging.ERROR: "forkhorn.log.error",
    logging.WARNING: "forkhorn.log.warning",
}

Sink = Callable[[dict[str, Any], str, list[tuple[str, str]], int, float], None]


class Logger:
    """The server's logs. ``logger_class`` may name a subclass (``forkhorn.logging.load``)."""

    error_log_name = "forkhorn.error"
    access_log_name = "forkhorn.access"

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        self.clock = LogClock()
        self.error_log = logging.getLogger(self.error_log_name)
        self.access_log = logging.getLogger(self.access_log_name)
        self.access_enabled = False
        #: the requests' ``wsgi.errors``: onto the error log's streams, as in Gunicorn
        self.wsgi_errors = ErrorsStream(self)
        self.statsd: Any = None
        #: this worker's metrics region (``bind_worker``); None in the master
        self.metrics: Any = None
        #: ``request_id_for(environ)`` when request ids are in use (JSON logs, the atom)
        self.request_id_for: Callable[[dict[str, Any]], str] | None = None
        self._request_ids: RequestIds | None = None
        self._formatter: AccessFormatter | JsonAccessFormatter | None = None
        self._writer: LineWriter | None = None
        self._sinks: tuple[Sink, ...] = ()
        self.setup(cfg)

    # --- configuration ------------------------------------------------------------------

    def setup(self, cfg: Any) -> None:
        """(Re)configure from ``cfg``; called again on SIGHUP with the reloaded settings."""
        self.cfg = cfg
        self.close()
        as_json = str(getattr(cfg, "log_format", "text")).lower() == "json"
        access_format = getattr(cfg, "access_log_format", None) or ""  # "": the default
        self._request_ids = None
        self.request_id_for = None
        if as_json or "forkhorn.request_id" in access_format.lower():
            from forkhorn.logging.requestid import RequestIds

            self._request_ids = RequestIds(cfg)
            self.request_id_for = self._request_ids.request_id_for
        if as_json:
            from forkhorn.logging.jsonlog import JsonAccessFormatter, JsonErrorFormatter
        error_formatter: logging.Formatter = (
            JsonErrorFormatter(self.clock)
            if as_json
            else logging.Formatter(ERROR_FORMAT, DATE_FORMAT)
        )
        configured = uses_logconfig(cfg)
        if configured:
            for logger in (logging.getLogger(self.error_log_name),
                           logging.getLogger(self.access_log_name)):  # fmt: skip
                _replace_handlers(logger, [])
                logger.propagate = True
                logger.setLevel(logging.NOTSET)
            apply_logconfig(cfg)
            error_name, access_name = logger_names(self.error_log_name, self.access_log_name)
            self.error_log = logging.getLogger(error_name)
            self.access_log = logging.getLogger(access_name)
        else:
            self.error_log = logging.getLogger(self.error_log_name)
            self.access_log = logging.getLogger(self.access_log_name)
            self.error_log.propagate = False
            self.access_log.propagate = False
            level = LEVELS.get(str(getattr(cfg, "loglevel", "info")).lower(), logging.INFO)
            self.error_log.setLevel(level)
            self.access_log.setLevel(logging.INFO)
            handler = _target_handler(getattr(cfg, "errorlog", "-") or "-", sys.stderr)
            handler.setFormatter(error_formatter)
            _replace_handlers(self.error_log, [handler])
            _replace_handlers(self.access_log, [])
        syslog_access = bool(getattr(cfg, "syslog", False)) and not getattr(
            cfg, "disable_redirect_access_to_syslog", False
        )
        if getattr(cfg, "syslog", False):
            self._add_syslog(cfg, as_json, error_formatter, syslog_access)
        accesslog = getattr(cfg, "accesslog", None)
        forward = configured or syslog_access
        if accesslog or forward:
            if as_json:
                self._formatter = JsonAccessFormatter(self.clock, self.request_id_for)
            else:
                from forkhorn.logging.access import DEFAULT_FORMAT, AccessFormatter

                self._formatter = AccessFormatter(
                    access_format or DEFAULT_FORMAT, self.clock, self.request_id_for
                )
        if accesslog and not configured:
            self._writer = LineWriter(accesslog)
        if getattr(cfg, "statsd_host", None):
            self._start_statsd(cfg)
        self._forward = forward
        self._build_sinks()
        self._capture_output()

    def _add_syslog(self, cfg: Any, as_json: bool, error_formatter: logging.Formatter,
                    with_access: bool) -> None:  # fmt: skip
        try:
            inner = error_formatter if as_json else None
            self.error_log.addHandler(syslog_handler(cfg, "error", inner))
            if with_access:
                plain = logging.Formatter("%(message)s") if as_json else None
                self.access_log.addHandler(syslog_handler(cfg, "access", plain))
        except LogConfigError as exc:
            self.error_log.error("syslog is off: %s", exc)

    def _start_statsd(self, cfg: Any) -> None:
        from forkhorn.instrument.statsd import StatsdClient

        try:
            self.statsd = StatsdClient(
                cfg.statsd_host, getattr(cfg, "statsd_prefix", "") or "",
                getattr(cfg, "dogstatsd_tags", "") or "",
            )  # fmt: skip
        except (OSError, ValueError) as exc:
            self.statsd = None
            self.error_log.warning("statsd is off: cannot use %s: %s", cfg.statsd_host, exc)

    def _build_sinks(self) -> None:
        self._sinks = self._make_sinks()
        self.access_enabled = bool(self._sinks) or bool(getattr(self.cfg, "metrics_bind", None))
        #: whether ``access()`` may take long: lines handed to logging handlers (syslog, a
        #: ``logconfig``'s), or a subclass's own method (our writers buffer, StatsD's UDP
        #: send does not wait)
        self.access_may_block = self._forward or type(self).access is not Logger.access
        if type(self).access is Logger.access:
            # Per request, the handler's ``log.access(...)`` then runs the sink itself, or
            # one fan-out frame: a subclass that overrides ``access`` keeps its method.
            self.access = _fan_out(self._sinks)  # type: ignore[method-assign, assignment]

    def _make_sinks(self) -> tuple[Sink, ...]:
        formatter, writer = self._formatter, self._writer
        metrics = self.metrics if getattr(self.cfg, "metrics_bind", None) else None
        statsd = self.statsd.sink() if self.statsd is not None else None
        direct = formatter is not None and writer is not None and not self._forward
        if direct and _is_text_formatter(formatter):
            # The usual case: the formatter compiles the line, its write, StatsD's call and
            # the metrics' stores into one function (one frame per request).
            inline = metrics.record_source() if metrics is not None else None
            return (formatter.sink(writer, statsd, inline),)
        sinks: list[Sink] = []
        if statsd is not None:
            sinks.append(statsd)
        if metrics is not None:
            sinks.append(metrics.sink())
        if direct:  # JSON: the writer's sink calls the others (no fan-out frame)
            then = _fan_out(tuple(sinks)) if sinks else None
            return (writer.sink(formatter.format_bytes, then),)  # type: ignore[union-attr]
        if formatter is not None and (writer is not None or self._forward):
            sinks.insert(0, self._access_line)
        return tuple(sinks)

    def bind_worker(self, worker: Any) -> None:
        """In a worker, after the fork: per-process state and the worker's metrics region."""
        self.clock.pid = os.getpid()
        if self._request_ids is not None:
            self._request_ids.after_fork()
        if self.statsd is not None:
            self.statsd.after_fork()
        self.metrics = getattr(worker, "metrics", None)
        self._build_sinks()

    @property
    def buffered(self) -> bool:
        """Whether something waits in a buffer (``flush_if_due`` must be called)."""
        return self._writer is not None or self.statsd is not None

    def _capture_output(self) -> None:
        """With ``capture_output`` and an error log file, send the app's prints (fd 1 and 2)
        to that file (again after a reopen: the file may be a new one)."""
        cfg = self.cfg
        if not getattr(cfg, "capture_output", False) or getattr(cfg, "errorlog", "-") == "-":
            return
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
        if self._writer is not None:
            self._writer.reopen()
        self._capture_output()

    def close_on_exec(self) -> None:
        """Log files must not leak into a re-exec'd master (it opens its own)."""
        for logger in (self.error_log, self.access_log):
            for handler in logger.handlers:
                stream = getattr(handler, "stream", None)
                if isinstance(handler, logging.FileHandler) and stream is not None:
                    os.set_inheritable(stream.fileno(), False)
        if self._writer is not None and self._writer.is_file:
            os.set_inheritable(self._writer.fileno(), False)

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

    def flush_if_due(self) -> None:
        if self._writer is not None:
            self._writer.flush_if_due()
        if self.statsd is not None:
            self.statsd.flush_if_due()

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()
        if self.statsd is not None:
            self.statsd.flush()

    def close(self) -> None:
        """Flush and close the access writer and StatsD (``setup`` builds new ones)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self.statsd is not None:
            self.statsd.close()
            self.statsd = None
        self._formatter = None
        self._sinks = ()

    # --- the error log ------------------------------------------------------------------

    def _emit(self, level: int, msg: str, args: tuple[Any, ...], kwargs: dict[str, Any],
              counter: str | None = None) -> None:  # fmt: skip
        statsd = self.statsd
        if statsd is not None:
            if counter is not None:
                statsd.increment(counter)
            extra = kwargs.get("extra")
            if extra and _send_custom_metric(statsd, extra) and not msg:
                return  # a metric only: nothing to log (Gunicorn's convention)
        self.error_log.log(level, msg, *args, **kwargs)

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._emit(logging.DEBUG, msg, args, kwargs)

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._emit(logging.INFO, msg, args, kwargs)

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._emit(logging.WARNING, msg, args, kwargs, "forkhorn.log.warning")

    def error(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._emit(logging.ERROR, msg, args, kwargs, "forkhorn.log.error")

    def critical(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._emit(logging.CRITICAL, msg, args, kwargs, "forkhorn.log.critical")

    def exception(self, msg: str, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("exc_info", True)
        self._emit(logging.ERROR, msg, args, kwargs, "forkhorn.log.exception")

    def log(self, level: int | str, msg: str, *args: Any, **kwargs: Any) -> None:
        if isinstance(level, str):
            level = LEVELS.get(level.lower(), logging.INFO)
        self._emit(level, msg, args, kwargs, _STATSD_LEVEL_COUNTERS.get(level))

    # --- the access log and the per-request sinks ----------------------------------------

    def access(
        self,
        environ: dict[str, Any],
        status: str,
        response_headers: list[tuple[str, str]],
        sent_bytes: int,
        request_time: float,
    ) -> None:
        """Run every sink that is on. (Unless a subclass overrides this method, ``setup``
        rebinds ``self.access`` to the sink itself, or to one fan-out function, so the
        handler's call costs no extra frame.)"""
        for sink in self._sinks:
            sink(environ, status, response_headers, sent_bytes, request_time)

    def _access_line(self, environ: dict[str, Any], status: str,
                     headers: list[tuple[str, str]], sent: int, took: float) -> None:  # fmt: skip
        line = self._formatter.format(environ, status, headers, sent, took)  # type: ignore[union-attr]
        if self._writer is not None:
            self._writer.write(line)
        if self._forward:
            self.access_log.info(line)


def _is_text_formatter(formatter: Any) -> TypeGuard[AccessFormatter]:
    # forkhorn.logging.access is imported only once an access formatter exists
    from forkhorn.logging.access import AccessFormatter

    return isinstance(formatter, AccessFormatter)


def _fan_out(sinks: tuple[Sink, ...]) -> Sink:
    if len(sinks) == 1:
        return sinks[0]
    if len(sinks) == 2:
        first, second = sinks

        def both(environ: dict[str, Any], status: str, headers: list[tuple[str, str]],
                 sent: int, took: float) -> None:  # fmt: skip
            first(environ, status, headers, sent, took)
            second(environ, status, headers, sent, took)

        return both

    def every(environ: dict[str, Any], status: str, headers: list[tuple[str, str]],
              sent: int, took: float) -> None:  # fmt: skip
        for sink in sinks:
            sink(environ, status, headers, sent, took)

    return every


def _send_custom_metric(statsd: Any, extra: dict[str, Any]) -> bool:
    """Gunicorn's ``extra={"metric": name, "value": v, "mtype": "gauge|counter|histogram"}``."""
    metric, value, kind = extra.get("metric"), extra.get("value"), extra.get("mtype")
    if not (metric and value is not None and kind in _METRIC_TYPES):
        return False
    if kind == "gauge":
        statsd.gauge(metric, value)
    elif kind == "counter":
        statsd.increment(metric, value)
    else:
        statsd.histogram(metric, value)
    return True


def _target_handler(target: str, stream: Any) -> logging.Handler:
    if target == "-":
        return logging.StreamHandler(stream)
    return logging.FileHandler(target, mode="a", encoding="utf-8")


def _replace_handlers(logger: logging.Logger, handlers: list[logging.Handler]) -> None:
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    for handler in handlers:
        logger.addHandler(handler)
