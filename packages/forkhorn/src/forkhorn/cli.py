"""The command line: an argparse parser generated from the settings table.

``forkhorn [OPTIONS] [APP_MODULE]``. Every setting with flags becomes an option (grouped by
documentation section, help = its one-line summary and default); besides them:
``-v/--version``, ``--list-workers``, ``--plugin [no:]NAME``, and ``-p``, which keeps
Gunicorn's meaning (``--pid FILE``) except that ``-p no:NAME`` blocks the plugin NAME.

Invariants: the parser imports only the stdlib and the settings table (it runs before the
worker class may monkey-patch); parsing yields raw strings only (validation is
``Config.set``'s job, so a bad value gets the same one-line error from every source);
an option not given is absent from ``CommandLine.values`` (it does not override lower
sources); ``--help`` asks the worker registry for the names it lists, lazily.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

from forkhorn import __version__
from forkhorn.config.setting import SECTIONS
from forkhorn.config.settings import GUNICORN_ONLY, SETTINGS

PROG = "forkhorn"
USAGE = "%(prog)s [OPTIONS] [APP_MODULE]"
VERSION = f"{PROG} (version {__version__})"
CMD_ARGS_ENV = "FORKHORN_CMD_ARGS"
#: read instead when ``FORKHORN_CMD_ARGS`` is not set, so a Gunicorn deployment's
#: environment (Docker images, buildpacks) keeps working unchanged
GUNICORN_CMD_ARGS_ENV = "GUNICORN_CMD_ARGS"

#: given the partly parsed namespace, the text listing the worker names for -k's help
WorkerDescriber = Callable[[argparse.Namespace], str]


class UsageError(Exception):
    """A command-line problem found after parsing (exit code 2)."""


class CommandLine:
    """What one parse produced: raw setting values and the non-setting switches."""

    # A plain class, not a dataclass: a dataclass compiles generated methods at import time.
    def __init__(
        self,
        values: dict[str, Any] | None = None,
        app_uri: str | None = None,
        plugins: list[str] | None = None,
        list_workers: bool = False,
        ignored: list[str] | None = None,
    ) -> None:
        self.values: dict[str, Any] = {} if values is None else values
        self.app_uri = app_uri
        self.plugins: list[str] = [] if plugins is None else plugins
        self.list_workers = list_workers
        #: Gunicorn options forkhorn does not implement, as given (``GUNICORN_ONLY``)
        self.ignored: list[str] = [] if ignored is None else ignored


class ForkhornArgumentParser(argparse.ArgumentParser):
    """argparse, with errors prefixed by where the arguments came from."""

    origin = ""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {self.origin}{message}\n")


class _PidOrPluginAction(argparse.Action):
    """``-p FILE`` is Gunicorn's pid file; ``-p no:NAME`` blocks a plugin (pytest's way)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        if isinstance(values, str) and values.startswith("no:") and option_string == "-p":
            _append(namespace, "plugins", values)
        else:
            setattr(namespace, self.dest, values)


class _IgnoredOptionAction(argparse.Action):
    """A Gunicorn option for a feature forkhorn does not have: noted, to be warned about."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        _append(namespace, "ignored", option_string)


def _append(namespace: argparse.Namespace, name: str, value: Any) -> None:
    """Add ``value`` to the list ``namespace.<name>``, made on first use (a new list: the
    parser's default is never mutated)."""
    setattr(namespace, name, [*(getattr(namespace, name, None) or []), value])


class _HelpAction(argparse.Action):
    """``--help``: fill -k's help with the registered worker names, then print."""

    def __init__(
        self,
        option_strings: Sequence[str],
        dest: str,
        describe: WorkerDescriber | None,
        help: str | None = None,
    ) -> None:
        super().__init__(
            option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, nargs=0, help=help
        )
        self.describe = describe

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        if self.describe is not None:
            names = self.describe(namespace)
            for action in parser._actions:
                if action.dest == "worker_class":
                    action.help = f"The worker class: {names}, or pkg.module:Class. [sync]"
        parser.print_help()
        parser.exit(0)


def build_parser(describe_workers: WorkerDescriber | None = None) -> ForkhornArgumentParser:
    parser = ForkhornArgumentParser(
        prog=PROG,
        usage=USAGE,
        add_help=False,
        description="A pre-fork WSGI HTTP server: Gunicorn-compatible, strict, fast.",
        epilog=f"Options may also be given in ${CMD_ARGS_ENV} (else ${GUNICORN_CMD_ARGS_ENV}); "
        "a config file "
        "(-c, else ./forkhorn.conf.py or ./gunicorn.conf.py) sets any setting.",
    )
    general = parser.add_argument_group("General")
    general.add_argument(
        "-h",
        "--help",
        action=_HelpAction,
        describe=describe_workers,
        help="show this help and exit",
    )
    general.add_argument(
        "-v", "--version", action="version", version=VERSION, help="show the version and exit"
    )
    general.add_argument(
        "--list-workers",
        action="store_true",
        default=argparse.SUPPRESS,
        help="list the worker classes (name, distribution, version) and exit",
    )
    general.add_argument(
        "--plugin",
        action="append",
        dest="plugins",
        metavar="[no:]NAME",
        default=argparse.SUPPRESS,
        help="load the plugin NAME (an entry point or a module) even with "
        "autoload off; no:NAME blocks it (as does -p no:NAME)",
    )
    parser.add_argument(
        "app_uri",
        nargs="?",
        metavar="APP_MODULE",
        default=argparse.SUPPRESS,
        help="the WSGI app, MODULE:VARIABLE or MODULE:factory(args)",
    )
    groups = {section: parser.add_argument_group(section) for section in SECTIONS}
    for setting in SETTINGS:
        if not setting.flags:
            continue
        kwargs: dict[str, Any] = {
            "dest": setting.name,
            "default": argparse.SUPPRESS,
            "help": _help_text(setting.summary(), setting.default),
        }
        if setting.name == "pidfile":
            kwargs["action"] = _PidOrPluginAction
        elif setting.action is not None:
            kwargs["action"] = setting.action
        if setting.meta and setting.action not in ("store_true", "store_const"):
            kwargs["metavar"] = setting.meta
        if setting.nargs is not None:
            kwargs["nargs"] = setting.nargs
        if setting.const is not None or setting.action == "store_const":
            kwargs["const"] = setting.const
        groups[setting.section].add_argument(*setting.flags, **kwargs)
    for option in GUNICORN_ONLY.values():
        if option is None:
            continue
        flag, takes_value = option
        parser.add_argument(
            flag,
            action=_IgnoredOptionAction,
            nargs=None if takes_value else 0,
            dest="ignored",
            default=argparse.SUPPRESS,
            help=argparse.SUPPRESS,
        )
    return parser


def _help_text(summary: str, default: Any) -> str:
    text = summary.replace("``", "")
    if isinstance(default, list):
        default = ",".join(default)
    if default not in ("", None, {}) and not isinstance(default, dict):
        text = f"{text} [{default}]"
    return text.replace("%", "%%")


def parse_command_line(
    parser: ForkhornArgumentParser, args: Sequence[str], origin: str = ""
) -> CommandLine:
    """Parse one source of arguments (argv or the environment's); argparse exits 2 on errors."""
    parser.origin = origin
    try:
        namespace = parser.parse_args(list(args))
    finally:
        parser.origin = ""
    values = vars(namespace)
    return CommandLine(
        app_uri=values.pop("app_uri", None),
        plugins=list(values.pop("plugins", None) or []),
        list_workers=bool(values.pop("list_workers", False)),
        ignored=values.pop("ignored", None),
        values=values,
    )


def cmd_args_variable(environ: Mapping[str, str]) -> str:
    """The variable whose options this run reads: ``FORKHORN_CMD_ARGS`` when it is set
    (even empty), else ``GUNICORN_CMD_ARGS`` when that one is. Never both: options meant
    for one server are not mixed with the other's."""
    if CMD_ARGS_ENV not in environ and GUNICORN_CMD_ARGS_ENV in environ:
        return GUNICORN_CMD_ARGS_ENV
    return CMD_ARGS_ENV


def split_cmd_args(text: str, variable: str = CMD_ARGS_ENV) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"{variable}: {exc}") from None
