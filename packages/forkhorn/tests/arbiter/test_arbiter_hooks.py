"""Gunicorn's server hooks, from a Gunicorn-style config file, at the right moments."""

from __future__ import annotations

import json
import signal
import socket
import textwrap

import pytest
from conftest import wait_for

CONFIG = textwrap.dedent(
    """
    import json, os

    def _record(hook, **fields):
        with open(os.environ["HOOK_LOG"], "a") as f:
            f.write(json.dumps({"hook": hook, "pid": os.getpid(), **fields}) + "\\n")

    def on_starting(server):
        _record("on_starting", server=type(server).__name__)

    def when_ready(server):
        _record("when_ready", server=type(server).__name__, listeners=len(server.listeners))

    def on_reload(server):
        _record("on_reload", server=type(server).__name__)

    def pre_fork(server, worker):
        _record("pre_fork", server=type(server).__name__, worker=type(worker).__name__)

    def post_fork(server, worker):
        _record("post_fork", worker_pid=worker.pid)

    def post_worker_init(worker):
        _record("post_worker_init", worker_pid=worker.pid, loaded=worker.wsgi is not None)

    def nworkers_changed(server, new_value, old_value):
        _record("nworkers_changed", new=new_value, old=old_value)

    def worker_int(worker):
        _record("worker_int", worker_pid=worker.pid)

    def worker_exit(server, worker):
        _record("worker_exit", worker_pid=worker.pid)

    def child_exit(server, worker):
        _record("child_exit", worker_pid=worker.pid)

    def on_exit(server):
        _record("on_exit", server=type(server).__name__)
    """
)


def read_hooks(path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_config_file_hooks_are_called_with_gunicorn_arguments(start_server, tmp_path):
    (tmp_path / "conf.py").write_text(CONFIG)
    log = tmp_path / "hooks.jsonl"
    server = start_server("-c", str(tmp_path / "conf.py"), workers=1, env={"HOOK_LOG": str(log)})
    master = server.pid
    (first,) = server.workers()
    server.kill(signal.SIGTTIN)
    server.wait_workers(2)
    server.kill(signal.SIGHUP)
    wait_for(lambda: any(h["hook"] == "on_reload" for h in read_hooks(log)), 5, "on_reload")
    wait_for(lambda: sum(h["hook"] == "post_worker_init" for h in read_hooks(log)) >= 3, 10, "init")
    server.kill(signal.SIGINT)
    assert server.wait_exit(10) == 0
    hooks = read_hooks(log)
    names = [h["hook"] for h in hooks]
    assert names[0] == "on_starting" and names[-1] == "on_exit"
    assert names.index("when_ready") < names.index("pre_fork")
    by_name: dict[str, list[dict]] = {}
    for h in hooks:
        by_name.setdefault(h["hook"], []).append(h)
    assert all(
        h["pid"] == master
        for n in (
            "on_starting",
            "when_ready",
            "pre_fork",
            "nworkers_changed",
            "on_reload",
            "child_exit",
            "on_exit",
        )
        for h in by_name[n]
    )
    assert by_name["pre_fork"][0] == {
        "hook": "pre_fork",
        "pid": master,
        "server": "Arbiter",
        "worker": "SyncWorker",
    }
    assert by_name["post_fork"][0]["pid"] == first == by_name["post_fork"][0]["worker_pid"]
    assert by_name["post_worker_init"][0]["loaded"] is True
    assert {k: by_name["nworkers_changed"][0][k] for k in ("new", "old")} == {"new": 1, "old": None}
    assert {k: by_name["nworkers_changed"][1][k] for k in ("new", "old")} == {"new": 2, "old": 1}
    exited = {h["worker_pid"] for h in by_name["worker_exit"]}
    reaped = {h["worker_pid"] for h in by_name["child_exit"]}
    assert first in exited and first in reaped
    assert all(h["pid"] == h["worker_pid"] for h in by_name["worker_exit"])
    assert by_name.get("worker_int"), "INT to the master sends QUIT: worker_int runs"


def test_a_raising_hook_is_logged_and_the_master_keeps_serving(start_server, tmp_path):
    (tmp_path / "conf.py").write_text(
        "def pre_fork(server, worker):\n    raise ValueError('boom')\n"
    )
    server = start_server("-c", str(tmp_path / "conf.py"), workers=1)
    server.wait_serving()
    log = server.log()
    assert "Exception in pre_fork hook" in log and "ValueError: boom" in log


def test_a_raising_on_starting_stops_start_up(start_server, tmp_path):
    (tmp_path / "conf.py").write_text("def on_starting(server):\n    raise ValueError('no')\n")
    server = start_server("-c", str(tmp_path / "conf.py"), wait=False)
    assert server.wait_exit(10) == 1
    assert "Exception in on_starting hook" in server.log()


GUNICORN_NAMES_CONFIG = textwrap.dedent(
    """
    import json, os

    def _record(**fields):
        with open(os.environ["HOOK_LOG"], "a") as f:
            f.write(json.dumps(fields) + "\\n")

    def when_ready(server):
        _record(port=server.LISTENERS[0].getsockname()[1])

    def pre_fork(server, worker):
        _record(workers=sorted(type(w).__name__ for w in server.WORKERS.values()))
    """
)


def test_hooks_find_the_arbiter_under_gunicorns_names(start_server, tmp_path):
    # server.LISTENERS[0].getsockname() (the port of a :0 bind) and server.WORKERS, as
    # config files written for Gunicorn use them
    (tmp_path / "conf.py").write_text(GUNICORN_NAMES_CONFIG)
    log = tmp_path / "hooks.jsonl"
    server = start_server("-c", str(tmp_path / "conf.py"), workers=2, env={"HOOK_LOG": str(log)})
    server.kill(signal.SIGTERM)
    assert server.wait_exit(10) == 0
    assert read_hooks(log) == [
        {"port": server.port},
        {"workers": []},
        {"workers": ["SyncWorker"]},
    ]


MEMORY_WATCH_CONFIG = textwrap.dedent(
    """
    import json, os, signal, threading, time

    def when_ready(server):
        # the shape of Gunicorn users' memory watchdog: a thread of the master's retires
        # a worker through server.kill_worker
        def watch():
            while not server.WORKERS:
                time.sleep(0.05)
            (pid,) = list(server.WORKERS)
            with open(os.environ["HOOK_LOG"], "a") as f:
                f.write(json.dumps({"killed": pid, "timeout": server.timeout}) + "\\n")
            server.kill_worker(pid, signal.SIGTERM)
            while pid in server.WORKERS:
                time.sleep(0.05)
            server.kill_worker(pid, signal.SIGTERM)  # again, once it is gone: no error
            with open(os.environ["HOOK_LOG"], "a") as f:
                f.write(json.dumps({"killed_twice": pid}) + "\\n")

        threading.Thread(target=watch, daemon=True).start()
    """
)


def test_a_hook_thread_retires_a_worker_with_kill_worker(start_server, tmp_path):
    (tmp_path / "conf.py").write_text(MEMORY_WATCH_CONFIG)
    log = tmp_path / "hooks.jsonl"
    env = {"HOOK_LOG": str(log)}
    server = start_server("-c", str(tmp_path / "conf.py"), "--timeout", "7", wait=False, env=env)
    record = wait_for(lambda: read_hooks(log)[:1] or None, 10, "the watchdog thread")[0]
    assert record["timeout"] == 7
    wait_for(lambda: server.workers() and record["killed"] not in server.workers(), 10,
             "the worker to be replaced")  # fmt: skip
    server.wait_serving()
    # the second kill_worker, of a worker already reaped, returned quietly
    wait_for(lambda: len(read_hooks(log)) == 2 or None, 10, "the second kill_worker")
    assert read_hooks(log)[1] == {"killed_twice": record["killed"]}
    assert "Traceback" not in server.log()


REQUEST_HOOKS_CONFIG = textwrap.dedent(
    """
    import json, os

    def _record(**fields):
        with open(os.environ["HOOK_LOG"], "a") as f:
            f.write(json.dumps(fields) + "\\n")

    # what request hooks written for Gunicorn read of its request and response objects
    def pre_request(worker, req):
        _record(hook="pre", method=req.method, path=req.path, query=req.query,
                uri=req.uri, version=list(req.version), headers=req.headers,
                remote_addr=req.remote_addr[0], peer_addr=req.peer_addr[0],
                scheme=req.scheme, body=req.body.read(4).decode(), close=req.should_close())

    def post_request(worker, req, environ, resp):
        _record(hook="post", status=resp.status, status_code=resp.status_code,
                length=resp.response_length, sent=resp.sent, close=resp.should_close(),
                headers=resp.headers)
    """
)


def test_request_hooks_see_gunicorns_request_and_response_fields(start_server, tmp_path):
    (tmp_path / "conf.py").write_text(REQUEST_HOOKS_CONFIG)
    log = tmp_path / "hooks.jsonl"
    server = start_server("-c", str(tmp_path / "conf.py"), "-k", "gthread",
                          env={"HOOK_LOG": str(log)})  # fmt: skip
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST /p?x=1 HTTP/1.1\r\nHost: t\r\nX-Forwarded-Proto: https\r\n"
                     b"Content-Length: 4\r\n\r\nabcd")  # fmt: skip
        response = b""
        while not response.endswith(b"\n") or b"\r\n\r\n" not in response:
            response += sock.recv(65536)
    assert response.startswith(b"HTTP/1.1 200 ")
    body = response.partition(b"\r\n\r\n")[2]
    # start_server's GET with Connection: close came first
    records = wait_for(lambda: r if len(r := read_hooks(log)) == 4 else None, 5, "hooks")
    first_pre, first_post, pre, post = records
    assert (first_pre["method"], first_pre["close"], first_post["close"]) == ("GET", True, True)
    assert pre == {
        "hook": "pre", "method": "POST", "path": "/p", "query": "x=1", "uri": "/p?x=1",
        "version": [1, 1],
        "headers": [["HOST", "t"], ["X-FORWARDED-PROTO", "https"], ["CONTENT-LENGTH", "4"]],
        "remote_addr": "127.0.0.1", "peer_addr": "127.0.0.1",
        "scheme": "https",  # X-Forwarded-Proto from a forwarded_allow_ips peer, as Gunicorn
        "body": "abcd", "close": False,
    }  # fmt: skip
    assert post == {
        "hook": "post", "status": "200 OK", "status_code": 200, "length": len(body),
        "sent": len(body), "close": False,
        "headers": [["Content-Type", "text/plain"], ["Content-Length", str(len(body))]],
    }  # fmt: skip


SLOW_WARM_UP_CONFIG = textwrap.dedent(
    """
    import json, os, threading, time

    def post_worker_init(worker):
        # Gunicorn users' recipe for start-up work longer than the timeout: a thread
        # keeps the worker's heartbeat fresh through worker.tmp meanwhile
        done = threading.Event()

        def keep_alive():
            while not done.wait(0.1):
                if os.environ["KEEP_ALIVE"] == "1":
                    worker.tmp.notify()

        threading.Thread(target=keep_alive, daemon=True).start()
        time.sleep(2.5)
        done.set()
        worker.tmp.notify()
        with open(os.environ["HOOK_LOG"], "a") as f:
            f.write(json.dumps({"pid": os.getpid(), "age": time.time() - worker.tmp.last_update()}) + "\\n")
    """
)


@pytest.mark.parametrize("keep_alive", [True, False], ids=["notify", "no-notify"])
def test_worker_tmp_notify_keeps_a_slow_starting_worker_alive(start_server, tmp_path, keep_alive):
    (tmp_path / "conf.py").write_text(SLOW_WARM_UP_CONFIG)
    log = tmp_path / "hooks.jsonl"
    env = {"HOOK_LOG": str(log), "KEEP_ALIVE": "1" if keep_alive else "0"}
    server = start_server("-c", str(tmp_path / "conf.py"), "--timeout", "1", wait=False, env=env)
    if keep_alive:
        server.wait_serving(timeout=15)
        (record,) = read_hooks(log)
        assert record["pid"] == server.workers()[0]  # the first worker, never replaced
        assert 0 <= record["age"] < 0.5  # last_update(): the beat just made, wall clock
        assert "WORKER TIMEOUT" not in server.log()
    else:
        # the control: the same start-up without the beats is timed out, as in Gunicorn
        wait_for(lambda: "WORKER TIMEOUT" in server.log(), 10, "the worker to be timed out")
        assert read_hooks(log) == []
