"""Process options and helpers: pidfile, WINCH rule, sd_notify watchdog, code reload."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from conftest import wait_for
from forkhorn.arbiter import process
from forkhorn.arbiter.pidfile import Pidfile, PidfileError, read_pid
from forkhorn.arbiter.systemd import Notifier


class _Log:
    def debug(self, *args: object) -> None:
        pass


def test_pidfile_create_rename_and_unlink_only_if_ours(tmp_path):
    path = tmp_path / "app.pid"
    pidfile = Pidfile(str(path))
    pidfile.create(os.getpid())
    assert read_pid(str(path)) == os.getpid()
    pidfile.rename(str(path) + ".oldbin")
    assert not path.exists() and read_pid(str(path) + ".oldbin") == os.getpid()
    path.write_text("1\n")  # someone else's now
    Pidfile(str(path)).unlink()
    assert path.exists()
    pidfile.unlink()
    assert not (tmp_path / "app.pid.oldbin").exists()


def test_pidfile_refuses_a_running_process(tmp_path):
    path = tmp_path / "app.pid"
    path.write_text("1\n")  # init is always alive
    with pytest.raises(PidfileError, match="Already running on PID 1"):
        Pidfile(str(path)).create(os.getpid())


def test_winch_is_not_a_resize_without_a_controlling_terminal():
    code = "from forkhorn.arbiter.process import winch_may_be_terminal_resize as f; print(f())"
    out = subprocess.run(
        [sys.executable, "-c", code],
        start_new_session=True,
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    assert out.stdout.strip() == "False"


def test_raw_env(monkeypatch):
    monkeypatch.delenv("FORKHORN_TEST_X", raising=False)
    process.apply_raw_env(["FORKHORN_TEST_X=a=b"])
    assert os.environ["FORKHORN_TEST_X"] == "a=b"
    with pytest.raises(ValueError):
        process.apply_raw_env(["novalue"])


def test_notifier_reads_and_consumes_the_environment(tmp_path):
    path = str(tmp_path / "n.sock")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(path)
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}
    notifier = Notifier(_Log(), env)
    assert env == {} and notifier.watchdog_interval == 1.0
    notifier.notify("READY=1")
    assert receiver.recv(100) == b"READY=1"
    Notifier(_Log(), {"NOTIFY_SOCKET": str(tmp_path / "missing")}).notify("READY=1")  # no raise
    receiver.close()


def test_master_sends_watchdog_pings(start_server, tmp_path):
    path = str(tmp_path / "n.sock")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(path)
    receiver.settimeout(5)
    start_server(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})
    seen = [receiver.recv(200) for _ in range(6)]
    assert seen.count(b"WATCHDOG=1") >= 3
    receiver.close()


def test_reload_restarts_workers_when_the_app_changes(start_server, tmp_path):
    app = tmp_path / "reloadable_app.py"
    app.write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Length', '3')])\n"
        "    return [b'v1\\n']\n"
    )
    server = start_server("--reload", app="reloadable_app:app", env={"PYTHONPATH": str(tmp_path)})
    assert server.get()[1] == b"v1\n"
    time.sleep(1.1)  # mtime granularity
    app.write_text(app.read_text().replace("v1", "v2"))
    wait_for(lambda: server.get()[1] == b"v2\n", 10, "the new code to be served")
    assert "reloadable_app.py modified" in server.log()
    server.wait_workers(1)


@pytest.mark.parametrize(
    ("broken", "shown"),
    [
        ("def app(environ, start_response)\n", "SyntaxError: expected ':'"),
        ("raise RuntimeError('half-saved')\n", "RuntimeError: half-saved"),
    ],
)
def test_reload_serves_the_error_then_the_fixed_app(start_server, tmp_path, broken, shown):
    # Gunicorn's development mode: a broken module answers 500 with the error, and the
    # worker comes back once the file is fixed. The module is not in sys.modules then:
    # the reloader must watch it anyway.
    app = tmp_path / "editable_app.py"
    good = (
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Length', '3')])\n"
        "    return [b'{}\\n']\n"
    )
    app.write_text(good.format("v1"))
    server = start_server("--reload", app="editable_app:app", env={"PYTHONPATH": str(tmp_path)})
    assert server.get()[1] == b"v1\n"
    time.sleep(1.1)  # mtime granularity
    app.write_text(broken)
    wait_for(lambda: server.get()[0] == 500, 10, "the broken module to be reported")
    body = server.get()[1]
    assert shown.encode() in body and b"Failed to load application 'editable_app:app'" in body
    time.sleep(1.1)
    app.write_text(good.format("v2"))
    wait_for(lambda: server.get() == (200, b"v2\n"), 10, "the fixed module to be served")


def test_reload_with_preload_is_refused(start_server):
    server = start_server("--reload", "--preload", wait=False)
    assert server.wait_exit(10) == 1
    assert "--reload cannot be used with --preload" in server.log()


def test_daemon_detaches_and_writes_the_pidfile(start_server, tmp_path):
    server = start_server("-D", wait=False)
    assert server.wait_exit(10) == 0  # the launching process exits at once
    pid = wait_for(lambda: read_pid(str(server.pidfile)), 10, "the daemon's pidfile")
    assert pid != server.pid
    server.wait_serving()
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not server.pidfile.exists(), 10, "the daemon to stop")
    assert "Booting worker" not in server.log()  # the daemon's stderr is /dev/null


def test_daemon_with_stdio_inheritance_keeps_writing_to_a_redirected_stderr(start_server, tmp_path):
    # -R: `forkhorn -D -R app 2> file` goes on writing to the file (not a terminal)
    server = start_server("-D", "-R", wait=False)
    assert server.wait_exit(10) == 0
    pid = wait_for(lambda: read_pid(str(server.pidfile)), 10, "the daemon's pidfile")
    server.wait_serving()
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not server.pidfile.exists(), 10, "the daemon to stop")
    log = server.log()
    assert f"[{pid}] [INFO] Starting forkhorn" in log and "Booting worker" in log
