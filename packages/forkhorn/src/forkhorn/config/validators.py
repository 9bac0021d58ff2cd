"""Validators: each takes a value from any source and returns the canonical value.

Strings come from the command line and the environment, Python objects from config files;
both go through the same function. A validator raises ``ValueError`` with a message saying
what is accepted; ``Config.set`` turns that into one line naming the setting.

Invariants: validators are pure apart from reading the file system or the user database
(``directory``, ``existing_files``, ``user_id``), they never import ``ssl`` or ``logging``
(the master may not have monkey-patched yet when the table is imported), and a value that
is already canonical passes through unchanged, so validating twice is harmless.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable
from typing import Any

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


def integer(minimum: int | None = None, maximum: int | None = None) -> Callable[[Any], int]:
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
        if maximum is not None and value > maximum:
            raise ValueError(f"expected a whole number <= {maximum}, got {value}")
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
        return [value.strip()]
    return string_list(value)


def choice(*choices: str) -> Callable[[Any], str]:
    def validate(value: Any) -> str:
        if not isinstance(value, str) or value.strip().lower() not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}; got {value!r}")
        return value.strip().lower()

    return validate


def octal_umask(value: Any) -> int:
    """Gunicorn's auto-int: ``0o22``, ``0x12``, ``18``, and a leading ``0`` meaning octal."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) > 1 and text[0] == "0" and text[1].isdigit():
                result = int(text, 8)
            else:
                result = int(text, 0)
        except ValueError:
            pass
        else:
            if result >= 0:
                return result
    raise ValueError(f"expected a umask such as 0o22 or 022, got {value!r}")


def directory(value: Any) -> str | None:
    """An existing directory, made absolute against the current directory; None: unset."""
    if value is None:
        return None
    path = string(value)
    if not path:
        raise ValueError("expected a directory")
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.isdir(path):
        raise ValueError(f"expected an existing directory, {path!r} is not one")
    return path


def dict_of_strings(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        return dict(value)
    raise ValueError(f"expected a dict of strings, got {value!r}")


def header_dict(value: Any) -> dict[str, str]:
    """Header name -> value; names are upper-cased because matching is case-insensitive."""
    return {name.strip().upper(): text.strip() for name, text in dict_of_strings(value).items()}


def any_dict(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    raise ValueError(f"expected a dict, got {value!r}")


def class_or_string(value: Any) -> Any:
    """A class, or a string naming one (resolved later, when the class is needed)."""
    if isinstance(value, type):
        return value
    result = string(value)
    if not result:
        raise ValueError(
            f"expected a class or a name such as 'sync' or 'pkg.mod:Class', got {value!r}"
        )
    return result


def peer_list(value: Any) -> list[str]:
    """IP addresses and networks (``10.0.0.0/8``), ``*`` for any peer, ``unix`` for unix sockets."""
    import ipaddress  # only here: cheap, but not needed to import the table

    items = string_list(value)
    for item in items:
        if item in ("*", "unix"):
            continue
        try:
            ipaddress.ip_network(item)
        except ValueError:
            raise ValueError(
                f"expected IP addresses or networks (e.g. 127.0.0.1, 10.0.0.0/8) or '*', "
                f"got {item!r}"
            ) from None
    return items


def env_list(value: Any) -> list[str]:
    """``KEY=VALUE`` strings (``-e`` / ``raw_env``)."""
    items = appended_list(value)
    for item in items:
        key, sep, _ = item.partition("=")
        if not sep or not key:
            raise ValueError(f"expected KEY=VALUE, got {item!r}")
    return items


def bind_list(value: Any) -> list[str]:
    """Addresses: ``HOST``, ``HOST:PORT``, ``[IPV6]:PORT``, ``unix:PATH``, ``fd://FD``."""
    items = appended_list(value)
    if not items:
        raise ValueError("expected at least one address to bind")
    for item in items:
        check_bind_address(item)
    return items


def check_bind_address(address: str) -> None:
    if address.startswith("unix:"):
        if not address[5:].lstrip("/") and address[5:] != "/":
            raise ValueError(f"expected unix:PATH, got {address!r}")
        return
    if address.startswith("fd://"):
        if not address[5:].isdigit():
            raise ValueError(f"expected fd://N with a file descriptor number, got {address!r}")
        return
    netloc = address[len("tcp://") :] if address.startswith("tcp://") else address
    if netloc.startswith("["):
        host, bracket, rest = netloc[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"expected [IPV6]:PORT, got {address!r}")
        port = rest[1:]
    else:
        host, _, port = netloc.rpartition(":") if ":" in netloc else (netloc, "", "")
        if ":" in host:
            raise ValueError(f"expected [IPV6]:PORT for an IPv6 address, got {address!r}")
    if port and (not port.isdigit() or int(port) > 65535):
        raise ValueError(f"expected a port number 0-65535 in {address!r}")


def user_id(value: Any) -> int | None:
    """A user name or uid, resolved to the uid; None: keep the current user."""
    return _account_id(value, "user")


def group_id(value: Any) -> int | None:
    """A group name or gid, resolved to the gid; None: keep the current group."""
    return _account_id(value, "group")


def _account_id(value: Any, kind: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return int(text)
        try:
            if kind == "user":
                import pwd

                return pwd.getpwnam(text).pw_uid
            import grp

            return grp.getgrnam(text).gr_gid
        except KeyError:
            raise ValueError(
                f"expected an existing {kind} name or a numeric id, got {text!r}"
            ) from None
    raise ValueError(f"expected a {kind} name or a numeric id, got {value!r}")


def existing_files(value: Any) -> list[str]:
    """Files that must exist, or glob patterns (kept as given: the reloader re-expands them)."""
    items = appended_list(value)
    for item in items:
        if glob.has_magic(item):
            continue
        if not os.path.exists(item):
            raise ValueError(f"expected existing files or glob patterns, {item!r} does not exist")
    return items


def proxy_protocol(value: Any) -> str:
    """Gunicorn's spellings, normalised to ``off``, ``v1``, ``v2`` or ``auto``."""
    if value is None or value is False:
        return "off"
    if value is True:
        return "auto"
    words = {
        "off": "off",
        "false": "off",
        "0": "off",
        "none": "off",
        "auto": "auto",
        "true": "auto",
        "1": "auto",
        "v1": "v1",
        "v2": "v2",
    }
    if isinstance(value, str) and value.strip().lower() in words:
        return words[value.strip().lower()]
    raise ValueError(f"expected one of off, v1, v2, auto (or true/false); got {value!r}")


def statsd_address(value: Any) -> str | None:
    """``HOST:PORT`` (port defaults to 8125) or ``unix:PATH``; None: statsd off."""
    text = string(value)
    if not text:
        return None
    if text.startswith("unix:"):
        return text
    host, sep, port = text.rpartition(":")
    if not sep:
        return f"{text}:8125"
    if not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected HOST:PORT or unix:PATH, got {value!r}")
    return text


def metrics_address(value: Any) -> str | None:
    """``HOST:PORT``, ``[IPV6]:PORT`` or ``unix:PATH``; empty or None: the endpoint is off."""
    text = string(value)
    if not text:
        return None
    if text.startswith("fd://"):
        raise ValueError(f"expected HOST:PORT or unix:PATH, got {value!r}")
    check_bind_address(text)
    if not text.startswith("unix:") and not text.rpartition(":")[2].isdigit():
        raise ValueError(f"expected HOST:PORT with a port number, got {value!r}")
    return text


def ssl_version(value: Any) -> int | str:
    """Accepted for Gunicorn compatibility and ignored (as Gunicorn does): use ``ssl_context``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip():
        text = value.strip()
        return int(text) if text.isdigit() else text
    raise ValueError(f"expected a protocol name such as TLS or its number, got {value!r}")


_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_MIN_MEMORY = 1024 * 1024  # a smaller non-zero limit is surely a unit mistake


def memory_size(value: Any) -> int:
    """A memory size in bytes: an integer (bytes) or ``512M``, ``1.5G``, ``800MiB``, ``64MB``
    (K/M/G/T are powers of 1024); 0, ``off`` or None: no limit. A non-zero size under 1 MiB
    is refused (``512`` is bytes: write ``512M``)."""
    if value is None or value is False:
        return 0
    if isinstance(value, bool):
        raise ValueError(f"expected a size such as 512M, got {value!r}")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if text in ("", "0", "off", "none", "false"):
            return 0
        unit = text.rstrip("ib").rstrip("b") if text.endswith("b") else text
        number, suffix = (unit[:-1], unit[-1]) if unit[-1:] in _SIZE_UNITS else (unit, "")
        try:
            amount = float(number) if "." in number else int(number, 10)
        except ValueError:
            raise ValueError(f"expected a size such as 512M or 2G, got {value!r}") from None
        size = int(amount * _SIZE_UNITS[suffix])
    else:
        raise ValueError(f"expected a size such as 512M, got {value!r}")
    if size < 0:
        raise ValueError(f"expected a size >= 0, got {value!r}")
    if 0 < size < _MIN_MEMORY:
        raise ValueError(f"{value!r} is under 1 MiB (a number alone is bytes): write e.g. 512M")
    return size
