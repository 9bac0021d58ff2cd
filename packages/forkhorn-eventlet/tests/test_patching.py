"""eventlet greens the master first thing: before ``logging``, ``ssl``, locks and the app.

The bootstrap resolves the worker class and calls ``EventletWorker.patch_master`` before it
sets up logging or runs the config file; this is checked on a real server by recording
``sys.modules`` at the moment the patch runs, and by eventlet's own check for locks created
before it ("N RLock(s) were not greened", which eventlet skips under pytest: the servers
run without ``PYTEST_CURRENT_TEST``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import server_env

#: wraps ``patching.patch_master`` to record, for each call, what the process had imported
#: before it and whose ``socket.socket`` it left (eventlet's: the master is greened), then
#: runs the real bootstrap (``forkhorn.__main__.main``) with the given arguments
LAUNCHER = """
import json, os, sys
import forkhorn_eventlet.patching as patching

RECORD = os.environ["FORKHORN_TEST_RECORD"]
original = patching.patch_master

def recording():
    modules = sorted(sys.modules)
    original()
    import socket
    with open(RECORD, "a") as out:
        out.write(json.dumps({"pid": os.getpid(), "modules": modules,
                              "socket": socket.socket.__module__}) + chr(10))

patching.patch_master = recording
from forkhorn.__main__ import main
main()
"""


def loaded(prefix: str, code: str) -> list[str]:
    probe = (
        code
        + f"\nimport json, sys\nprint(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == {prefix!r})))"
    )
    result = subprocess.run([sys.executable, "-c", probe], env=server_env(), capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_importing_the_worker_class_imports_no_eventlet() -> None:
    assert loaded("eventlet", "import forkhorn_eventlet.worker") == []


def _launch(tmp_path: Path, start_server: Any, *args: str) -> tuple[Any, dict[str, Any]]:
    record = tmp_path / "record.json"
    launcher = tmp_path / "launcher.py"
    launcher.write_text(LAUNCHER)
    server = start_server(*args, env={"FORKHORN_TEST_RECORD": str(record)}, launcher=launcher)
    patches = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(patches) == 1, patches
    return server, patches[0]


def test_the_master_is_greened_before_logging_ssl_and_the_app(
    tmp_path: Path, start_server: Any
) -> None:
    server, record = _launch(tmp_path, start_server, "-w", "2")
    assert record["pid"] == server.proc.pid
    assert record["socket"].startswith("eventlet."), record["socket"]
    for module in ("logging", "ssl", "eventlet", "forkhorn.testing.apps"):
        assert module not in record["modules"], module
    assert server.get_json("/modules")["eventlet"] is True
    assert "not greened" not in server.log


def test_preloading_greens_the_master_before_the_app(tmp_path: Path, start_server: Any) -> None:
    server, record = _launch(tmp_path, start_server, "--preload")
    assert record["pid"] == server.proc.pid
    assert record["socket"].startswith("eventlet."), record["socket"]
    assert "forkhorn.testing.apps" not in record["modules"]
    assert "logging" not in record["modules"]
    assert server.get_json("/modules")["eventlet"] is True
    assert "not greened" not in server.log
