"""The application the arbiter serves: effective config, plugin hooks, and the WSGI app loader."""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable

import pluggy

from forkhorn.config import Config


class AppImportError(Exception):
    """The WSGI app could not be loaded; the message names the cause."""


def import_app(app_uri: str) -> Callable[..., Any]:
    """Load ``module:variable`` (``application`` when no variable is given)."""
    module_name, _, variable = app_uri.partition(":")
    variable = variable or "application"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise AppImportError(f"No module named {module_name!r}") from None
        raise
    try:
        app = getattr(module, variable)
    except AttributeError:
        raise AppImportError(f"Failed to find attribute {variable!r} in {module_name!r}.") from None
    if not callable(app):
        raise AppImportError(f"Application object {app_uri!r} must be callable.")
    return app


class WSGIApplication:
    def __init__(self, cfg: Config, plugin_manager: pluggy.PluginManager, app_uri: str | None) -> None:
        self.cfg = cfg
        self.plugin_manager = plugin_manager
        self.hook = plugin_manager.hook
        self.app_uri = app_uri
        self._wsgi: Callable[..., Any] | None = None

    def wsgi(self) -> Callable[..., Any]:
        """The WSGI callable, imported on first use (in the master when preloading)."""
        if self._wsgi is None:
            if self.app_uri is None:
                raise AppImportError("No application module specified.")
            if "" not in sys.path and "." not in sys.path:
                sys.path.insert(0, "")
            self._wsgi = import_app(self.app_uri)
        return self._wsgi

    def reload(self) -> None:
        """Re-read the configuration (SIGHUP). Filled in by the config loader."""
        self._wsgi = None
