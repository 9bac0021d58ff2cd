"""Validators: each takes a value from any source and returns the canonical value.

Strings come from the command line and the environment, Python objects from config files;
both go through the same function. A validator raises ``ValueError`` with a message saying
what is accepted; ``Config.set`` turns that into one line naming the setting.
"""

from __future__ import annotations

import os
import shlex
from typing import Any, Callable

TRUE_WORDS = {"true", "1", "yes", "y", "on"}
FALSE_WORDS = {"false", "0", "no", "n", "off", ""}


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, int):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise ValueError(f"expected true or false, got {value!r}")


def integer(minimum: int | None = None) -> Callable[[Any], int]:
    def validate(value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError(f"expected a whole number, got {value!r}")
        if isinstance(value, str):
            text = value.strip()
            if not text.lstrip("-").isdigit() or not text.isascii():
                raise ValueError(f"expected a whole number, got {value!r}")
            value = int(text, 10)
        if not isinstance(value, int):
            raise ValueError(f"expected a whole number, got {value!r}")
        if minimum is not None and value < minimum:
            raise ValueError(f"expected a whole number >= {minimum}, got {value}")
        return value

    validate.__doc__ = f"integer >= {minimum}" if minimum is not None else "integer"
    return validate


positive_int = integer(0)


def number(minimum: float = 0) -> Callable[[Any], float]:
    def validate(value: Any) -> float:
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        try:
            result = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"expected a number, got {value!r}") from None
        if result != result or result < minimum:
            raise ValueError(f"expected a number >= {minimum}, got {value!r}")
        return result

    return validate


def string(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value.strip()


def string_list(value: Any) -> list[str]:
    """A list of strings; a single string is split on commas."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, (list, tuple)):
        items = []
        for item in value:
            if not isinstance(item, str):
                raise ValueError(f"expected a list of strings, got {value!r}")
            items.append(item.strip())
        return items
    raise ValueError(f"expected a list of strings, got {value!r}")


def appended_list(value: Any) -> list[str]:
    """A list built from repeated flags (``-b a -b b``); a string is one item."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return string_list(value)


def choice(*choices: str) -> Callable[[Any], str]:
    def validate(value: Any) -> str:
        if not isinstance(value, str) or value.strip().lower() not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}; got {value!r}")
        return value.strip().lower()

    return validate


def octal_umask(value: Any) -> int:
    """Gunicorn's auto-int: ``0o22``, ``0x12``, ``18``, and a leading ``0`` meaning octal."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) > 1 and text[0] == "0" and text[1].isdigit():
                return int(text, 8)
            return int(text, 0)
        except ValueError:
            pass
    raise ValueError(f"expected a umask such as 0o22 or 022, got {value!r}")


def directory(value: Any) -> str:
    path = string(value)
    if not path:
        raise ValueError("expected a directory")
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.isdir(path):
        raise ValueError(f"directory {path!r} does not exist")
    return path


def dict_of_strings(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    raise ValueError(f"expected a dict of strings, got {value!r}")


def any_dict(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    raise ValueError(f"expected a dict, got {value!r}")


def command_line(value: Any) -> list[str]:
    if isinstance(value, str):
        return shlex.split(value)
    return string_list(value)


def callable_or_none(value: Any) -> Any:
    if value is None or callable(value):
        return value
    raise ValueError(f"expected a callable, got {value!r}")
