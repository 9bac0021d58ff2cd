"""Generate the reference pages from the code, where the code is the source of truth.

``docs/reference/settings.md`` comes from the settings table (``forkhorn.config.settings``),
``docs/reference/hooks.md`` from the hookspec docstrings. Run by ``nox -s docs`` before the
site is built; the generated files are not committed.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

from forkhorn.config.settings import SETTINGS
from forkhorn.plugins import hookspec

REFERENCE = Path(__file__).resolve().parent / "reference"


def _default_text(value: object) -> str:
    if value in (None, [], {}, ""):
        return "(none)" if value is None else f"``{value!r}``"
    return f"``{value!r}``"


def settings_page() -> str:
    lines = [
        "# Settings",
        "",
        "Every setting, generated from the settings table. Set them in a config file",
        "(`forkhorn.conf.py`, or `-c FILE`; Gunicorn's `gunicorn.conf.py` works unchanged), in",
        "`FORKHORN_CMD_ARGS`, or on the command line; later sources win in that order.",
        "",
    ]
    sections: dict[str, list] = {}
    for setting in SETTINGS:
        sections.setdefault(setting.section, []).append(setting)
    for section, settings in sections.items():
        lines += [f"## {section}", ""]
        for setting in settings:
            lines += [f"### `{setting.name}`", ""]
            if setting.flags:
                flags = ", ".join(f"`{flag}`" for flag in setting.flags)
                meta = f" {setting.meta}" if setting.meta and setting.action != "store_true" else ""
                lines.append(f"**Command line:** {flags}{meta}  ")
            else:
                lines.append("**Command line:** (config file only)  ")
            if setting.env:
                lines.append(f"**Environment:** `{setting.env}`  ")
            lines.append(f"**Default:** {_default_text(setting.default).replace('``', '`')}")
            lines += ["", inspect.cleandoc(setting.doc).replace("``", "`"), ""]
    return "\n".join(lines)


def hooks_page() -> str:
    lines = [
        "# Hooks",
        "",
        "Every hook, generated from `forkhorn/plugins/hookspec.py`. A plugin implements",
        "`forkhorn_<name>` with `@hookimpl`; a config file defines a function `<name>` with the",
        "same arguments, as in Gunicorn.",
        "",
    ]
    for name, function in inspect.getmembers(hookspec, inspect.isfunction):
        if not name.startswith("forkhorn_"):
            continue
        signature = str(inspect.signature(function)).replace("'", "")
        lines += [f"## `{name}`", "", f"```python\n{name}{signature}\n```", ""]
        lines += [inspect.cleandoc(function.__doc__ or ""), ""]
    return "\n".join(lines)


def main() -> int:
    REFERENCE.mkdir(exist_ok=True)
    (REFERENCE / "settings.md").write_text(settings_page())
    (REFERENCE / "hooks.md").write_text(hooks_page())
    return 0


if __name__ == "__main__":
    sys.exit(main())
