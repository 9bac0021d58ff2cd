"""``make_logger(cfg)``: the ``logger_class`` setting turned into a logger instance.

``logger_class`` is a class, or its path written ``pkg.module.Class`` (Gunicorn's way) or
``pkg.module:Class``; ``simple`` and Gunicorn's own names (``gunicorn.glogging.Logger``,
``gunicorn.instrument.statsd.Statsd``) mean the built-in ``Logger``, which already does
what Gunicorn's statsd logger does. The class is instantiated with ``cfg``; it should
subclass ``forkhorn.logging.Logger`` (the handler calls ``access(environ, status,
headers, sent, request_time)``, not Gunicorn's ``access(resp, req, environ, time)``).

Invariant: a name that cannot be imported raises ``LoggerClassError`` naming the setting
and chained to the import error, never a bare ``AttributeError``.
"""

from __future__ import annotations

from typing import Any

from forkhorn.config.imports import ObjectImportError, ObjectPathError, import_object
from forkhorn.logging.logger import Logger

BUILT_IN_NAMES = frozenset(
    {
        "simple",
        "forkhorn.logging.Logger",
        "forkhorn.logging.logger.Logger",
        "gunicorn.glogging.Logger",
        "gunicorn.instrument.statsd.Statsd",
    }
)


class LoggerClassError(Exception):
    """``logger_class`` names something that is not an importable class."""


def load_logger_class(value: Any) -> type[Logger]:
    if value is None or isinstance(value, type):
        return value or Logger
    name = str(value).strip()
    if not name or name in BUILT_IN_NAMES:
        return Logger
    try:
        cls = import_object(name)
    except ObjectPathError:
        raise LoggerClassError(f"logger_class {name!r}: expected pkg.module.Class") from None
    except ObjectImportError as exc:
        raise LoggerClassError(f"logger_class {name!r}: {exc}") from exc.__cause__
    if not isinstance(cls, type):
        raise LoggerClassError(f"logger_class {name!r}: {name} is not a class")
    return cls


def make_logger(cfg: Any) -> Logger:
    return load_logger_class(getattr(cfg, "logger_class", None))(cfg)
