"""Monkey-patching happens once, at the right moment, and silently.

Default: the master never imports gevent; each worker patches right after fork. With
``--preload``: the master patches right after the worker class is resolved, before
``ssl``, ``logging``, the config file or the app are imported. In both modes gevent raises
no ``MonkeyPatchWarning`` (servers run with warnings as errors).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import server_env

#: wraps ``patching.patch`` to record, for the call that really patches, what the process
#: had imported before it and whose ``socket.socket`` it left (gevent's: the patch took),
#: then runs the real bootstrap (``forkhorn.__main__.main``) with the given arguments
LAUNCHER = """
import json, os, sys
import forkhorn_gevent.patching as patching

RECORD = os.environ["FORKHORN_TEST_RECORD"]
original = patching.patch

def recording():
    if patching.is_patched():
        return original()  # a worker of a patched master: nothing left to patch
    modules = sorted(sys.modules)
    original()
    import socket
    with open(RECORD, "a") as out:
        out.write(json.dumps({"pid": os.getpid(), "modules": modules,
                              "socket": socket.socket.__module__}) + chr(10))

patching.patch = recording
from forkhorn.__main__ import main
main()
"""


def run_python(
    code: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-W", "error", "-c", code, *args], env=env or server_env(),
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def loaded(prefix: str, code: str) -> list[str]:
    probe = (
        code
        + f"\nimport json, sys\nprint(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == {prefix!r})))"
    )
    result = run_python(probe)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_importing_the_worker_class_imports_no_gevent() -> None:
    assert loaded("gevent", "import forkhorn_gevent.worker") == []


def test_patch_master_without_preload_leaves_the_master_alone() -> None:
    code = (
        "from forkhorn_gevent.worker import GeventWorker\nGeventWorker.patch_master(preload=False)"
    )
    assert loaded("gevent", code) == []


def test_patch_master_with_preload_patches_once_without_warnings() -> None:
    code = (
        "from forkhorn_gevent.worker import GeventWorker\n"
        "GeventWorker.patch_master(preload=True)\n"
        "GeventWorker.patch_master(preload=True)\n"  # idempotent: no 'patching twice' warning
        "import socket, gevent.socket\n"
        "assert socket.socket is gevent.socket.socket\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr


def _launch(tmp_path: Path, start_server: Any, *args: str) -> tuple[Any, dict[str, Any]]:
    record = tmp_path / "record.json"
    launcher = tmp_path / "launcher.py"
    launcher.write_text(LAUNCHER)
    env = {"FORKHORN_TEST_RECORD": str(record), "PYTHONWARNINGS": "error"}
    server = start_server(*args, env=env, launcher=launcher)
    patches = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(patches) == 1, patches  # one process patched (workers of a preloading master
    return server, patches[0]  # inherit it); -w 1


def test_preload_patches_the_master_before_ssl_and_logging(
    tmp_path: Path, start_server: Any
) -> None:
    server, record = _launch(tmp_path, start_server, "--preload")
    assert record["pid"] == server.proc.pid  # patched in the master
    assert record["socket"].startswith("gevent."), record["socket"]
    assert "ssl" not in record["modules"]
    assert "logging" not in record["modules"]
    assert "forkhorn.testing.apps" not in record["modules"]
    assert server.get_json("/modules")["gevent"] is True
    assert "MonkeyPatchWarning" not in server.log
    assert "Warning" not in server.log


def test_default_mode_patches_in_the_worker_without_warnings(
    tmp_path: Path, start_server: Any
) -> None:
    server, record = _launch(tmp_path, start_server)
    assert record["pid"] != server.proc.pid  # patched after fork, in a worker
    assert record["socket"].startswith("gevent."), record["socket"]
    assert "forkhorn.testing.apps" not in record["modules"]  # ... before the app was imported
    assert server.get_json("/modules")["gevent"] is True
    assert "Warning" not in server.log


#: a gevent monkey plugin: records each event it is told of, with the pid it ran in
PROBE_PLUGIN = """
import os

def record(event):
    with open(os.environ["GEVENT_PROBE_OUT"], "a") as out:
        out.write(f"{os.getpid()} {type(event).__name__}\\n")
"""


def _install_probe(site: Path) -> None:
    info = site / "gevent_probe-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gevent-probe\nVersion: 1.0\n\n")
    (info / "entry_points.txt").write_text(
        "[gevent.plugins.monkey.will_patch_all]\nprobe = gevent_probe:record\n\n"
        "[gevent.plugins.monkey.did_patch_all]\nprobe = gevent_probe:record\n"
    )
    (site / "gevent_probe.py").write_text(PROBE_PLUGIN)


def test_gevent_plugins_are_told_of_the_patch_without_importlib_metadata(
    tmp_path: Path, start_server: Any
) -> None:
    # gevent would find its plugins with importlib.metadata (3.3 MiB per worker); the
    # worker's patch finds them with forkhorn's own scan: the same plugins, called once
    # each even from a distribution installed twice, and no importlib.metadata loaded
    first, second = tmp_path / "site-a", tmp_path / "site-b"
    _install_probe(first)
    _install_probe(second)
    events = tmp_path / "events.txt"
    path = [str(first), str(second), str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]
    server = start_server(
        "-w", "1", env={"PYTHONPATH": os.pathsep.join(filter(None, path)),
                        "GEVENT_PROBE_OUT": str(events)},
    )  # fmt: skip
    modules = server.get_json("/modules")
    worker = modules["pid"]
    assert events.read_text().splitlines() == [
        f"{worker} GeventWillPatchAllEvent",
        f"{worker} GeventDidPatchAllEvent",
    ]
    assert modules["importlib.metadata"] is False
    assert "Warning" not in server.log


@pytest.mark.parametrize(
    ("variable", "accepted"), [("GEVENT_BACKEND", "epoll"), ("GEVENT_LOOP", "libev-cext")]
)
def test_an_event_loop_gevent_cannot_make_fails_the_boot_in_one_line(
    variable: str, accepted: str
) -> None:
    """``GEVENT_BACKEND``/``GEVENT_LOOP`` naming something this gevent lacks is the
    operator's setting: each worker logs gevent's reason (with the values it accepts) and
    the master stops with "Worker failed to boot" (exit 3), without a traceback."""
    command = [sys.executable, "-m", "forkhorn", "-k", "gevent", "-w", "1", "-b", "127.0.0.1:0",
               "forkhorn.testing.apps:app"]  # fmt: skip
    result = subprocess.run(command, env=server_env(**{variable: "no-such-thing"}),
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert "gevent cannot start its event loop" in result.stderr
    assert "no-such-thing" in result.stderr and accepted in result.stderr
    assert "Traceback" not in result.stderr
