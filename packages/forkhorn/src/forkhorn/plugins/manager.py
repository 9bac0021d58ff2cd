"""Builds the run's pluggy ``PluginManager``: built-ins, entry points, named plugins.

A fresh manager per run (nothing is built at import time). Order of registration:
blocked names first (so nothing registers under them), the built-in workers, then every
entry point of group ``forkhorn.plugins`` unless autoload is off, then the plugins named
with ``--plugin NAME`` / ``FORKHORN_PLUGINS`` (an entry-point name, else a module name),
which load even with autoload off, like pytest's ``-p``. Config-file hooks are added later
by ``forkhorn.config.hooks``.

Switches, from the environment and the command line:

- ``FORKHORN_DISABLE_PLUGIN_AUTOLOAD`` (non-empty): do not scan entry points.
- ``FORKHORN_DISABLE_PLUGINS=a,b`` and ``-p no:NAME`` / ``--plugin no:NAME``: block NAME.
- ``FORKHORN_PLUGINS=a,b`` and ``--plugin NAME``: load NAME.

A plugin that fails to import is reported as ``PluginLoadError`` naming the entry point,
its distribution and version, chained to the import error.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import pluggy

from forkhorn.plugins import hookspec
from forkhorn.plugins.entrypoints import entry_points

PROJECT = "forkhorn"
ENTRY_POINT_GROUP = "forkhorn.plugins"
BUILTIN_PLUGIN = "builtin"


class PluginLoadError(Exception):
    """A plugin could not be loaded; the message names it and its distribution."""


# A NamedTuple, not a dataclass: a dataclass compiles generated methods at import time.
class PluginSwitches(NamedTuple):
    autoload: bool = True
    blocked: tuple[str, ...] = ()
    load: tuple[str, ...] = ()

    @classmethod
    def from_sources(
        cls, environ: Mapping[str, str], cli_values: Iterable[str] = ()
    ) -> PluginSwitches:
        """Merge the environment with ``-p no:NAME`` / ``--plugin [no:]NAME`` values."""
        blocked: list[str] = _split(environ.get("FORKHORN_DISABLE_PLUGINS", ""))
        load: list[str] = _split(environ.get("FORKHORN_PLUGINS", ""))
        for value in cli_values:
            if value.startswith("no:"):
                blocked.append(value[3:].strip())
            else:
                load.append(value.strip())
        return cls(
            autoload=not environ.get("FORKHORN_DISABLE_PLUGIN_AUTOLOAD"),
            blocked=tuple(name for name in blocked if name),
            load=tuple(name for name in load if name and name not in blocked),
        )


class ForkhornPluginManager(pluggy.PluginManager):
    """pluggy's manager that also remembers the distribution of plugins it loaded by name."""

    def __init__(self) -> None:
        super().__init__(PROJECT)
        self._distributions: dict[int, tuple[str, str]] = {}

    def register_from(self, plugin: object, name: str, distribution: tuple[str, str]) -> None:
        """Register ``plugin`` and remember it came from ``(distribution, version)``."""
        if self.register(plugin, name=name) is not None:
            self._distributions[id(plugin)] = distribution

    def distribution_of(self, plugin: object) -> tuple[str, str] | None:
        return self._distributions.get(id(plugin))


def build_plugin_manager(
    *, autoload: bool = True, blocked: Iterable[str] = (), load: Iterable[str] = ()
) -> ForkhornPluginManager:
    """A fresh manager per run: nothing is built at import time."""
    pm = ForkhornPluginManager()
    pm.add_hookspecs(hookspec)
    for name in blocked:
        pm.set_blocked(name)
    from forkhorn.workers import builtin

    pm.register(builtin, name=BUILTIN_PLUGIN)
    if autoload:
        _load_entry_points(pm, name=None)
    for name in load:
        already = pm.get_plugin(name) is not None or pm.is_blocked(name)
        if not already and not _load_entry_points(pm, name=name):
            _load_module(pm, name)
    return pm


def build_from_switches(switches: PluginSwitches) -> ForkhornPluginManager:
    return build_plugin_manager(
        autoload=switches.autoload, blocked=switches.blocked, load=switches.load
    )


def hook_or_none(pm: pluggy.PluginManager, name: str) -> Any:
    """The hook caller for ``name`` if anything implements it, else None.

    Per-request hooks are looked up once per worker through this, so a request pays
    nothing for a hook nobody implements.
    """
    caller = getattr(pm.hook, name)
    return caller if caller.get_hookimpls() else None


def _load_entry_points(pm: ForkhornPluginManager, name: str | None) -> int:
    """Load the entry points of the group (only ``name``'s, if given), like pluggy's
    ``load_setuptools_entrypoints`` but through the cheap scan of ``entrypoints``."""
    count = 0
    for ep in entry_points(ENTRY_POINT_GROUP, name):
        if pm.has_plugin(ep.name) or pm.is_blocked(ep.name):
            continue
        try:
            pm.register_from(ep.load(), ep.name, (ep.distribution, ep.version))
        except Exception as exc:
            raise PluginLoadError(
                f"plugin {ep.name!r} ({ep.value}) from {ep.distribution} {ep.version} failed "
                f"to load: {type(exc).__name__}: {exc}; block it with -p no:{ep.name} or "
                f"FORKHORN_DISABLE_PLUGINS={ep.name}"
            ) from exc
        count += 1
    return count


def _load_module(pm: ForkhornPluginManager, name: str) -> None:
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            raise PluginLoadError(
                f"plugin {name!r}: no entry point of group {ENTRY_POINT_GROUP!r} and no "
                f"module by that name"
            ) from exc
        raise PluginLoadError(f"plugin module {name!r} failed to import: {exc}") from exc
    except Exception as exc:
        raise PluginLoadError(
            f"plugin module {name!r} failed to import: {type(exc).__name__}: {exc}"
        ) from exc
    pm.register_from(module, name, (name, ""))


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]
