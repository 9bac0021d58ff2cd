"""Real-server fixtures shared by test directories other than ``arbiter/``.

The arbiter tests' ``start_server`` (``tests/arbiter/conftest.py``) is loaded once under its
own module name, not copied; ``serve_fixture`` builds a ``serve`` fixture that starts a real
server of a directory's own test apps.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

TESTS = Path(__file__).parent
SRC = TESTS.parent / "src"
SUPPORT_NAME = "forkhorn_tests_arbiter_support"


def arbiter_support() -> ModuleType:
    module = sys.modules.get(SUPPORT_NAME)
    if module is None:
        spec = importlib.util.spec_from_file_location(
            SUPPORT_NAME, TESTS / "arbiter" / "conftest.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[SUPPORT_NAME] = module
        spec.loader.exec_module(module)
    return module


def public_helpers() -> dict[str, Any]:
    """The arbiter helpers a conftest re-exports: test modules say ``from conftest import
    ...`` and, when several test directories run together, may get that conftest instead
    of the arbiter's."""
    return {k: v for k, v in vars(arbiter_support()).items() if k[0] != "_"}


def serve_fixture(app_dir: Path, default_app: str) -> Any:
    """A ``serve(*args, app=..., workers=...)`` fixture: a real server of ``default_app``,
    importable from ``app_dir``."""

    @pytest.fixture
    def serve(start_server: Callable[..., Any]) -> Iterator[Callable[..., Any]]:
        def start(*args: str, app: str = default_app, **kwargs: Any) -> Any:
            env = dict(kwargs.pop("env", None) or {})
            env["PYTHONPATH"] = os.pathsep.join([str(app_dir), str(SRC)])
            return start_server(*args, app=app, env=env, **kwargs)

        yield start

    return serve
