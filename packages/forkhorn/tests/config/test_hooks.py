"""Config-file hooks become pluggy implementations called with Gunicorn's positional args."""

from __future__ import annotations

from typing import Any

import pytest
from forkhorn.config import ConfigError
from forkhorn.config.hooks import collect_hooks, hook_names, register_hooks
from forkhorn.plugins.manager import build_plugin_manager


def test_hook_functions_are_called_positionally_whatever_their_parameter_names() -> None:
    calls: list[tuple[Any, ...]] = []

    def post_fork(arbiter: Any, w: Any) -> None:
        calls.append(("post_fork", arbiter, w))

    def nworkers_changed(server: Any, new: Any, old: Any) -> None:
        calls.append(("nworkers_changed", server, new, old))

    def ssl_context(conf: Any, factory: Any) -> str:
        return f"ctx from {factory()}"

    pm = build_plugin_manager(autoload=False)
    hooks = collect_hooks(
        {
            "post_fork": post_fork,
            "nworkers_changed": nworkers_changed,
            "ssl_context": ssl_context,
            "workers": 3,
            "os": object(),
        },
        "config file c.py",
    )
    register_hooks(pm, hooks, "config-file")
    pm.hook.forkhorn_post_fork(server="S", worker="W")
    pm.hook.forkhorn_nworkers_changed(server="S", new_value=3, old_value=None)
    assert calls == [("post_fork", "S", "W"), ("nworkers_changed", "S", 3, None)]
    assert (
        pm.hook.forkhorn_ssl_context(config=None, default_ssl_context_factory=lambda: "d")
        == "ctx from d"
    )


@pytest.mark.parametrize("arity", [2, 3, 4])
def test_post_request_accepts_gunicorns_short_forms(arity: int) -> None:
    seen: list[tuple[Any, ...]] = []
    functions = {
        2: lambda worker, req: seen.append((worker, req)),
        3: lambda worker, req, environ: seen.append((worker, req, environ)),
        4: lambda worker, req, environ, resp: seen.append((worker, req, environ, resp)),
    }
    pm = build_plugin_manager(autoload=False)
    register_hooks(pm, collect_hooks({"post_request": functions[arity]}, "c.py"), "config-file")
    pm.hook.forkhorn_post_request(worker="w", req="r", environ={}, resp="x")
    assert seen == [("w", "r", {}, "x")[:arity]]


def test_wrong_arity_is_one_clear_line() -> None:
    with pytest.raises(ConfigError) as info:
        collect_hooks({"post_fork": lambda server: None}, "config file c.py")
    assert str(info.value) == (
        "invalid value for post_fork (from config file c.py): the hook is called as "
        "post_fork(server, worker), so the function must take 2 positional arguments"
    )


def test_defaults_and_varargs_are_accepted() -> None:
    hooks = collect_hooks(
        {"on_starting": lambda server, extra=None: None, "on_exit": lambda *args: None}, "c.py"
    )
    assert set(hooks) == {"on_starting", "on_exit"}


def test_hook_given_as_dotted_path() -> None:
    hooks = collect_hooks({"on_exit": "os.path.exists"}, "c.py")
    assert "on_exit" in hooks


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nodots", "module.function"),
        ("os.no_such_function", "cannot load"),
        (42, "expected a function"),
    ],
)
def test_bad_hook_values(value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        collect_hooks({"on_exit": value}, "c.py")


def test_reload_replaces_the_config_file_hooks() -> None:
    pm = build_plugin_manager(autoload=False)
    register_hooks(pm, collect_hooks({"on_exit": lambda s: "old"}, "c.py"), "config-file")
    register_hooks(pm, collect_hooks({"on_reload": lambda s: None}, "c.py"), "config-file")
    assert not pm.hook.forkhorn_on_exit.get_hookimpls()
    assert len(pm.hook.forkhorn_on_reload.get_hookimpls()) == 1
    register_hooks(pm, {}, "config-file")
    assert not pm.hook.forkhorn_on_reload.get_hookimpls()


def test_hook_names_are_gunicorns() -> None:
    assert "register_workers" not in hook_names()
    assert {"on_starting", "post_fork", "ssl_context"} <= set(hook_names())
