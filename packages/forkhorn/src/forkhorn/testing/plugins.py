"""What a worker plugin's entry-point module registers, seen from a fresh interpreter.

``probe_registration`` imports the plugin module in a new process (nothing another test
imported can hide an import there), registers it the way the entry point would, collects
the workers and reports the entry for one name, plus which of the given modules got
imported on the way: a plugin module must name its worker lazily (``"pkg.mod:Class"``)
and leave its library out of the master.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from forkhorn.testing.servers import server_env

_PROBE = """
import importlib, json, sys
from forkhorn.plugins.manager import build_plugin_manager
from forkhorn.plugins.registry import collect_workers

plugin_module, worker_name, watched = {args!r}
pm = build_plugin_manager(autoload=False)
pm.register(importlib.import_module(plugin_module), name=worker_name)
entry = collect_workers(pm).get(worker_name)
print(json.dumps({{
    "target": entry.target,
    "summary": entry.summary,
    "loaded": sorted(m for m in sys.modules if m in watched or m.split(".")[0] in watched),
}}))
"""


def probe_registration(
    plugin_module: str, worker_name: str, watched: Sequence[str], *paths: str | Path
) -> dict[str, Any]:
    """Register ``plugin_module`` in a fresh interpreter (``paths`` first on its
    ``PYTHONPATH``) and return ``worker_name``'s ``target`` and ``summary``, and
    ``loaded``: the modules imported by then that are in ``watched`` or under a top-level
    package named there."""
    source = _PROBE.format(args=(plugin_module, worker_name, list(watched)))
    out = subprocess.run(
        [sys.executable, "-c", source],
        env=server_env(*(str(path) for path in paths)),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return json.loads(out)  # type: ignore[no-any-return]
