"""Builds the run's pluggy ``PluginManager``: built-ins, entry points, config-file hooks."""

from __future__ import annotations

from typing import Any

import pluggy

from forkhorn.plugins import hookspec

PROJECT = "forkhorn"
ENTRY_POINT_GROUP = "forkhorn.plugins"


def build_plugin_manager(*, autoload: bool = True, blocked: tuple[str, ...] = ()) -> pluggy.PluginManager:
    """A fresh manager per run: nothing is built at import time."""
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspec)
    for name in blocked:
        pm.set_blocked(name)
    from forkhorn.workers import builtin

    pm.register(builtin, name="builtin")
    if autoload:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    return pm


def hook_or_none(pm: pluggy.PluginManager, name: str) -> Any:
    """The hook caller for ``name`` if anything implements it, else None.

    Per-request hooks are looked up once per worker through this, so a request pays
    nothing for a hook nobody implements.
    """
    caller = getattr(pm.hook, name)
    return caller if caller.get_hookimpls() else None
