"""The worker registry: who registered what, conflicts, and ``-k`` resolution."""

from __future__ import annotations

import sys
from collections import OrderedDict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from forkhorn.plugins.hookspec import hookimpl
from forkhorn.plugins.manager import build_plugin_manager
from forkhorn.plugins.registry import (
    Origin,
    UnknownWorkerError,
    WorkerImportError,
    WorkerNameConflict,
    WorkerRegistry,
    collect_workers,
)


def fake_plugin(**workers: str) -> SimpleNamespace:
    """A plugin object registering ``name -> target`` pairs."""

    @hookimpl
    def forkhorn_register_workers(registry: Any) -> None:
        for name, target in workers.items():
            registry.add(name, target, f"the {name} worker")

    return SimpleNamespace(forkhorn_register_workers=forkhorn_register_workers)


def registry_with(**plugins: tuple[tuple[str, str], dict[str, str]]) -> WorkerRegistry:
    pm = build_plugin_manager(autoload=False)
    for plugin_name, (dist, workers) in plugins.items():
        pm.register_from(fake_plugin(**workers), plugin_name, dist)
    return collect_workers(pm)


def test_builtins_are_registered_by_forkhorn() -> None:
    registry = collect_workers(build_plugin_manager(autoload=False))
    assert registry.names() == ["gthread", "sync"]
    sync = registry.get("sync")
    assert sync is not None and sync.origin.distribution == "forkhorn"
    assert sync.target == "forkhorn.workers.sync:SyncWorker"


def test_each_plugin_is_stamped_with_its_distribution() -> None:
    registry = registry_with(acme=(("acme-workers", "2.1"), {"acme": "collections:OrderedDict"}))
    entry = registry.get("acme")
    assert entry is not None
    assert entry.origin == Origin("acme-workers", "2.1", "acme")
    assert entry.summary == "the acme worker"


def test_two_distributions_claiming_one_name_are_both_named() -> None:
    with pytest.raises(WorkerNameConflict) as info:
        registry_with(
            one=(("dist-one", "1.0"), {"turbo": "a:B"}),
            two=(("dist-two", "2.0"), {"turbo": "c:D"}),
        )
    message = str(info.value)
    assert "'turbo'" in message and "dist-one 1.0" in message and "dist-two 2.0" in message
    assert "-p no:" in message


def test_a_plugin_cannot_take_a_builtin_name() -> None:
    with pytest.raises(WorkerNameConflict, match=r"forkhorn 0\.1\.0"):
        registry_with(rogue=(("rogue", "0.1"), {"sync": "a:B"}))


def test_blocking_one_plugin_resolves_a_conflict() -> None:
    pm = build_plugin_manager(autoload=False, blocked=["two"])
    pm.register_from(fake_plugin(turbo="a:B"), "one", ("dist-one", "1.0"))
    pm.register_from(fake_plugin(turbo="c:D"), "two", ("dist-two", "2.0"))
    assert "turbo" in collect_workers(pm).names()


def test_registered_name_resolves_lazily_to_its_class() -> None:
    registry = registry_with(acme=(("acme", "1"), {"acme": "collections:OrderedDict"}))
    assert registry.resolve("acme") is OrderedDict


@pytest.mark.parametrize("spec", ["collections:OrderedDict", "collections.OrderedDict"])
def test_dotted_paths_are_imported_directly(spec: str) -> None:
    assert WorkerRegistry().resolve(spec) is OrderedDict


def test_a_class_is_returned_as_is() -> None:
    assert WorkerRegistry().resolve(OrderedDict) is OrderedDict


def test_egg_form_checks_the_distribution() -> None:
    registry = registry_with(acme=(("acme-workers", "1"), {"acme": "collections:OrderedDict"}))
    assert registry.resolve("egg:acme_workers#acme") is OrderedDict
    assert registry.resolve("egg:gunicorn#acme") is OrderedDict
    with pytest.raises(UnknownWorkerError, match="provided by acme-workers 1, not by 'other'"):
        registry.resolve("egg:other#acme")
    with pytest.raises(UnknownWorkerError, match="egg:DISTRIBUTION#NAME"):
        registry.resolve("egg:acme-workers")


def test_gunicorn_class_paths_map_to_forkhorn_workers() -> None:
    registry = registry_with(fake=(("fake", "1"), {"gevent": "collections:OrderedDict"}))
    assert registry.resolve("gunicorn.workers.ggevent.GeventWorker") is OrderedDict


def test_gunicorns_tornado_worker_is_named_as_having_no_counterpart() -> None:
    registry = collect_workers(build_plugin_manager(autoload=False))
    with pytest.raises(UnknownWorkerError) as info:
        registry.resolve("tornado")
    assert "Gunicorn's tornado worker has no forkhorn counterpart" in str(info.value)


def test_unknown_name_lists_known_names_and_the_closest() -> None:
    registry = collect_workers(build_plugin_manager(autoload=False))
    with pytest.raises(UnknownWorkerError) as info:
        registry.resolve("gthraed")
    message = str(info.value)
    assert "unknown worker class 'gthraed'; known: gthread, sync" in message
    assert "Did you mean 'gthread'?" in message


@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("gevent", "gevent"),
        ("eventlet", "eventlet"),
        # Gunicorn's names (and class path) for its pywsgi gevent worker
        ("gevent_pywsgi", "gevent"),
        ("gevent_wsgi", "gevent"),
        ("gunicorn.workers.ggevent.GeventPyWSGIWorker", "gevent"),
    ],
)
def test_unknown_optional_worker_names_the_pip_line(name: str, extra: str) -> None:
    registry = collect_workers(build_plugin_manager(autoload=False))
    with pytest.raises(UnknownWorkerError) as info:
        registry.resolve(name)
    assert f"pip install 'forkhorn[{extra}]'" in str(info.value)


def test_failing_import_names_distribution_version_and_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken_worker_mod.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = registry_with(
        broken=(("broken-dist", "3.2.1"), {"broken": "broken_worker_mod:Worker"})
    )
    try:
        with pytest.raises(WorkerImportError) as info:
            registry.resolve("broken")
    finally:
        sys.modules.pop("broken_worker_mod", None)
    message = str(info.value)
    assert "worker 'broken' from broken-dist 3.2.1" in message
    assert "import of 'broken_worker_mod' failed" in message
    assert "no_such_dependency_xyz" in message
    assert isinstance(info.value.__cause__, ModuleNotFoundError)


@pytest.mark.parametrize(
    ("error", "hint"),
    [
        (ModuleNotFoundError("No module named 'gevent'", name="gevent"), True),
        (ModuleNotFoundError("No module named 'eventlet.hubs.nosuch'",
                             name="eventlet.hubs.nosuch"), False),  # EVENTLET_HUB=nosuch
        (ValueError("Invalid backend"), False),
    ],
)  # fmt: skip
def test_a_failing_optional_worker_is_to_be_reinstalled_only_when_a_package_is_gone(
    error: Exception, hint: bool
) -> None:
    registry = registry_with(
        gevent_dist=(("forkhorn-gevent", "0.1.0"), {"gevent": "m:GeventWorker"})
    )
    worker_class = type("GeventWorker", (), {"__module__": "m"})
    message = str(registry.describe_failure(worker_class, "patch_master", error))
    assert message.startswith("worker 'gevent' from forkhorn-gevent 0.1.0: patch_master failed")
    assert str(error) in message
    assert ("pip install 'forkhorn[gevent]'" in message) is hint


def test_missing_class_and_non_class_targets() -> None:
    with pytest.raises(WorkerImportError, match="has no attribute 'Nope'"):
        WorkerRegistry().resolve("collections:Nope")
    with pytest.raises(WorkerImportError, match="is not a class"):
        WorkerRegistry().resolve("os:getpid")


def test_targets_must_be_module_colon_class() -> None:
    with pytest.raises(Exception, match="module:Class"):
        registry_with(bad=(("bad", "1"), {"bad": "not-a-target"}))


@pytest.mark.parametrize("gunicorn_installed", [False, True])
def test_a_class_built_on_gunicorns_worker_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gunicorn_installed: bool
) -> None:
    # uvicorn's UvicornWorker and gevent-websocket's worker subclass Gunicorn's classes
    (tmp_path / "third_party_worker.py").write_text(
        "from gunicorn.workers.base import Worker\n\nclass ThirdWorker(Worker):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    if gunicorn_installed:  # a stand-in package of that name, with the base class
        base = tmp_path / "gunicorn" / "workers"
        base.mkdir(parents=True)
        (base.parent / "__init__.py").write_text("")
        (base / "__init__.py").write_text("")
        (base / "base.py").write_text("class Worker:\n    pass\n")
        for name in [m for m in sys.modules if m.split(".")[0] == "gunicorn"]:
            monkeypatch.delitem(sys.modules, name)
    else:
        monkeypatch.setitem(sys.modules, "gunicorn", None)  # absent, even if installed
    registry = collect_workers(build_plugin_manager(autoload=False))
    before = set(sys.modules)
    try:
        with pytest.raises(WorkerImportError) as info:
            registry.resolve("third_party_worker.ThirdWorker")
    finally:  # the stand-ins must not outlive the test
        for name in set(sys.modules) - before:
            del sys.modules[name]
    message = str(info.value)
    assert "built on Gunicorn's own worker classes" in message
    assert "forkhorn --list-workers" in message
