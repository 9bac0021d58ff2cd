"""The entry points of one group, found without ``importlib.metadata``.

Why: ``importlib.metadata`` costs every start-up its import (it pulls in ``email``,
``zipfile``, ``pathlib``, ``csv``...) and pluggy's scan builds a ``Distribution`` for every
installed package. Here each ``sys.path`` directory is listed once, only the
``entry_points.txt`` of its ``*.dist-info``/``*.egg-info`` (``EGG-INFO`` in an ``.egg``) are
read, and the name and version (the ``METADATA``/``PKG-INFO`` headers) only of the few
distributions that declare the group.

Invariants: the order is ``importlib.metadata.distributions()``'s (``sys.path`` order, then
directory order grouped by project name), so of two distributions claiming one name the
first named is the one ``importlib.metadata`` finds first. A ``sys.path`` entry that is not
a directory (a zip archive) and any extra distribution finder on ``sys.meta_path`` are
left to ``importlib.metadata`` itself, so nothing it would find is missed.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Iterator
from typing import Any, NamedTuple

#: ``module[:attr]`` with optional ``[extras]`` (importlib.metadata's EntryPoint.pattern)
_VALUE = re.compile(r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$")
_INFO_SUFFIXES = (".dist-info", ".egg-info")


# A NamedTuple, not a dataclass: a dataclass compiles generated methods at import time.
class EntryPoint(NamedTuple):
    name: str
    value: str
    group: str
    #: the declaring distribution's ``Name`` and ``Version`` headers
    distribution: str
    version: str

    def load(self) -> Any:
        """The object named by ``value`` (importlib.metadata's ``EntryPoint.load``)."""
        match = _VALUE.match(self.value)
        if match is None:
            raise ValueError(f"entry point {self.name!r}: malformed value {self.value!r}")
        found: Any = importlib.import_module(match.group("module"))
        for part in filter(None, (match.group("attr") or "").split(".")):
            found = getattr(found, part)
        return found


def entry_points(
    group: str, name: str | None = None, *, unique: bool = False
) -> Iterator[EntryPoint]:
    """Every entry point of ``group`` (named ``name``, if given), in distribution order.

    ``unique``: a project installed more than once counts once, its first copy, as with
    ``importlib.metadata.entry_points`` (``distributions()``, which this follows by
    default, lists every copy)."""
    seen: set[str] | None = set() if unique else None
    if _other_distribution_finders():
        yield from _from_importlib_metadata(group, name, seen)
        return
    for entry in sys.path:
        directory = entry or "."
        try:
            children = os.listdir(directory)
        except NotADirectoryError:
            yield from _from_importlib_metadata(group, name, seen, path=[entry])
            continue
        except OSError:  # missing or unreadable: importlib.metadata skips it too
            continue
        for project, info in _infos(directory, children):
            if seen is None or _first_copy(seen, project):
                yield from _declared(os.path.join(directory, info), group, name)


def _first_copy(seen: set[str], project: str) -> bool:
    """True the first time ``project`` is met (then remembered), False for a later copy."""
    if project in seen:
        return False
    seen.add(project)
    return True


def _normalized(project: str) -> str:
    """A project name as packaging compares them (``Fh.Two`` and ``fh-two`` are one)."""
    return re.sub(r"[-_.]+", "_", project).lower()


def _project(filename: str) -> str:
    """The normalized project of a metadata directory or an ``.egg`` from its name
    (``Fh.Two-2.0.dist-info``, ``fh_two-2.0-py3.11.egg``: ``fh_two``)."""
    return _normalized(filename.rpartition(".")[0].partition("-")[0])


def _infos(directory: str, children: list[str]) -> list[tuple[str, str]]:
    """(project, metadata directory) among ``children``, in importlib.metadata's order:
    grouped by normalized project name, then an ``EGG-INFO`` when ``directory`` is an
    ``.egg``."""
    by_name: dict[str, list[str]] = {}
    eggs = []
    is_egg = directory.lower().endswith(".egg")
    for child in children:
        low = child.lower()
        if low.endswith(_INFO_SUFFIXES):
            by_name.setdefault(_project(child), []).append(child)
        elif is_egg and low == "egg-info":
            eggs.append((_project(os.path.basename(os.path.normpath(directory))), child))
    return [(project, info) for project, infos in by_name.items() for info in infos] + eggs


def _declared(info: str, group: str, name: str | None) -> Iterator[EntryPoint]:
    try:
        with open(os.path.join(info, "entry_points.txt"), encoding="utf-8") as file:
            text = file.read()
    except OSError:  # no entry points, or an egg-info that is a single file
        return
    header = f"[{group}]"
    if header not in text:
        return
    found = [(n, v) for n, v in _section(text, header) if name is None or n == name]
    if not found:
        return
    distribution, version = _name_and_version(info)
    for ep_name, value in found:
        yield EntryPoint(ep_name, value, group, distribution, version)


def _section(text: str, header: str) -> Iterator[tuple[str, str]]:
    """``name = value`` pairs of one ``[section]`` (comments and blank lines skipped)."""
    inside = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            inside = line == header
            continue
        if inside:
            key, sep, value = line.partition("=")
            if sep:
                yield key.strip(), value.strip()


def _name_and_version(info: str) -> tuple[str, str]:
    """The ``Name``/``Version`` headers (the part of the metadata before the first blank
    line), read without the ``email`` parser."""
    headers: dict[str, str] = {}
    for filename in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(info, filename), encoding="utf-8") as file:
                for line in file:
                    if not line.strip():
                        break
                    key, sep, value = line.partition(":")
                    if sep and key in ("Name", "Version"):
                        headers.setdefault(key, value.strip())
            break
        except OSError:
            continue
    return headers.get("Name", ""), headers.get("Version", "")


def _other_distribution_finders() -> bool:
    """True when something besides the path finder can report distributions."""
    from importlib.machinery import PathFinder

    return any(
        finder is not PathFinder and hasattr(finder, "find_distributions")
        for finder in sys.meta_path
    )


def _from_importlib_metadata(
    group: str, name: str | None, seen: set[str] | None, path: list[str] | None = None
) -> Iterator[EntryPoint]:
    import importlib.metadata

    found = (
        importlib.metadata.distributions()
        if path is None
        else importlib.metadata.distributions(path=path)
    )
    for dist in found:
        # the project name is read only when asked for: it parses the distribution's metadata
        if seen is not None and not _first_copy(seen, _normalized(str(dist.metadata["Name"]))):
            continue
        for ep in dist.entry_points:
            if ep.group == group and (name is None or ep.name == name):
                yield EntryPoint(
                    ep.name, ep.value, group, str(dist.metadata["Name"]), str(dist.version)
                )
