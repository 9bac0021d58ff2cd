"""The entry-point module registers ``eventlet`` without importing eventlet (checked in a fresh
interpreter, so nothing imported by other tests can hide an import)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from forkhorn.testing.plugins import probe_registration

SRC = Path(__file__).resolve().parents[1] / "src"


def probe() -> dict[str, Any]:
    watched = ("eventlet", "greenlet", "forkhorn_eventlet.worker")
    return probe_registration("forkhorn_eventlet.plugin", "eventlet", watched, SRC)


def test_importing_the_plugin_leaves_eventlet_out_of_sys_modules() -> None:
    assert probe()["loaded"] == []


def test_the_plugin_registers_a_lazy_target() -> None:
    result = probe()
    assert result["target"] == "forkhorn_eventlet.worker:EventletWorker"
    assert result["summary"]
