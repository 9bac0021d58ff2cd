"""The shape of one setting. The table itself lives in ``settings.py`` (rows in ``table/``).

A row is plain data: the CLI (``forkhorn.cli``), the config-file loader
(``forkhorn.config.loader``), ``--print-config`` and the docs are generated from it, so a
setting added here exists everywhere at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: the end of a doc's first sentence: a full stop and a space, not that of "e.g." or "i.e."
_SENTENCE_END = re.compile(r"(?<!\be\.g)(?<!\bi\.e)\.\s")


@dataclass(frozen=True)
class Setting:
    #: Gunicorn's name, used in config files and --print-config
    name: str
    #: docs section ("Server Socket", "Worker Processes", "Logging", ...)
    section: str
    #: the default as a Python value (validated like any other source)
    default: Any
    #: turns a value from any source (str from CLI/env, Python object from a config file)
    #: into the canonical value, or raises ValueError/TypeError with what is accepted
    validator: Callable[[Any], Any]
    #: reference documentation (reStructuredText); a test refuses an empty one
    doc: str
    #: command-line flags, e.g. ("-b", "--bind"); empty: config file only
    flags: tuple[str, ...] = ()
    #: argparse action: None (takes a value), "store_true", "store_const", "append"
    action: str | None = None
    #: placeholder in --help
    meta: str | None = None
    #: one-line summary for --help (defaults to the doc's first sentence)
    short: str = ""
    #: environment variable that replaces the default (Gunicorn's WEB_CONCURRENCY, PORT,
    #: FORWARDED_ALLOW_IPS): it ranks below the config file and the command line
    env: str | None = None
    #: turns the environment variable's text into a value for the validator
    #: (``PORT=5000`` -> ``["0.0.0.0:5000"]`` for ``bind``); None: the text itself
    env_value: Callable[[str], Any] | None = None
    #: argparse nargs ("?", "*") where the flag's value is optional
    nargs: str | None = None
    const: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        if self.short:
            return self.short
        first = self.doc.strip().split("\n\n")[0].replace("\n", " ")
        end = _SENTENCE_END.search(first)
        return (first[: end.start()] if end else first.rstrip(".")) + "."


# Documentation sections, in the order the docs list them (Gunicorn's names).
CONFIG_FILE = "Config File"
SOCKET = "Server Socket"
WORKERS = "Worker Processes"
SECURITY = "Security"
PARSER = "HTTP Parsing"
MECHANICS = "Server Mechanics"
HOOKS = "Server Hooks"
LOGGING = "Logging"
SSL = "SSL"
PROCESS = "Process Naming"
DEBUG = "Debugging"
SECTIONS = (
    CONFIG_FILE,
    SOCKET,
    WORKERS,
    SECURITY,
    PARSER,
    MECHANICS,
    HOOKS,
    LOGGING,
    SSL,
    PROCESS,
    DEBUG,
)
