"""``import_object(path)``: the object a setting names as ``module:attr`` or ``module.attr``.

``worker_class``, ``logger_class`` and the server hooks of a config file may each be given
as a string naming an object. They share one reading of that string: with a colon, the
module is what precedes it and the attribute what follows (``pkg.mod:Outer.Inner``);
without one, the attribute is the last dotted part (Gunicorn's ``pkg.mod.Class``).

Invariant: every failure is an ``ObjectImportError`` whose message says which step failed
without naming the setting (the caller prefixes that), and which is chained to the root
cause: the module's own exception for an import that failed, the ``AttributeError`` for a
missing attribute. ``ObjectPathError``, its subclass, is a string that names no module
and attribute at all.
"""

from __future__ import annotations

import importlib
from typing import Any


class ObjectImportError(Exception):
    """The object named by a path could not be imported; ``__cause__`` says why."""


class ObjectPathError(ObjectImportError):
    """The string is neither ``module:attr`` nor a dotted ``module.attr``."""


def import_object(path: str) -> Any:
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ObjectPathError(f"{path!r} is not a 'module:name' or dotted path")
    try:
        found: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise ObjectImportError(
            f"import of {module_name!r} failed ({type(exc).__name__}: {exc})"
        ) from exc
    try:
        for part in attr.split("."):
            found = getattr(found, part)
    except AttributeError as exc:
        raise ObjectImportError(f"module {module_name!r} has no attribute {attr!r}") from exc
    return found
