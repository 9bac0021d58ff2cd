"""The entry-point module registers ``gevent`` without importing gevent (checked in a fresh
interpreter, so nothing imported by other tests can hide an import)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from forkhorn.testing.plugins import probe_registration

SRC = Path(__file__).resolve().parents[1] / "src"


def probe(name: str = "gevent") -> dict[str, Any]:
    watched = ("gevent", "greenlet", "forkhorn_gevent.worker")
    return probe_registration("forkhorn_gevent.plugin", name, watched, SRC)


def test_importing_the_plugin_leaves_gevent_out_of_sys_modules() -> None:
    assert probe()["loaded"] == []


def test_the_plugin_registers_a_lazy_target() -> None:
    result = probe()
    assert result["target"] == "forkhorn_gevent.worker:GeventWorker"
    assert result["summary"]


@pytest.mark.parametrize("name", ["gevent_pywsgi", "gevent_wsgi"])
def test_gunicorns_pywsgi_names_run_the_gevent_worker(name: str) -> None:
    result = probe(name)
    assert result["target"] == "forkhorn_gevent.worker:GeventWorker"
    assert result["loaded"] == []


def test_a_server_started_with_gevent_pywsgi_is_the_gevent_worker(start_server: Any) -> None:
    server = start_server("-k", "gevent_pywsgi")  # after the fixture's -k gevent: it wins
    info = server.get_json("/modules")
    assert info["gevent"] is True and info["socket"].startswith("gevent")
    assert "Using worker: gevent_pywsgi" in server.log
