"""The entry-point module registers ``eventlet`` without importing eventlet (checked in a fresh
interpreter, so nothing imported by other tests can hide an import)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from forkhorn.testing.servers import server_env

SRC = Path(__file__).resolve().parents[1] / "src"

PROBE = """
import json, sys
import forkhorn_eventlet.plugin as plugin
from forkhorn.plugins.manager import build_plugin_manager
from forkhorn.plugins.registry import collect_workers

pm = build_plugin_manager(autoload=False)
pm.register(plugin, name="eventlet")
registry = collect_workers(pm)
entry = registry.get("eventlet")
print(json.dumps({
    "target": entry.target,
    "summary": entry.summary,
    "loaded": sorted(m for m in sys.modules if m.split(".")[0] in ("eventlet", "greenlet")
                     or m == "forkhorn_eventlet.worker"),
}))
"""


def run_probe() -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=server_env(str(SRC)),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def test_importing_the_plugin_leaves_eventlet_out_of_sys_modules() -> None:
    assert run_probe()["loaded"] == []


def test_the_plugin_registers_a_lazy_target() -> None:
    result = run_probe()
    assert result["target"] == "forkhorn_eventlet.worker:EventletWorker"
    assert result["summary"]
