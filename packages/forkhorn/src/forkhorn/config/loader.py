"""Loading a run's configuration: defaults < config file < ``FORKHORN_CMD_ARGS`` < argv.

``GUNICORN_CMD_ARGS`` takes the place of ``FORKHORN_CMD_ARGS`` when only it is set
(``forkhorn.cli.cmd_args_variable``).

Gunicorn's environment variables (``WEB_CONCURRENCY``, ``PORT``, ``FORWARDED_ALLOW_IPS``,
``SENDFILE``) replace the defaults, so they rank lowest but above the built-in default.

The config file is Python (``PATH``, ``file:PATH`` or ``python:MODULE``). Its module
globals named like settings are settings; functions named like server hooks become pluggy
implementations (``forkhorn.config.hooks``); other names (imports, helpers) are ignored as
Gunicorn does; Gunicorn settings forkhorn does not implement are reported as warnings.
Without ``-c``, ``./forkhorn.conf.py`` is read if it exists, else ``./gunicorn.conf.py``.

``scan_literals`` reads a config file with ``ast`` without running it: the bootstrap needs
``worker_class`` and ``preload_app`` before anything heavy is imported. Only literal
assignments are seen there; a computed value is seen once the file runs.

Invariants: a config file that raises surfaces as ``ConfigFileError`` carrying the user's
exception (printed with its traceback: it is the user's code); a bad value surfaces as
``ConfigError`` naming the setting and the file; nothing here touches logging or ssl.
"""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from forkhorn.config.config import Config, ConfigError
from forkhorn.config.hooks import collect_hooks
from forkhorn.config.settings import BY_NAME, GUNICORN_ONLY

DEFAULT_CONFIG_FILES = ("forkhorn.conf.py", "gunicorn.conf.py")
MODULE_NAME = "__config__"


class ConfigFileError(Exception):
    """The config file could not be read or raised; ``__cause__`` is the user's exception."""

    def __init__(self, location: str) -> None:
        super().__init__(f"Failed to read config file: {location}")
        self.location = location


class LoadedConfig:
    # A plain class, not a dataclass: a dataclass compiles generated methods at import time.
    def __init__(self, cfg: Config, location: str | None = None) -> None:
        self.cfg = cfg
        #: server hooks defined by the config file, adapted to the hookspec's arity
        self.hooks: dict[str, Callable[..., Any]] = {}
        #: the config file used (None: none)
        self.location = location
        #: Gunicorn settings the config file set that forkhorn does not implement
        self.unsupported: list[str] = []


def locate_config(explicit: str | None, cwd: str | None = None) -> str | None:
    """The config file location to use: ``-c`` if given, else a default file if present."""
    if explicit:
        return explicit
    base = cwd or os.getcwd()
    for name in DEFAULT_CONFIG_FILES:
        path = os.path.join(base, name)
        if os.path.isfile(path):
            return path
    return None


def config_file_path(location: str) -> str | None:
    """The file behind a location (None for ``python:MODULE``)."""
    if location.startswith("python:"):
        return None
    return location[len("file:") :] if location.startswith("file:") else location


def scan_literals(location: str | None, names: Sequence[str]) -> dict[str, Any]:
    """Literal top-level assignments of ``names`` in the config file, without running it.

    The last literal assignment wins, as it would when the file runs. A ``python:MODULE``
    location is not scanned (finding it could import the user's packages), nor is a file
    that cannot be read or parsed (running it will report that properly).
    """
    path = config_file_path(location) if location else None
    if path is None:
        return {}
    try:
        with open(path, "rb") as file:
            tree = ast.parse(file.read(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return {}
    found: dict[str, Any] = {}
    for node in tree.body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        for target in targets:
            if isinstance(target, ast.Name) and target.id in names and value is not None:
                try:
                    found[target.id] = ast.literal_eval(value)
                except ValueError:
                    found.pop(target.id, None)  # computed: only known after the file runs
    return found


def read_config_file(location: str) -> dict[str, Any]:
    """Run the config file and return its globals. Raises ``ConfigFileError``."""
    if location.startswith("python:"):
        try:
            return vars(importlib.import_module(location[len("python:") :]))
        except Exception as exc:
            raise ConfigFileError(location) from exc
    path = config_file_path(location) or location
    if not os.path.exists(path):
        raise ConfigError(f"invalid value for config: {path!r} does not exist")
    if os.path.isdir(path):
        raise ConfigError(f"invalid value for config: {path!r} is a directory, not a file")
    try:
        if path.endswith((".py", ".pyc")):
            spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
        else:
            loader = importlib.machinery.SourceFileLoader(MODULE_NAME, path)
            spec = importlib.util.spec_from_file_location(MODULE_NAME, path, loader=loader)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[MODULE_NAME] = module
        spec.loader.exec_module(module)
    except Exception as exc:
        raise ConfigFileError(location) from exc
    return vars(module)


def load_config(
    location: str | None,
    overrides: Sequence[tuple[str, Mapping[str, Any]]],
    environ: Mapping[str, str],
) -> LoadedConfig:
    """Build the effective ``Config``: defaults, environment defaults, the config file, then
    each ``(source, {setting: raw value})`` of ``overrides`` in order (lowest first)."""
    cfg = Config()
    cfg.apply_environment(environ)
    loaded = LoadedConfig(cfg, location=location)
    if location is not None:
        source = f"config file {location}"
        namespace = read_config_file(location)
        for name, value in namespace.items():
            if name in BY_NAME and name != "config":
                cfg.set(name, value, source=source)
            elif name in GUNICORN_ONLY:
                loaded.unsupported.append(name)
        loaded.hooks = collect_hooks(namespace, source)
        # -c shows up below as an override; a file found by default keeps this source
        cfg.set("config", location, source="found in the current directory")
    for source, values in overrides:
        for name, value in values.items():
            cfg.set(name, value, source=source)
    cfg.check()
    return loaded
