"""The application the arbiter serves: effective config, plugin hooks, the worker class and
the WSGI app loader.

``APP_MODULE`` is ``module.sub:variable`` (``application`` when no variable is given) or a
factory call with literal arguments, ``pkg.app:create_app('x', debug=True)``, parsed with
``ast`` (never evaluated). Failures raise ``AppImportError``: one line for a missing module,
variable or a non-callable object; when the app's own code raised (it is the user's bug,
they need the traceback) the error is chained to it and ``report()`` adds its traceback.
The worker exits with ``APP_LOAD_ERROR`` (4) on ``AppImportError`` and the
master reports "App failed to load"; ``--check-config`` and ``--preload`` report it in the
master with the same exit code.

Invariants: importing this module imports no app code; ``wsgi()`` imports the app once and
caches it until ``reload()``; ``reload()`` builds the new configuration completely before
swapping it in, so a bad config file on SIGHUP leaves the running configuration intact.
"""

from __future__ import annotations

import ast
import configparser
import importlib
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

from forkhorn.config import Config, ConfigError
from forkhorn.config.config import DEFAULT

if TYPE_CHECKING:
    from forkhorn.plugins.registry import WorkerRegistry

WSGICallable = Callable[..., Any]


class AppImportError(Exception):
    """The WSGI app could not be loaded.

    ``str()`` is one line naming the cause. When the app's own code raised, the exception
    is chained to it (``__cause__``) and ``details`` holds its formatted traceback;
    ``report()`` is what to show the user: that traceback (if any), then the line. Log it
    with ``log.error(exc.report())`` rather than ``log.exception`` (which would add
    forkhorn's own frames, and the app's traceback twice).
    """

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.message = message
        #: the app's own traceback, when its code raised
        self.details = details

    def report(self) -> str:
        return f"{self.details.rstrip()}\n{self.message}" if self.details else self.message


def load_failure_report(exc: BaseException) -> str:
    """What the user is shown when the app did not load: ``AppImportError.report()``, or
    the whole traceback of anything else (then forkhorn's own failure)."""
    if isinstance(exc, AppImportError):
        return exc.report()
    import traceback  # an error path only

    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def log_load_failure(log: Any, exc: BaseException) -> None:
    """Log why the app did not load (worker, or master with ``preload_app``). A missing
    module or attribute is one line; when the app's own code raised, its traceback comes
    first. forkhorn's own frames are noise for the user's mistake: debug level only."""
    if isinstance(exc, AppImportError):
        log.debug("Exception while loading the application", exc_info=exc)
        log.error("%s", exc.report())
    else:
        log.exception("Exception while loading the application", exc_info=exc)


def parse_app_uri(app_uri: str) -> tuple[str, str, tuple[Any, ...] | None, dict[str, Any]]:
    """``module:expr`` -> (module, attribute, args or None when not a call, kwargs)."""
    module_name, _, expression = app_uri.partition(":")
    module_name = module_name.strip()
    expression = expression.strip() or "application"
    if not module_name:
        raise AppImportError(f"Failed to parse {app_uri!r}: expected MODULE or MODULE:VARIABLE.")
    try:
        node = ast.parse(expression, mode="eval").body
    except SyntaxError:
        raise AppImportError(
            f"Failed to parse {expression!r} as an attribute name or function call."
        ) from None
    if isinstance(node, ast.Name):
        return module_name, node.id, None, {}
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        try:
            args = tuple(ast.literal_eval(arg) for arg in node.args)
            kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords if kw.arg}
        except ValueError:
            raise AppImportError(
                f"Failed to parse arguments as literal values: {expression!r}."
            ) from None
        if any(kw.arg is None for kw in node.keywords):
            raise AppImportError(f"Failed to parse arguments as literal values: {expression!r}.")
        return module_name, node.func.id, args, kwargs
    raise AppImportError(
        f"Failed to parse {expression!r} as an attribute name or function call "
        "(a factory must be a simple name: create_app())."
    )


def import_app(app_uri: str) -> WSGICallable:
    """Load the WSGI callable named by ``app_uri``; raises ``AppImportError``."""
    module_name, name, args, kwargs = parse_app_uri(app_uri)
    module = _import_app_module(module_name, app_uri)
    try:
        app = getattr(module, name)
    except AttributeError:
        raise AppImportError(f"Failed to find attribute {name!r} in {module_name!r}.") from None
    if args is not None:
        try:
            app = app(*args, **kwargs)
        except TypeError as exc:
            if _called_with_wrong_args(exc):
                raise AppImportError(f"Failed to call {name!r} in {module_name!r}: {exc}") from None
            raise _raised(app_uri, exc) from exc
        except Exception as exc:
            raise _raised(app_uri, exc) from exc
    if app is None:
        raise AppImportError(
            f"Failed to find application object {name!r} in {module_name!r}: it is None."
        )
    if not callable(app):
        raise AppImportError(f"Application object {app_uri!r} must be callable.")
    return app  # type: ignore[no-any-return]


def _import_app_module(module_name: str, app_uri: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only "this module (or a parent package) does not exist" is a one-line error; a
        # module that exists but imports something missing is the app's own bug.
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            hint = ""
            if module_name.endswith(".py"):
                hint = f" Did you mean '{module_name[:-3].replace('/', '.')}'?"
            raise AppImportError(f"Failed to find module {module_name!r}.{hint}") from None
        raise _raised(app_uri, exc) from exc
    except Exception as exc:
        raise _raised(app_uri, exc) from exc


def _raised(app_uri: str, exc: BaseException) -> AppImportError:
    from forkhorn.tracebacks import format_user_error  # an error path: not at start-up

    details = format_user_error(exc)
    return AppImportError(
        f"Failed to load application {app_uri!r}: {type(exc).__name__}: {exc}", details
    )


def _called_with_wrong_args(exc: TypeError) -> bool:
    """True when the TypeError comes from the call itself, not from inside the factory."""
    tb = exc.__traceback__
    # The call's own frame is this module's; a deeper frame means the factory ran.
    return tb is not None and tb.tb_next is None


class WSGIApplication:
    """What the arbiter and workers are given: ``cfg``, ``plugin_manager``, ``hook``,
    ``worker_class`` and ``wsgi()``."""

    def __init__(
        self,
        cfg: Config,
        plugin_manager: pluggy.PluginManager,
        app_uri: str | None,
        *,
        worker_class: type | None = None,
        registry: WorkerRegistry | None = None,
        reloader: Callable[[], tuple[Config, str | None]] | None = None,
        start_cwd: str | None = None,
    ) -> None:
        self.cfg = cfg
        self.plugin_manager = plugin_manager
        self.hook = plugin_manager.hook
        self.app_uri = app_uri
        #: the resolved worker class (set by the CLI; ``resolve_worker_class`` otherwise)
        self.worker_class = worker_class
        self.registry = registry
        self._reloader = reloader
        #: the WSGI callable once loaded (Gunicorn's name: hooks read ``worker.app.callable``)
        self.callable: WSGICallable | None = None
        #: the working directory before ``apply_paths`` applies ``chdir``: a USR2 re-exec
        #: starts the new master from here, so relative paths on the original command line
        #: (``-c conf.py``, ``--chdir app``) mean the same thing again
        self.start_cwd = start_cwd if start_cwd is not None else working_directory()

    def wsgi(self) -> WSGICallable:
        """The WSGI callable, imported on first use (in the master when preloading)."""
        if self.callable is None:
            self.callable = self.load()
        return self.callable

    def load(self) -> WSGICallable:
        # (the app's modules are found in the start directory and in chdir: the bootstrap
        # put both on sys.path, working_directory_on_path and apply_paths)
        if self.cfg.paste:
            return load_paste_app(self.cfg.paste, self.cfg.paste_global_conf)
        if self.app_uri is None:
            raise AppImportError("No application module specified.")
        return import_app(self.app_uri)

    def resolve_worker_class(self) -> type:
        """The worker class for the current config (Gunicorn's sync+threads rule applied)."""
        if self.registry is None:
            from forkhorn.plugins.registry import collect_workers

            self.registry = collect_workers(self.plugin_manager)
        value = self.cfg.worker_class  # a class set in a config file is used as it is
        spec = value if isinstance(value, type) else self.cfg.worker_class_str
        self.worker_class = self.registry.resolve(spec)
        return self.worker_class

    def reload(self) -> None:
        """SIGHUP: re-read the config file and the command line, forget the loaded app.

        Listeners are the arbiter's and are kept. Raises ``ConfigError`` (or the config
        file's exception) and keeps the old configuration if the new one is bad.
        """
        if self._reloader is not None:
            cfg, app_uri = self._reloader()
            self.cfg, self.app_uri = cfg, app_uri
            if self.registry is not None:
                self.resolve_worker_class()
        self.callable = None


def working_directory() -> str | None:
    """``os.getcwd()``, or None when the working directory was removed."""
    try:
        return os.getcwd()
    except OSError:  # the working directory was removed
        return None


def working_directory_on_path() -> None:
    """Put the working directory first on ``sys.path`` unless it is on it already (``""``
    and ``"."`` stand for it too), as Gunicorn does before anything else: the project's own
    modules are importable, also when forkhorn was started through the console script,
    whose ``sys.path`` begins with its ``bin``. ``apply_paths`` adds ``chdir`` later."""
    if "" in sys.path or "." in sys.path:
        return
    cwd = working_directory()
    if cwd is not None and cwd not in sys.path:
        sys.path.insert(0, cwd)


def apply_paths(cfg: Config) -> None:
    """``chdir`` then ``pythonpath``, as Gunicorn does before loading the app: the working
    directory and each ``pythonpath`` entry go first on ``sys.path``."""
    if cfg.chdir:
        os.chdir(cfg.chdir)
    paths_on_sys_path(cfg)


def paths_on_sys_path(cfg: Config) -> None:
    """``chdir``, then each ``pythonpath`` entry, first on ``sys.path``, without changing
    directory; a relative entry is read from ``chdir``, where the process is going. The
    bootstrap calls it before it imports the worker class (Gunicorn imports that class
    after both are applied), ``apply_paths`` again once in ``chdir``."""
    base = cfg.chdir or working_directory() or ""
    entries = [cfg.chdir] if cfg.chdir else []
    entries += [
        os.path.join(base, e.strip()) for e in (cfg.pythonpath or "").split(",") if e.strip()
    ]
    for entry in entries:
        path = os.path.abspath(entry)
        if path not in sys.path:
            sys.path.insert(0, path)


def adopt_paste_file(cfg: Config, start_cwd: str | None) -> str:
    """Take ``paste`` (``FILE.ini`` or ``FILE.ini#SECTION``) as Gunicorn does: the file is
    found from where forkhorn was started (``chdir`` comes later), names the processes, and
    its logging sections (``[loggers]``, as a Pyramid project's ini has) set up the logs
    unless ``logconfig`` is set. Returns the location made absolute; ``ConfigError`` when
    the file does not exist."""
    source = cfg.source("paste")
    path, sep, section = str(cfg.paste).partition("#")
    path = os.path.join(start_cwd or "", os.path.expanduser(path))
    if not os.path.isfile(path):
        raise ConfigError(f"invalid value for paste (from {source}): {path!r} is not a file")
    location = path + sep + section
    cfg.set("paste", location, source=source)
    if cfg.source("default_proc_name") == DEFAULT:
        cfg.set("default_proc_name", path, source="paste")
    if cfg.source("logconfig") == DEFAULT and _has_logging_sections(path):
        cfg.set("logconfig", path, source="paste")
    return location


def _has_logging_sections(path: str) -> bool:
    parser = configparser.ConfigParser()
    try:
        parser.read(path)
    except configparser.Error:
        return False  # PasteDeploy reports the file itself when it reads it
    return parser.has_section("loggers")


def load_paste_app(location: str, global_conf: dict[str, str]) -> WSGICallable:
    """A PasteDeploy app (``file.ini`` or ``file.ini#section``); needs PasteDeploy."""
    try:
        from paste.deploy import loadapp  # type: ignore[import-not-found]
    except ImportError:
        raise AppImportError(
            "The paste setting needs PasteDeploy: pip install PasteDeploy"
        ) from None
    path, _, section = location.partition("#")
    path = os.path.abspath(path)
    if not os.path.exists(path):
        raise AppImportError(f"Failed to find PasteDeploy file {path!r}.")
    uri = f"config:{path}" + (f"#{section}" if section else "")
    try:
        return loadapp(uri, relative_to=os.getcwd(), global_conf=global_conf)  # type: ignore[no-any-return]
    except Exception as exc:
        raise _raised(location, exc) from exc
