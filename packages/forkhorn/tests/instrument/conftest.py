"""Real-server fixtures for the metrics tests: the arbiter tests' ``start_server`` (loaded
from ``tests/arbiter/conftest.py``, not copied) serving ``instrument_apps``."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

HERE = Path(__file__).parent
SRC = HERE.parents[1] / "src"
SUPPORT_NAME = "forkhorn_tests_arbiter_support"


def arbiter_support() -> ModuleType:
    module = sys.modules.get(SUPPORT_NAME)
    if module is None:
        spec = importlib.util.spec_from_file_location(
            SUPPORT_NAME, HERE.parent / "arbiter" / "conftest.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[SUPPORT_NAME] = module
        spec.loader.exec_module(module)
    return module


support = arbiter_support()
# Re-export the arbiter helpers: test modules say ``from conftest import ...`` and, when
# several test directories run together, may get this conftest instead of the arbiter's.
globals().update({k: v for k, v in vars(support).items() if k[0] != "_" and k not in globals()})
start_server = support.start_server


@pytest.fixture
def serve(start_server: Callable[..., Any]) -> Iterator[Callable[..., Any]]:
    """``serve(*args, app=..., workers=...)``: a real server of ``instrument_apps``."""

    def start(*args: str, app: str = "instrument_apps:app", **kwargs: Any) -> Any:
        env = dict(kwargs.pop("env", None) or {})
        env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(SRC)])
        return start_server(*args, app=app, env=env, **kwargs)

    yield start
