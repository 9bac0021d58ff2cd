"""stdlib ``logging`` set-up for the error log, syslog and the ``logconfig*`` settings.

Gunicorn's meaning throughout:

* ``syslog = True`` adds a ``SysLogHandler`` to the error log (and to the access log unless
  ``disable_redirect_access_to_syslog``) beside the file/stream handlers. ``syslog_addr``:
  ``unix://PATH[#dgram|#stream]`` (no type: the handler tries both), ``udp://HOST:PORT``,
  ``tcp://HOST:PORT`` (port 514 when omitted). Lines read
  ``forkhorn.<syslog_prefix or proc_name>.<error|access>: [pid] message``.
* ``logconfig_dict`` (a ``dictConfig`` dict), else ``logconfig_json`` (a JSON file holding
  one), else ``logconfig`` (a ``fileConfig`` ini file) replace the built-in handlers: the
  given config is laid over ``config_defaults()`` (``merged_config``: the named sections
  merge entry by entry, so a config that defines its own handlers but no ``root`` still
  loads, where Gunicorn's shallow merge fails) and existing loggers are kept. Configs written for Gunicorn name the
  ``gunicorn.error``/``gunicorn.access`` loggers: ``logger_names`` then picks those.
"""

from __future__ import annotations

# json stays a master import (it is cheap): a worker that dropped privileges (-u/-g) may
# not be able to read the stdlib when the app imports it, and Gunicorn's master has it too.
import json
import logging
import os
import socket
from typing import Any

ERROR_FORMAT = "%(asctime)s [%(process)d] [%(levelname)s] %(message)s"
DATE_FORMAT = "[%Y-%m-%d %H:%M:%S %z]"
SYSLOG_FORMAT = "[%(process)d] %(message)s"


class LogConfigError(Exception):
    """A ``logconfig*`` setting or the syslog settings cannot be applied (the message says)."""


def config_defaults() -> dict[str, Any]:
    """What a ``logconfig_dict``/``logconfig_json`` is laid over (Gunicorn's defaults)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "root": {"level": "INFO", "handlers": ["console"]},
        "loggers": {
            "forkhorn.error": {
                "level": "INFO",
                "handlers": ["error_console"],
                "propagate": False,
                "qualname": "forkhorn.error",
            },
            "forkhorn.access": {
                "level": "INFO",
                "handlers": ["console"],
                "propagate": False,
                "qualname": "forkhorn.access",
            },
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "generic",
                "stream": "ext://sys.stdout",
            },
            "error_console": {
                "class": "logging.StreamHandler",
                "formatter": "generic",
                "stream": "ext://sys.stderr",
            },
        },
        "formatters": {
            "generic": {
                "format": ERROR_FORMAT,
                "datefmt": DATE_FORMAT,
                "class": "logging.Formatter",
            },
        },
    }


def uses_logconfig(cfg: Any) -> bool:
    return bool(
        getattr(cfg, "logconfig_dict", None)
        or getattr(cfg, "logconfig_json", None)
        or getattr(cfg, "logconfig", None)
    )


def apply_logconfig(cfg: Any) -> None:
    """Apply the first of ``logconfig_dict``, ``logconfig_json``, ``logconfig`` that is set."""
    if getattr(cfg, "logconfig_dict", None):
        _dict_config(dict(cfg.logconfig_dict), "logconfig_dict")
    elif getattr(cfg, "logconfig_json", None):
        path = cfg.logconfig_json
        try:
            with open(path, encoding="utf-8") as handle:
                given = json.load(handle)
        except (OSError, ValueError) as exc:
            raise LogConfigError(f"cannot read logconfig_json {path!r}: {exc}") from None
        if not isinstance(given, dict):
            raise LogConfigError(f"logconfig_json {path!r} must hold a JSON object")
        _dict_config(given, f"logconfig_json {path!r}")
    elif getattr(cfg, "logconfig", None):
        path = cfg.logconfig
        if not os.path.exists(path):
            raise LogConfigError(f"logconfig file {path!r} not found")
        defaults = {"__file__": path, "here": os.path.dirname(os.path.abspath(path))}
        import logging.config

        try:
            logging.config.fileConfig(path, defaults=defaults, disable_existing_loggers=False)
        except Exception as exc:
            raise LogConfigError(f"cannot apply logconfig file {path!r}: {exc}") from exc


def merged_config(given: dict[str, Any]) -> dict[str, Any]:
    """``given`` over ``config_defaults()``: the named sections (loggers, handlers,
    formatters, filters) merge entry by entry, other keys replace the default's. A config
    for Gunicorn's logger names keeps forkhorn's defaults away from ours."""
    config = config_defaults()
    for key, value in given.items():
        if key in ("loggers", "handlers", "formatters", "filters") and isinstance(value, dict):
            config.setdefault(key, {}).update(value)
        else:
            config[key] = value
    loggers = config["loggers"]
    for ours, theirs in (
        ("forkhorn.error", "gunicorn.error"),
        ("forkhorn.access", "gunicorn.access"),
    ):
        if theirs in given.get("loggers", {}) and ours not in given.get("loggers", {}):
            loggers.pop(ours, None)
    return config


def _dict_config(given: dict[str, Any], where: str) -> None:
    import logging.config  # only with a logconfig: it pulls in socketserver, pickle, queue

    config = merged_config(given)
    try:
        logging.config.dictConfig(config)
    except Exception as exc:
        raise LogConfigError(f"cannot apply {where}: {exc}") from exc


def logger_names(default_error: str, default_access: str) -> tuple[str, str]:
    """Our logger names, or Gunicorn's when only those were configured by a logconfig."""
    names = []
    for ours, theirs in ((default_error, "gunicorn.error"), (default_access, "gunicorn.access")):
        configured = logging.Logger.manager.loggerDict.get(theirs)
        if (isinstance(configured, logging.Logger) and configured.handlers
                and not logging.getLogger(ours).handlers):  # fmt: skip
            names.append(theirs)
        else:
            names.append(ours)
    return names[0], names[1]


def parse_syslog_address(address: str) -> tuple[int | None, str | tuple[str, int]]:
    """``(socket type or None, address)`` for ``SysLogHandler``."""
    if address.startswith("unix://"):
        path, _, kind = address[len("unix://") :].partition("#")
        types = {"": None, "dgram": socket.SOCK_DGRAM, "stream": socket.SOCK_STREAM}
        if kind not in types:
            raise LogConfigError(f"syslog_addr {address!r}: the socket type is dgram or stream")
        return types[kind], path
    scheme, _, netloc = address.partition("://")
    kinds = {"udp": socket.SOCK_DGRAM, "tcp": socket.SOCK_STREAM}
    if scheme not in kinds or not _:
        raise LogConfigError(
            f"syslog_addr {address!r}: expected unix://PATH, udp://HOST:PORT or tcp://HOST:PORT"
        )
    if netloc.startswith("["):
        host, _, rest = netloc[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = netloc.partition(":")
    if port and not port.isdigit():
        raise LogConfigError(f"syslog_addr {address!r}: {port!r} is not a port number")
    return kinds[scheme], (host.lower() or "localhost", int(port) if port else 514)


def syslog_handler(cfg: Any, name: str, formatter: logging.Formatter | None) -> logging.Handler:
    import logging.handlers  # only with syslog on

    facilities = logging.handlers.SysLogHandler.facility_names
    facility_name = str(getattr(cfg, "syslog_facility", "user") or "user").lower()
    if facility_name not in facilities:
        raise LogConfigError(f"unknown syslog_facility {facility_name!r}")
    socktype, address = parse_syslog_address(str(cfg.syslog_addr))
    prefix = getattr(cfg, "syslog_prefix", None) or str(cfg.proc_name).replace(":", ".")
    try:
        handler = logging.handlers.SysLogHandler(
            address=address,
            facility=facilities[facility_name],
            socktype=socktype,  # type: ignore[arg-type]
        )
    except OSError as exc:
        raise LogConfigError(f"cannot reach syslog at {cfg.syslog_addr!r}: {exc}") from exc
    sock = getattr(handler, "socket", None)
    if handler.unixsocket and (sock is None or sock.fileno() < 0):  # 3.11+ hides the failure
        handler.close()
        raise LogConfigError(f"cannot reach syslog at {cfg.syslog_addr!r}")
    inner = formatter or logging.Formatter(SYSLOG_FORMAT)
    handler.setFormatter(_PrefixFormatter(f"forkhorn.{prefix}.{name}: ", inner))
    return handler


class _PrefixFormatter(logging.Formatter):
    """The syslog program prefix in front of whatever the inner formatter writes."""

    def __init__(self, prefix: str, inner: logging.Formatter) -> None:
        super().__init__()
        self.prefix = prefix
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return self.prefix + self.inner.format(record)
