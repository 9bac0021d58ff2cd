"""The entry-point module registers ``gevent`` without importing gevent (checked in a fresh
interpreter, so nothing imported by other tests can hide an import)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from forkhorn.testing.plugins import probe_registration

SRC = Path(__file__).resolve().parents[1] / "src"


def probe() -> dict[str, Any]:
    watched = ("gevent", "greenlet", "forkhorn_gevent.worker")
    return probe_registration("forkhorn_gevent.plugin", "gevent", watched, SRC)


def test_importing_the_plugin_leaves_gevent_out_of_sys_modules() -> None:
    assert probe()["loaded"] == []


def test_the_plugin_registers_a_lazy_target() -> None:
    result = probe()
    assert result["target"] == "forkhorn_gevent.worker:GeventWorker"
    assert result["summary"]
