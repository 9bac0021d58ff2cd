"""``Config``: the effective settings of one run, with where each value came from.

Values are read as attributes (``cfg.workers``). ``set`` validates through the setting's
validator; a bad value raises ``ConfigError`` whose message is the one line the user sees.

Invariants: every setting of the table always has a valid value (the defaults are
validated when the ``Config`` is built); a ``Config`` reads no environment variable by
itself (``apply_environment`` does, so tests and the loader decide); the source of each
value is recorded for ``--print-config``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from forkhorn.config.settings import BY_NAME

#: source names shown by --print-config (a config file's source also names the file)
DEFAULT = "default"
COMMAND_LINE = "command line"


class ConfigError(Exception):
    """A setting got a value it cannot take. The message names the setting and what is accepted."""


class Config:
    def __init__(self) -> None:
        self._values: dict[str, Any] = {}
        self._sources: dict[str, str] = {}
        for setting in BY_NAME.values():
            self._values[setting.name] = setting.validator(setting.default)
            self._sources[setting.name] = DEFAULT

    def set(self, name: str, value: Any, source: str = "api") -> None:
        setting = BY_NAME.get(name)
        if setting is None:
            raise ConfigError(f"unknown setting {name!r}")
        try:
            self._values[name] = setting.validator(value)
        except (ValueError, TypeError) as exc:
            where = f" (from {source})" if source not in ("api", DEFAULT) else ""
            raise ConfigError(f"invalid value for {name}{where}: {exc}") from None
        self._sources[name] = source

    def apply_environment(self, environ: Mapping[str, str]) -> None:
        """Gunicorn's environment defaults: ``WEB_CONCURRENCY``, ``PORT``, ...

        They replace the defaults only, so a config file or the command line still wins.
        """
        for setting in BY_NAME.values():
            if setting.env is None or setting.env not in environ:
                continue
            raw = environ[setting.env]
            value = setting.env_value(raw) if setting.env_value else raw
            self.set(setting.name, value, source=f"env {setting.env}")

    def source(self, name: str) -> str:
        return self._sources[name]

    def items(self) -> list[tuple[str, Any]]:
        return sorted(self._values.items())

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(name) from None

    # --- derived values Gunicorn's Config also offers -----------------------------------

    @property
    def proc_name(self) -> str:
        """``proc_name``, else ``default_proc_name`` (the app module when one is given)."""
        return str(self._values["proc_name"] or self._values["default_proc_name"])

    @property
    def env(self) -> dict[str, str]:
        """``raw_env`` as a dict (``KEY=VALUE`` items, validated when set)."""
        return dict(item.split("=", 1) for item in self._values["raw_env"])

    @property
    def paste_global_conf(self) -> dict[str, str]:
        """``raw_paste_global_conf`` as a dict."""
        return dict(item.split("=", 1) for item in self._values["raw_paste_global_conf"])

    @property
    def is_ssl(self) -> bool:
        return bool(self._values["certfile"])

    def check(self) -> None:
        """Rules that span settings, checked once every source is in."""
        if self._values["keyfile"] and not self._values["certfile"]:
            raise ConfigError(
                f"invalid value for keyfile (from {self._sources['keyfile']}): a keyfile needs "
                "a certfile; TLS is on only when certfile is set"
            )

    @property
    def ssl_options(self) -> dict[str, Any]:
        return {
            name: value for name, value in self._values.items() if BY_NAME[name].section == "SSL"
        }

    @property
    def worker_class_str(self) -> str:
        """The worker class as written, with Gunicorn's rule: ``sync`` + threads > 1 is gthread."""
        value = self._values["worker_class"]
        if isinstance(value, type):
            return value.__name__
        if self._values["threads"] > 1 and is_sync_spec(value):
            return "gthread"
        return str(value)


def is_sync_spec(value: str) -> bool:
    """True for the ways to say "the sync worker" (Gunicorn's rule matches ``*SyncWorker``)."""
    return value == "sync" or value.endswith("SyncWorker") or value.endswith("#sync")
