"""The plugin manager: a fresh one per run, switches from env and CLI, named plugins."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from forkhorn.plugins.manager import (
    BUILTIN_PLUGIN,
    PluginLoadError,
    PluginSwitches,
    build_plugin_manager,
    hook_or_none,
)
from forkhorn.plugins.registry import collect_workers


def test_a_fresh_manager_per_call() -> None:
    assert build_plugin_manager(autoload=False) is not build_plugin_manager(autoload=False)


def test_builtin_workers_register_through_the_hook() -> None:
    pm = build_plugin_manager(autoload=False)
    assert pm.get_plugin(BUILTIN_PLUGIN) is not None
    assert pm.hook.forkhorn_register_workers.get_hookimpls()


def test_switches_from_environment_and_command_line() -> None:
    switches = PluginSwitches.from_sources(
        {
            "FORKHORN_DISABLE_PLUGIN_AUTOLOAD": "1",
            "FORKHORN_DISABLE_PLUGINS": "a, b",
            "FORKHORN_PLUGINS": "c,d",
        },
        ["no:e", "f", "no:d"],
    )
    assert switches.autoload is False
    assert switches.blocked == ("a", "b", "e", "d")
    assert switches.load == ("c", "f")


def test_autoload_is_on_unless_the_variable_is_non_empty() -> None:
    assert PluginSwitches.from_sources({}).autoload is True
    assert PluginSwitches.from_sources({"FORKHORN_DISABLE_PLUGIN_AUTOLOAD": ""}).autoload is True


def test_blocking_the_builtin_plugin() -> None:
    pm = build_plugin_manager(autoload=False, blocked=[BUILTIN_PLUGIN])
    assert collect_workers(pm).names() == []


def test_named_module_plugin_loads_with_autoload_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_forkhorn_plugin.py").write_text(
        "from forkhorn.plugins.hookspec import hookimpl\n"
        "@hookimpl\n"
        "def forkhorn_register_workers(registry):\n"
        "    registry.add('mine', 'collections:OrderedDict', 'mine')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        pm = build_plugin_manager(autoload=False, load=["my_forkhorn_plugin"])
        registry = collect_workers(pm)
    finally:
        sys.modules.pop("my_forkhorn_plugin", None)
    entry = registry.get("mine")
    assert entry is not None and entry.origin.plugin == "my_forkhorn_plugin"


def test_named_plugin_that_does_not_exist() -> None:
    with pytest.raises(PluginLoadError, match=r"no entry point .* and no module"):
        build_plugin_manager(autoload=False, load=["no_such_forkhorn_plugin_xyz"])


def test_named_plugin_that_fails_to_import_is_chained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "bad_forkhorn_plugin.py").write_text("raise RuntimeError('plugin bug')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(PluginLoadError, match="plugin bug") as info:
            build_plugin_manager(autoload=False, load=["bad_forkhorn_plugin"])
    finally:
        sys.modules.pop("bad_forkhorn_plugin", None)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_hook_or_none_costs_nothing_when_unimplemented() -> None:
    pm = build_plugin_manager(autoload=False)
    assert hook_or_none(pm, "forkhorn_pre_request") is None
    assert hook_or_none(pm, "forkhorn_register_workers") is not None
