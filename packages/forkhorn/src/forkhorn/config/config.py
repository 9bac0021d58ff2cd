"""``Config``: the effective settings of one run, with where each value came from.

Values are read as attributes (``cfg.workers``). ``set`` validates through the setting's
validator; a bad value raises ``ConfigError`` whose message is the one line the user sees.
"""

from __future__ import annotations

from typing import Any

from forkhorn.config.settings import BY_NAME


class ConfigError(Exception):
    """A setting got a value it cannot take. The message names the setting and what is accepted."""


class Config:
    def __init__(self) -> None:
        self._values: dict[str, Any] = {}
        self._sources: dict[str, str] = {}
        for setting in BY_NAME.values():
            self._values[setting.name] = setting.validator(setting.default)
            self._sources[setting.name] = "default"

    def set(self, name: str, value: Any, source: str = "api") -> None:
        setting = BY_NAME.get(name)
        if setting is None:
            raise ConfigError(f"unknown setting {name!r}")
        try:
            self._values[name] = setting.validator(value)
        except (ValueError, TypeError) as exc:
            where = f" (from {source})" if source not in ("api", "default") else ""
            raise ConfigError(f"invalid value for {name}{where}: {exc}") from None
        self._sources[name] = source

    def source(self, name: str) -> str:
        return self._sources[name]

    def items(self) -> list[tuple[str, Any]]:
        return sorted(self._values.items())

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(name) from None
