"""The shape of one setting. The table itself lives in ``settings.py``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


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
    #: argparse action: None (takes a value), "store_true", "append"
    action: str | None = None
    #: placeholder in --help
    meta: str | None = None
    #: one-line summary for --help (defaults to the doc's first sentence)
    short: str = ""
    #: environment variable read besides the flags (e.g. WEB_CONCURRENCY for workers)
    env: str | None = None
    #: argparse nargs ("?", "*") where the flag's value is optional
    nargs: str | None = None
    const: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        if self.short:
            return self.short
        first = self.doc.strip().split("\n\n")[0].replace("\n", " ")
        return first.split(". ")[0].rstrip(".") + "."
