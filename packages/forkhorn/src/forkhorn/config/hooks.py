"""Config-file server hooks (``on_starting``, ``post_fork``, ...) as pluggy implementations.

A Gunicorn config file defines hooks as plain functions called positionally
(``def post_fork(server, worker)``, any parameter names). Each becomes an implementation of
``forkhorn_<name>``: a wrapper whose signature is the hookspec's (so pluggy passes the
arguments by their spec names) and which calls the user's function positionally.

Invariants: the arity is checked when the file is loaded (a wrong one is a bad value: one
line, exit 2), as Gunicorn does; ``post_request`` also takes 2 or 3 arguments (Gunicorn's
shortened forms); a hook may be given as a dotted-path string; the hooks of one config file
are one plugin named after the file, so a reload can unregister and replace them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from types import SimpleNamespace
from typing import Any

import pluggy

from forkhorn.config.config import ConfigError
from forkhorn.config.imports import ObjectImportError, ObjectPathError, import_object
from forkhorn.plugins import hookspec

PREFIX = "forkhorn_"
#: hooks that are not server hooks a config file may define
NOT_SERVER_HOOKS = {"forkhorn_register_workers"}
#: Gunicorn accepts these shorter argument lists for some hooks
EXTRA_ARITIES = {"post_request": (2, 3)}


def hook_specs() -> dict[str, inspect.Signature]:
    """Server hook name (without ``forkhorn_``) -> the hookspec's signature."""
    specs: dict[str, inspect.Signature] = {}
    for attr, function in vars(hookspec).items():
        if attr.startswith(PREFIX) and attr not in NOT_SERVER_HOOKS and callable(function):
            signature = inspect.signature(function)
            specs[attr[len(PREFIX) :]] = signature.replace(
                parameters=[
                    p.replace(annotation=inspect.Parameter.empty)
                    for p in signature.parameters.values()
                ],
                return_annotation=inspect.Signature.empty,
            )
    return specs


def hook_names() -> list[str]:
    return sorted(hook_specs())


def collect_hooks(namespace: Mapping[str, Any], source: str) -> dict[str, Callable[..., Any]]:
    """The hook functions a config file's globals define, checked; ``{}`` when none."""
    specs = hook_specs()
    found: dict[str, Callable[..., Any]] = {}
    for name, signature in specs.items():
        if name not in namespace or namespace[name] is None:
            continue
        function = _resolve(name, namespace[name], source)
        found[name] = _adapt(name, function, len(signature.parameters), source)
    return found


def register_hooks(
    pm: pluggy.PluginManager, hooks: Mapping[str, Callable[..., Any]], plugin_name: str
) -> object | None:
    """Register ``hooks`` as one plugin; replaces a previous plugin of that name (reload)."""
    previous = pm.get_plugin(plugin_name)
    if previous is not None:
        pm.unregister(previous)
    if not hooks:
        return None
    specs = hook_specs()
    plugin = SimpleNamespace()
    marker = hookspec.hookimpl
    for name, function in hooks.items():
        setattr(plugin, PREFIX + name, marker(_with_spec_signature(function, specs[name])))
    pm.register(plugin, name=plugin_name)
    return plugin


def _resolve(name: str, value: Any, source: str) -> Callable[..., Any]:
    if isinstance(value, str):
        try:
            value = import_object(value)
        except ObjectPathError:
            raise ConfigError(
                f"invalid value for {name} (from {source}): expected a function or a "
                f"'module.function' path, got {value!r}"
            ) from None
        except ObjectImportError as exc:
            raise ConfigError(
                f"invalid value for {name} (from {source}): cannot load {value!r}: {exc}"
            ) from None
    if not callable(value):
        raise ConfigError(
            f"invalid value for {name} (from {source}): expected a function, got {value!r}"
        )
    return value


def _positional_arity(function: Callable[..., Any]) -> tuple[int, int | None]:
    """(required, maximum) positional arguments; maximum None with ``*args``."""
    parameters = inspect.signature(function).parameters.values()
    positional = [
        p
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    required = sum(1 for p in positional if p.default is inspect.Parameter.empty)
    has_varargs = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters)
    return required, None if has_varargs else len(positional)


def _adapt(name: str, function: Callable[..., Any], arity: int, source: str) -> Callable[..., Any]:
    """A callable taking the spec's ``arity`` positional arguments."""
    try:
        required, maximum = _positional_arity(function)
    except (TypeError, ValueError):
        return function  # no signature (a builtin): trust it, as Gunicorn can't check either
    if required <= arity and (maximum is None or maximum >= arity):
        return function
    for shorter in EXTRA_ARITIES.get(name, ()):
        if required <= shorter and (maximum is None or maximum >= shorter):
            return _truncating(function, shorter)
    spec = ", ".join(hook_specs()[name].parameters)
    accepted = " or ".join(str(n) for n in (arity, *EXTRA_ARITIES.get(name, ())))
    raise ConfigError(
        f"invalid value for {name} (from {source}): the hook is called as {name}({spec}), "
        f"so the function must take {accepted} positional argument{'s' if arity > 1 else ''}"
    )


def _truncating(function: Callable[..., Any], count: int) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        return function(*args[:count])

    return call


def _with_spec_signature(
    function: Callable[..., Any], signature: inspect.Signature
) -> Callable[..., Any]:
    """A real function whose parameters are the hookspec's names, calling ``function``.

    pluggy matches an implementation's parameter names against the spec (and, from 1.7 on,
    reads them from the code object itself), so the wrapper must be a genuine function with
    those parameters; the user's own names do not matter. The names come from our hookspec,
    never from user input, so generating the function's source is safe.
    """
    names = list(signature.parameters)
    for name in names:
        if not name.isidentifier():
            raise ValueError(f"hookspec parameter {name!r} is not an identifier")
    arguments = ", ".join(names)
    namespace: dict[str, Any] = {"_user_hook": function}
    exec(f"def call({arguments}):\n    return _user_hook({arguments})\n", namespace)
    call = namespace["call"]
    call.__name__ = getattr(function, "__name__", "hook")
    call.__qualname__ = getattr(function, "__qualname__", call.__name__)
    call.__wrapped_hook__ = function
    return call
