"""The worker registry: names -> lazy ``"module:Class"`` targets, and ``-k`` resolution.

Plugins fill it from ``forkhorn_register_workers(registry)``. ``collect_workers`` calls
each implementation itself, handing it a view that stamps every name with the plugin's
distribution, so the registry knows who registered what (for ``--list-workers`` and for
error messages) and can report two distributions claiming one name, naming both.

Invariants: nothing here imports a worker class until ``resolve`` is asked for it; a
dotted path or ``module:Class`` is imported directly without looking at the registry or
at entry points; every failure is a ``WorkerClassError`` subclass whose message is what
the user sees, chained (``raise ... from``) to the root cause.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pluggy

from forkhorn import __version__
from forkhorn.config.imports import ObjectImportError, ObjectPathError, import_object

#: the distributions that ship the optional workers, for the "pip install" hint
OPTIONAL_WORKERS = {
    "gevent": "forkhorn[gevent]",
    "gevent_pywsgi": "forkhorn[gevent]",
    "gevent_wsgi": "forkhorn[gevent]",
    "eventlet": "forkhorn[eventlet]",
}

#: Gunicorn's class paths for its workers, so a gunicorn.conf.py naming them keeps working
GUNICORN_CLASS_PATHS = {
    "gunicorn.workers.sync.SyncWorker": "sync",
    "gunicorn.workers.gthread.ThreadWorker": "gthread",
    "gunicorn.workers.ggevent.GeventWorker": "gevent",
    "gunicorn.workers.ggevent.GeventPyWSGIWorker": "gevent_pywsgi",
    "gunicorn.workers.geventlet.EventletWorker": "eventlet",
}


class WorkerClassError(Exception):
    """The worker class cannot be used. The message is the one the user sees."""


class UnknownWorkerError(WorkerClassError):
    """A name nobody registered (a usage error: exit code 2)."""


class WorkerNameConflict(WorkerClassError):
    """Two plugins registered one name."""


class WorkerImportError(WorkerClassError):
    """The chosen worker's module could not be imported or has no such class."""


# A NamedTuple, not a dataclass: a dataclass compiles generated methods at import time.
class Origin(NamedTuple):
    """Who registered a worker: the distribution (name, version) and the pluggy plugin name."""

    distribution: str
    version: str
    plugin: str

    def __str__(self) -> str:
        return f"{self.distribution} {self.version}".strip()


class WorkerEntry(NamedTuple):
    name: str
    target: str
    summary: str
    origin: Origin


class WorkerRegistry:
    def __init__(self) -> None:
        self._entries: dict[str, WorkerEntry] = {}

    def add(
        self, name: str, target: str, summary: str = "", *, origin: Origin | None = None
    ) -> None:
        """Register ``name`` -> ``"module:Class"``. Plugins call it through their view."""
        origin = origin or Origin("unknown", "", "unknown")
        if not name or not isinstance(target, str) or ":" not in target:
            raise WorkerClassError(
                f"{origin} registered worker {name!r} with target {target!r}; "
                "expected a name and a 'module:Class' string"
            )
        existing = self._entries.get(name)
        if existing is not None:
            raise WorkerNameConflict(
                f"worker name {name!r} is claimed by both {existing.origin} (plugin "
                f"{existing.origin.plugin!r}) and {origin} (plugin {origin.plugin!r}); "
                f"uninstall one, or block one with -p no:PLUGIN"
            )
        self._entries[name] = WorkerEntry(name, target, summary, origin)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[WorkerEntry]:
        return [self._entries[name] for name in self.names()]

    def get(self, name: str) -> WorkerEntry | None:
        return self._entries.get(name)

    def entry_for_class(self, cls: type) -> WorkerEntry | None:
        """The entry whose target is ``cls`` (to name its distribution in errors)."""
        target = f"{cls.__module__}:{cls.__qualname__}"
        return next((e for e in self._entries.values() if e.target == target), None)

    def describe_failure(self, cls: type, what: str, exc: BaseException) -> WorkerImportError:
        """An error for ``exc`` raised while using ``cls``, naming its distribution."""
        entry = self.entry_for_class(cls)
        where = (
            f"worker {entry.name!r} from {entry.origin}"
            if entry
            else f"worker class {cls.__module__}:{cls.__qualname__}"
        )
        message = f"{where}: {what} failed ({type(exc).__name__}: {exc})"
        # Reinstalling helps when a whole package is missing (gevent, greenlet), not when
        # a module inside one is (EVENTLET_HUB=nosuch: "eventlet.hubs.nosuch").
        whole_package = isinstance(exc, ImportError) and "." not in (exc.name or "")
        if entry is not None and entry.name in OPTIONAL_WORKERS and whole_package:
            message += f"; reinstall it: pip install '{OPTIONAL_WORKERS[entry.name]}'"
        return WorkerImportError(message)

    def resolve(self, value: Any) -> type:
        """The worker class for a ``-k`` value: a class, a registered name, ``egg:DIST#NAME``,
        or a dotted path / ``module:Class`` (imported directly)."""
        if isinstance(value, type):
            return value
        spec = str(value).strip()
        spec = GUNICORN_CLASS_PATHS.get(spec, spec)
        if spec.startswith("egg:"):
            return self._resolve_egg(spec)
        if ":" in spec or "." in spec:
            return import_class(spec, origin=None)
        entry = self._entries.get(spec)
        if entry is None:
            raise UnknownWorkerError(self._unknown_message(spec))
        return import_class(entry.target, origin=entry)

    def _resolve_egg(self, spec: str) -> type:
        dist, sep, name = spec[len("egg:") :].partition("#")
        if not sep or not name:
            raise UnknownWorkerError(f"worker class {spec!r}: expected egg:DISTRIBUTION#NAME")
        entry = self._entries.get(name)
        if entry is None:
            raise UnknownWorkerError(self._unknown_message(name))
        # Gunicorn's own "egg:gunicorn#NAME" means "the server's NAME worker".
        if _normalise(dist) not in (_normalise(entry.origin.distribution), "gunicorn"):
            raise UnknownWorkerError(
                f"worker {name!r} is provided by {entry.origin}, not by {dist!r} "
                f"(from {spec!r}); use -k {name}"
            )
        return import_class(entry.target, origin=entry)

    def _unknown_message(self, name: str) -> str:
        known = self.names()
        message = f"unknown worker class {name!r}; known: {', '.join(known) or '(none)'}"
        if name in OPTIONAL_WORKERS:
            return f"{message}. The {name} worker is not installed: pip install '{OPTIONAL_WORKERS[name]}'"
        if name == "tornado":
            return (
                f"{message}. Gunicorn's tornado worker has no forkhorn counterpart: a WSGI app "
                "runs on any of the workers above"
            )
        import difflib  # only for this error message: keeps difflib out of every start-up

        closest = difflib.get_close_matches(name, known, n=1)
        if closest:
            message += f". Did you mean {closest[0]!r}?"
        return message + " (or give a dotted path such as pkg.module:WorkerClass)"


def import_class(target: str, *, origin: WorkerEntry | None) -> type:
    """Import ``module:Class`` or ``module.Class``; errors name the distribution if known."""
    where = f"worker {origin.name!r} from {origin.origin}" if origin else "worker class"
    try:
        obj = import_object(target)
    except ObjectPathError:
        raise UnknownWorkerError(
            f"{where}: {target!r} is not a 'module:Class' or dotted path"
        ) from None
    except ObjectImportError as exc:
        message = f"{where}: {exc}"
        cause = exc.__cause__
        if (
            isinstance(cause, ModuleNotFoundError)
            and (cause.name or "").split(".")[0] == "gunicorn"
        ):
            message += _BUILT_ON_GUNICORN
        raise WorkerImportError(message) from cause
    if not isinstance(obj, type):
        raise WorkerImportError(f"{where}: {target!r} is not a class")
    # With Gunicorn installed too, such a class imports, then fails deep in the arbiter.
    if any(base.__module__.split(".")[0] == "gunicorn" for base in obj.__mro__):
        raise WorkerImportError(f"{where}: {target!r}{_BUILT_ON_GUNICORN}")
    return obj


_BUILT_ON_GUNICORN = (
    "; this class is built on Gunicorn's own worker classes (as uvicorn's or "
    "gevent-websocket's are), which forkhorn does not provide: choose one of forkhorn's "
    "workers (forkhorn --list-workers)"
)


def collect_workers(pm: pluggy.PluginManager) -> WorkerRegistry:
    """Ask every ``forkhorn_register_workers`` implementation, each with its own origin."""
    registry = WorkerRegistry()
    # pluggy keeps implementations last-registered-first; ask them in registration order
    # so that a conflict message names the earlier distribution first.
    for impl in reversed(pm.hook.forkhorn_register_workers.get_hookimpls()):
        origin = origin_of(pm, impl.plugin, impl.plugin_name)
        impl.function(registry=_RegistrationView(registry, origin))
    return registry


def origin_of(pm: pluggy.PluginManager, plugin: object, plugin_name: str) -> Origin:
    """The distribution a plugin came from: pluggy's entry-point records, then forkhorn's."""
    for known, dist in pm.list_plugin_distinfo():
        if known is plugin:
            return Origin(str(dist.project_name), str(dist.version), plugin_name)
    recorded = getattr(pm, "distribution_of", None)
    found = recorded(plugin) if recorded is not None else None
    if found is not None:
        return Origin(found[0], found[1], plugin_name)
    module = getattr(plugin, "__name__", "")
    if isinstance(module, str) and module.startswith("forkhorn."):
        return Origin("forkhorn", __version__, plugin_name)
    return Origin(plugin_name, "", plugin_name)


class _RegistrationView:
    """What a plugin sees as ``registry``: ``add`` stamps the plugin's origin."""

    def __init__(self, registry: WorkerRegistry, origin: Origin) -> None:
        self._registry = registry
        self._origin = origin

    def add(self, name: str, target: str, summary: str = "") -> None:
        self._registry.add(name, target, summary, origin=self._origin)

    def names(self) -> list[str]:
        return self._registry.names()


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")
