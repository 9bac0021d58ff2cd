"""The cheap entry-point scan finds what importlib.metadata finds, in the same order."""

from __future__ import annotations

import importlib.metadata
import sys
import zipfile
from pathlib import Path

import pytest
from forkhorn.plugins.entrypoints import entry_points

GROUP = "forkhorn.plugins"


def install(site: Path, dist: str, version: str, entries: str, *, egg: bool = False) -> None:
    info = site / f"{dist.replace('-', '_')}-{version}.{'egg-info' if egg else 'dist-info'}"
    info.mkdir(parents=True)
    header = "Metadata-Version: 2.1\nName: {}\nVersion: {}\nSummary: x\n\nlong text\nName: no\n"
    (info / ("PKG-INFO" if egg else "METADATA")).write_text(header.format(dist, version))
    (info / "entry_points.txt").write_text(entries)


def expected(group: str, name: str | None = None) -> list[tuple[str, str, str, str]]:
    return [
        (ep.name, ep.value, dist.metadata["Name"], dist.version)
        for dist in importlib.metadata.distributions()
        for ep in dist.entry_points
        if ep.group == group and (name is None or ep.name == name)
    ]


def expected_unique(group: str) -> list[tuple[str, str, str, str]]:
    """``importlib.metadata.entry_points``: a project installed twice counts once."""
    return [
        (ep.name, ep.value, ep.dist.metadata["Name"], ep.dist.version)
        for ep in importlib.metadata.entry_points(group=group)
        if ep.dist is not None
    ]


def found(
    group: str, name: str | None = None, *, unique: bool = False
) -> list[tuple[str, str, str, str]]:
    return [
        (e.name, e.value, e.distribution, e.version)
        for e in entry_points(group, name, unique=unique)
    ]


@pytest.fixture
def sites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    first, second = tmp_path / "first", tmp_path / "second"
    install(first, "fh-one", "1.0", f"[{GROUP}]\none = fh_one.plugin\n# a comment\n")
    install(
        first,
        "Fh.Two",
        "2.0b1",
        f"[console_scripts]\nx = y:z\n\n[{GROUP}]\ntwo = fh_two:hooks [extra]\n",
        egg=True,
    )
    install(first, "fh-none", "3", "[console_scripts]\nnone = fh_none:main\n")
    install(second, "fh-one", "9.9", f"[{GROUP}]\none = shadowed:module\n")
    monkeypatch.syspath_prepend(str(second))
    monkeypatch.syspath_prepend(str(first))
    return first, second


@pytest.mark.usefixtures("sites")
def test_the_scan_matches_importlib_metadata() -> None:
    assert found(GROUP) == expected(GROUP)
    first_dir, second_dir = found(GROUP)[:2], found(GROUP)[2]
    assert set(first_dir) == {
        ("one", "fh_one.plugin", "fh-one", "1.0"),
        ("two", "fh_two:hooks [extra]", "Fh.Two", "2.0b1"),
    }
    assert second_dir == ("one", "shadowed:module", "fh-one", "9.9")
    assert found(GROUP, "two") == expected(GROUP, "two")
    assert found("console_scripts") == expected("console_scripts")


@pytest.mark.usefixtures("sites")
def test_unique_keeps_the_first_copy_as_importlib_metadata_entry_points_does() -> None:
    unique = found(GROUP, unique=True)
    assert unique == expected_unique(GROUP)
    assert ("one", "shadowed:module", "fh-one", "9.9") not in unique  # the second copy
    assert len(unique) == len(found(GROUP)) - 1


def test_load_imports_the_module_and_attribute(sites: tuple[Path, Path]) -> None:
    (sites[0] / "fh_two.py").write_text("class hooks:\n    inner = 42\n")
    try:
        (two,) = entry_points(GROUP, "two")
        assert two.load().inner == 42
        assert two._replace(value="fh_two:hooks.inner").load() == 42
    finally:
        sys.modules.pop("fh_two", None)


def test_unique_spans_zip_entries_read_through_importlib_metadata(
    sites: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # a zip on sys.path is read through importlib.metadata, the directories by the scan:
    # a project's first copy, in the zip, hides its copies in both directories
    archive = sites[0].parent / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        info = "fh_one-0.5.dist-info"
        bundle.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: fh-one\nVersion: 0.5\n")
        bundle.writestr(f"{info}/entry_points.txt", f"[{GROUP}]\none = zipped:module\n")
    monkeypatch.syspath_prepend(str(archive))
    unique = found(GROUP, unique=True)
    assert unique == expected_unique(GROUP)
    assert [e for e in unique if e[0] == "one"] == [("one", "zipped:module", "fh-one", "0.5")]
    assert len(found(GROUP)) == len(unique) + 2  # without unique: all three copies
