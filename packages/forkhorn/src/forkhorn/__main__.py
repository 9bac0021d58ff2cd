"""``forkhorn`` / ``python -m forkhorn``: the bootstrap, in the order monkey-patching needs.

1. The start directory goes first on ``sys.path``, as with Gunicorn (the project's own
   modules may name the worker class, plugins, the config module, the logger class).
   Cheap pre-parse (stdlib and the settings table only): argv and ``FORKHORN_CMD_ARGS``
   (``GUNICORN_CMD_ARGS`` when that is not set)
   with the generated parser, plus the config file's *literal* ``worker_class``,
   ``preload_app``, ``threads``, ``chdir`` and ``pythonpath`` read with ``ast`` without
   running the file; ``chdir`` and ``pythonpath`` go on ``sys.path`` (no ``chdir`` yet).
2. Build the plugin manager, collect the worker registry, resolve the worker class
   (importing only that class's module).
3. ``worker_class.patch_master(preload=...)`` if the class has it: at this point neither
   ``logging`` nor ``ssl`` has been imported (a test checks it).
4. Full load (the config file runs, its hooks are registered), then ``--print-config`` /
   ``--check-config``, then the logger (``make_logger``: a log that cannot be set up is
   one line) and ``forkhorn.arbiter.Arbiter(app, log=...).run()``.

Exit codes: 0 fine; 2 a usage error or a bad value anywhere (one line naming the setting
and what is accepted), an unknown worker name, no app given; 1 the environment is broken
(a plugin or the chosen worker fails to import, the class is not a forkhorn worker, two
plugins claim one worker name, the logs cannot be set up) or the config file raised (its
traceback is shown, it is the user's code); 4 (``APP_LOAD_ERROR``) the app failed to load
in the master (``--check-config``, ``--preload``), the same code the master exits with
when workers fail to load it. The arbiter owns the codes after start-up.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from forkhorn.application import (
    AppImportError,
    WSGIApplication,
    adopt_paste_file,
    apply_paths,
    paths_on_sys_path,
    working_directory,
    working_directory_on_path,
)
from forkhorn.cli import (
    PROG,
    UsageError,
    build_parser,
    cmd_args_variable,
    parse_command_line,
    split_cmd_args,
)
from forkhorn.config.config import COMMAND_LINE, DEFAULT, Config, ConfigError
from forkhorn.config.hooks import register_hooks
from forkhorn.config.loader import (
    ConfigFileError,
    config_file_path,
    load_config,
    locate_config,
    scan_literals,
)
from forkhorn.plugins.manager import PluginLoadError, PluginSwitches, build_from_switches
from forkhorn.plugins.registry import (
    UnknownWorkerError,
    WorkerClassError,
    WorkerRegistry,
    collect_workers,
)

if TYPE_CHECKING:
    import argparse

    import pluggy


#: the settings the bootstrap must know before the config file runs
EARLY_SETTINGS = ("worker_class", "preload_app", "threads", "chdir", "pythonpath")
CONFIG_HOOKS_PLUGIN = "config-file"
USAGE_ERROR = 2
ENVIRONMENT_ERROR = 1
APP_LOAD_ERROR = 4


class _Invocation:
    """The parsed command line and environment of this run (kept for SIGHUP reloads)."""

    def __init__(self, argv: Sequence[str], environ: Mapping[str, str]) -> None:
        self.environ = dict(environ)
        #: where forkhorn was started: relative paths given here (``--paste``) keep their
        #: meaning on a SIGHUP reload, after ``chdir`` moved the working directory; the app
        #: keeps it for a USR2 re-exec
        self.start_cwd = working_directory()
        parser = build_parser(describe_workers=self._describe_workers)
        self.argv = parse_command_line(parser, argv)
        #: FORKHORN_CMD_ARGS, or GUNICORN_CMD_ARGS when only that one is set
        self.env_variable = cmd_args_variable(self.environ)
        env_args = split_cmd_args(self.environ.get(self.env_variable, ""), self.env_variable)
        self.env_args = parse_command_line(parser, env_args, origin=f"{self.env_variable}: ")
        self.switches = PluginSwitches.from_sources(
            self.environ, [*self.env_args.plugins, *self.argv.plugins]
        )
        #: the config file, found once and made absolute: a SIGHUP reload re-reads the same
        #: file even after ``chdir`` moved the working directory
        self.location = _absolute_location(
            locate_config(self.argv.values.get("config") or self.env_args.values.get("config"))
        )

    def warn_ignored(self) -> None:
        """One warning per Gunicorn option given for a feature forkhorn does not have."""
        for flags, where in ((self.env_args.ignored, f" (in {self.env_variable})"),
                             (self.argv.ignored, "")):  # fmt: skip
            for flag in dict.fromkeys(flags):  # once each, in order
                _warn_gunicorn_only(f"{flag}{where}", "option")

    def _describe_workers(self, namespace: argparse.Namespace) -> str:
        plugins = list(getattr(namespace, "plugins", None) or [])
        switches = PluginSwitches.from_sources(self.environ, plugins)
        try:
            return ", ".join(collect_workers(build_from_switches(switches)).names())
        except Exception as exc:  # --help must work even with a broken plugin installed
            return f"(the worker list is unavailable: {exc})"

    @property
    def list_workers(self) -> bool:
        return self.argv.list_workers or self.env_args.list_workers

    @property
    def app_uri(self) -> str | None:
        return self.argv.app_uri or self.env_args.app_uri

    def overrides(self) -> list[tuple[str, dict[str, Any]]]:
        env_source = f"env {self.env_variable}"
        return [(env_source, self.env_args.values), (COMMAND_LINE, self.argv.values)]

    def early_config(self, location: str | None) -> Config:
        """The settings step 2 needs, from literals in the config file and the command line.

        Every value from the command line and the environment's options is validated here
        too, so that a bad value is reported (exit 2) before any plugin is imported.
        """
        cfg = Config()
        for name, value in scan_literals(location, EARLY_SETTINGS).items():
            cfg.set(name, value, source=f"config file {location}")
        for source, values in self.overrides():
            for name, value in values.items():
                cfg.set(name, value, source=source)
        return cfg


def _check_tls_files(cfg: Config) -> None:
    """The TLS files must exist (checked after ``chdir``, which relative paths are read
    against): otherwise every worker would fail to boot, after the master had started."""
    for name in ("certfile", "keyfile", "ca_certs"):
        path = getattr(cfg, name, None)
        if path and not os.path.isfile(path):
            raise ConfigError(
                f"invalid value for {name} (from {cfg.source(name)}): {path!r} is not a file"
            )


def _forkhorn_worker(cls: type) -> type:
    """``cls`` if it is a forkhorn worker; else a one-line error now, not a traceback from
    the arbiter later. No import: a subclass of ``Worker`` has imported its module."""
    base = sys.modules.get("forkhorn.workers.base")
    if base is None or not issubclass(cls, base.Worker):
        raise WorkerClassError(
            f"worker class {cls.__module__}.{cls.__qualname__} is not a forkhorn worker "
            "(a subclass of forkhorn.workers.base.Worker; see forkhorn --list-workers)"
        )
    return cls


def _absolute_location(location: str | None) -> str | None:
    """A file location made absolute (``file:`` kept); ``python:MODULE`` as it is."""
    path = config_file_path(location) if location else None
    if location is None or path is None:
        return location
    prefix = "file:" if location.startswith("file:") else ""
    return prefix + os.path.abspath(path)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """The console script and ``python -m forkhorn``."""
    sys.exit(run(sys.argv[1:] if argv is None else argv))


def run(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> int:
    try:
        return _run(argv, os.environ if environ is None else environ)
    except (ConfigError, UsageError, UnknownWorkerError) as exc:
        return _fail(str(exc), USAGE_ERROR)
    except (WorkerClassError, PluginLoadError) as exc:
        return _fail(str(exc), ENVIRONMENT_ERROR, exc.__cause__)
    except LoggingSetupError as exc:
        return _fail(str(exc), ENVIRONMENT_ERROR)
    except ConfigFileError as exc:
        print(str(exc), file=sys.stderr)
        cause = exc.__cause__
        if cause is not None:
            from forkhorn.tracebacks import format_user_error  # an error path only

            print(format_user_error(cause), end="", file=sys.stderr)
        sys.stderr.flush()
        return ENVIRONMENT_ERROR
    except AppImportError as exc:
        return _fail(exc.report(), APP_LOAD_ERROR)


def _run(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    # 1. pre-parse: stdlib + the settings table. As Gunicorn does first, the start
    # directory goes on sys.path: a worker class, plugin, config file or logger class named
    # as a module of the project is found there (the console script's sys.path lacks it)
    working_directory_on_path()
    invocation = _Invocation(argv, environ)
    invocation.warn_ignored()
    location = invocation.location
    early = invocation.early_config(location)
    paths_on_sys_path(early)  # a worker class may live in chdir or on pythonpath
    # 2. plugins and the worker class
    pm = build_from_switches(invocation.switches)
    registry = collect_workers(pm)
    if invocation.list_workers:
        print_workers(registry)
        return 0
    worker_class = _forkhorn_worker(registry.resolve(early.worker_class_str))
    # 3. the class may monkey-patch now, before logging, ssl, locks or the app exist
    patch_master(worker_class, early.preload_app, registry)
    # 4. the full configuration
    cfg, app_uri = _load(invocation, pm, location)
    if cfg.worker_class_str != early.worker_class_str or isinstance(cfg.worker_class, type):
        # A computed worker_class (seen only now): resolve again and patch late.
        late = _forkhorn_worker(
            registry.resolve(
                cfg.worker_class if isinstance(cfg.worker_class, type) else cfg.worker_class_str
            )
        )
        if late is not worker_class:
            worker_class = late
            patch_master(worker_class, cfg.preload_app, registry)

    def reload_config() -> tuple[Config, str | None]:
        return _load(invocation, pm, location)

    app = WSGIApplication(
        cfg,
        pm,
        app_uri,
        worker_class=worker_class,
        registry=registry,
        reloader=reload_config,
        start_cwd=invocation.start_cwd,
    )
    if cfg.print_config:
        print_config(cfg, pm)
        return 0
    if app_uri is None and not cfg.paste:
        raise UsageError("No application module specified (give APP_MODULE or set wsgi_app).")
    apply_paths(cfg)
    _check_tls_files(cfg)
    if cfg.check_config:
        app.wsgi()
        return 0
    return _serve(app)


def _load(
    invocation: _Invocation, pm: pluggy.PluginManager, location: str | None
) -> tuple[Config, str | None]:
    loaded = load_config(location, invocation.overrides(), invocation.environ)
    for name in loaded.unsupported:
        _warn_gunicorn_only(f"{name} (in {location})", "setting")
    register_hooks(pm, loaded.hooks, CONFIG_HOOKS_PLUGIN)
    cfg = loaded.cfg
    app_uri = invocation.app_uri or cfg.wsgi_app
    if cfg.paste:
        app_uri = adopt_paste_file(cfg, invocation.start_cwd)
    if app_uri and cfg.source("default_proc_name") == DEFAULT:
        cfg.set("default_proc_name", app_uri, source="APP_MODULE")
    return cfg, app_uri


def _warn_gunicorn_only(what: str, kind: str) -> None:
    """One line on stderr for a Gunicorn ``kind`` (setting, option) forkhorn lacks."""
    print(f"{PROG}: warning: {what} is a Gunicorn {kind} forkhorn does not implement; ignored",
          file=sys.stderr)  # fmt: skip


class LoggingSetupError(Exception):
    """The logs could not be set up: a log file that cannot be opened, a ``logconfig``
    that cannot be read or applied, a ``logger_class`` that cannot be imported."""


def _serve(app: WSGIApplication) -> int:
    from forkhorn.arbiter import Arbiter  # type: ignore[attr-defined]
    from forkhorn.logging import LoggerClassError, make_logger
    from forkhorn.logging.handlers import LogConfigError

    try:
        log = make_logger(app.cfg)
    except (LoggerClassError, LogConfigError, OSError) as exc:
        raise LoggingSetupError(f"cannot set up logging: {exc}") from exc
    if app.cfg.spew:
        from forkhorn.debug import spew

        spew()
    Arbiter(app, log=log).run()
    return 0


def patch_master(worker_class: type, preload: bool, registry: WorkerRegistry) -> None:
    """Let the class monkey-patch the master; a failure names the worker's distribution."""
    patch = getattr(worker_class, "patch_master", None)
    if patch is None:
        return
    try:
        patch(preload=preload)
    except Exception as exc:
        raise registry.describe_failure(worker_class, "patch_master", exc) from exc


def print_workers(registry: WorkerRegistry) -> None:
    rows = [("NAME", "DISTRIBUTION", "VERSION", "SUMMARY")]
    rows += [
        (e.name, e.origin.distribution, e.origin.version, e.summary) for e in registry.entries()
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)]
        print("  ".join([*cells, row[3]]).rstrip())


def print_config(cfg: Config, pm: pluggy.PluginManager) -> None:
    from forkhorn.config.hooks import hook_names

    lines = [(name, repr(value), cfg.source(name)) for name, value in cfg.items()]
    for name in hook_names():
        impls = getattr(pm.hook, f"forkhorn_{name}").get_hookimpls()
        if impls:
            lines.append((name, "<hook>", ", ".join(impl.plugin_name for impl in impls)))
    width = max(len(name) for name, _, _ in lines)
    for name, value, source in lines:
        print(f"{name:{width}} = {value}  ({source})")


def _fail(message: str, code: int, cause: BaseException | None = None) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    if cause is not None and not isinstance(cause, ImportError):
        # the root cause is a bug in the plugin's code: show where it happened
        traceback.print_exception(type(cause), cause, cause.__traceback__)
    sys.stderr.flush()
    return code


if __name__ == "__main__":
    main()
