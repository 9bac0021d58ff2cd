"""``import_object``: the one reading of ``module:attr`` / ``module.attr`` strings."""

from __future__ import annotations

import collections
import os.path
import sys
from pathlib import Path

import pytest
from forkhorn.config.imports import ObjectImportError, ObjectPathError, import_object


def test_colon_and_dotted_paths() -> None:
    assert import_object("os.path:exists") is os.path.exists
    assert import_object("os.path.exists") is os.path.exists
    # after a colon the attribute may be dotted; without one only the last part is
    assert import_object("collections:OrderedDict.fromkeys") == collections.OrderedDict.fromkeys


@pytest.mark.parametrize("path", ["nodots", "os.", ".exists", ":exists", "os:"])
def test_a_string_naming_no_module_and_attribute(path: str) -> None:
    with pytest.raises(ObjectPathError, match="is not a 'module:name' or dotted path"):
        import_object(path)


def test_a_module_that_raises_is_chained_to_its_exception(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "raising_target_mod.py").write_text("raise RuntimeError('boom')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(ObjectImportError) as info:
            import_object("raising_target_mod:thing")
    finally:
        sys.modules.pop("raising_target_mod", None)
    assert str(info.value) == "import of 'raising_target_mod' failed (RuntimeError: boom)"
    assert isinstance(info.value.__cause__, RuntimeError)
    assert not isinstance(info.value, ObjectPathError)


def test_a_missing_module_or_attribute() -> None:
    with pytest.raises(ObjectImportError, match="import of 'no_such_mod_xyz' failed") as info:
        import_object("no_such_mod_xyz.thing")
    assert isinstance(info.value.__cause__, ModuleNotFoundError)
    with pytest.raises(ObjectImportError, match="module 'os' has no attribute 'nope'") as info:
        import_object("os:nope")
    assert isinstance(info.value.__cause__, AttributeError)
