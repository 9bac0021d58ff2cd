"""Worker lifecycle under the real master: start-up lines, replacement, TTIN/TTOU, timeouts,
boot failures, max_requests, graceful stop under load."""

from __future__ import annotations

import re
import signal
import time

import pytest
from conftest import LoadClient, wait_for


def test_startup_lines_match_gunicorn_format(start_server):
    server = start_server(workers=2)
    log = server.log()
    stamp = r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[\d+\] \[INFO\] "
    assert re.search(stamp + r"Starting forkhorn \d+\.\d+\.\d+", log)
    assert re.search(
        stamp + rf"Listening at: http://127\.0\.0\.1:{server.port} \({server.pid}\)", log
    )
    assert re.search(stamp + r"Using worker: sync", log)
    for pid in server.workers():
        assert f"Booting worker with pid: {pid}" in log
    server.kill(signal.SIGTERM)
    assert server.wait_exit(10) == 0


def test_sigkilled_worker_is_replaced_and_serving_within_one_second(start_server):
    server = start_server(workers=1)
    (old,) = server.workers()
    server.kill(signal.SIGKILL, old)
    killed_at = time.monotonic()
    server.wait_serving(timeout=3)
    assert time.monotonic() - killed_at < 1.0
    (new,) = server.wait_workers(1)
    assert new != old
    assert f"Worker (pid:{old}) was sent SIGKILL!" in server.log()


def test_ttin_and_ttou_change_the_worker_count_by_one(start_server):
    server = start_server(workers=2)
    server.kill(signal.SIGTTIN)
    server.wait_workers(3)
    server.kill(signal.SIGTTOU)
    server.wait_workers(2)
    server.kill(signal.SIGTTOU)
    server.wait_workers(1)
    server.kill(signal.SIGTTOU)  # never below one
    time.sleep(0.5)
    assert len(server.workers()) == 1
    server.wait_serving()


def test_hung_request_past_timeout_dumps_stacks_and_worker_is_replaced(start_server):
    server = start_server("--timeout", "2", workers=1)
    (old,) = server.workers()
    started = time.monotonic()
    try:
        status, _ = server.get("/hang", timeout=15)
    except OSError:
        status = 0  # the connection died with the worker: expected
    assert status != 200
    assert time.monotonic() - started < 8
    server.wait_serving()
    (new,) = server.wait_workers(1)
    assert new != old
    log = wait_for(lambda: t if "hang_forever" in (t := server.log()) else None, 5, "stack dump")
    assert re.search(rf"WORKER TIMEOUT \(pid:{old}\) serving GET /hang for \d", log)
    assert "Thread 0x" in log or "Current thread" in log
    assert "in hang_forever" in log


def test_app_load_failure_halts_the_master_with_exit_status_4(start_server):
    server = start_server(app="arbiter_broken_app:app", wait=False, workers=2)
    assert server.wait_exit(15) == 4
    log = server.log()
    assert "App failed to load." in log
    assert log.count("Booting worker") <= 2  # no crash loop
    # the app's own code raised: its traceback is the user's clue, forkhorn's frames are not
    assert 'arbiter_broken_app.py", line 3, in <module>' in log
    assert "RuntimeError: this app is broken on purpose" in log
    assert "workers/base.py" not in log and "importlib" not in log


@pytest.mark.parametrize(
    ("app", "message"),
    [
        ("no_such_module_here:app", "Failed to find module 'no_such_module_here'."),
        ("arbiter_apps:no_such_app", "Failed to find attribute 'no_such_app' in 'arbiter_apps'."),
    ],
)
@pytest.mark.parametrize("where", ["worker", "preloading master"])
def test_a_missing_app_is_one_line_without_a_traceback(start_server, app, message, where):
    args = ("--preload",) if where == "preloading master" else ()
    server = start_server(*args, app=app, wait=False)
    assert server.wait_exit(15) == 4
    log = server.log()
    assert f"[ERROR] {message}" in log
    assert "Traceback" not in log
    assert "App failed to load." in log


def test_an_app_load_failure_outside_init_process_is_reported_the_same_way(start_server):
    server = start_server("-k", "arbiter_workers:EagerLoadWorker", app="arbiter_broken_app:app",
                          wait=False)  # fmt: skip
    assert server.wait_exit(15) == 4
    log = server.log()
    assert "App failed to load." in log
    assert 'arbiter_broken_app.py", line 3, in <module>' in log  # the app's own traceback
    assert "Failed to load application 'arbiter_broken_app:app'" in log
    assert "Exception in worker process" not in log and "importlib" not in log


def test_worker_boot_failure_halts_the_master_with_exit_status_3(start_server):
    server = start_server("-k", "arbiter_workers:BootFailureWorker", wait=False)
    assert server.wait_exit(15) == 3
    assert "Worker failed to boot." in server.log()


def test_max_requests_starts_the_replacement_before_retiring(start_server):
    server = start_server("--max-requests", "5", workers=1)
    pids: set[bytes] = set()
    deadline = time.monotonic() + 10
    while len(pids) < 4 and time.monotonic() < deadline:
        status, body = server.get()  # sequential: any refused/reset request raises here
        assert status == 200
        pids.add(body)
    assert len(pids) >= 4
    retiring = re.findall(r"Worker (\d+) asks to be replaced", server.log())
    # the last one may still be finishing its exit: read the log once all have exited
    wait_for(lambda: all(f"Worker exiting (pid: {old})" in server.log() for old in retiring),
             10, "the retired workers' exits")  # fmt: skip
    log = server.log()
    # every retired worker's successor booted before the old one exited
    for old in retiring:
        exit_at = log.index(f"Worker exiting (pid: {old})")
        booted_after_request = log.index(f"Worker {old} asks to be replaced")
        assert "Booting worker" in log[booted_after_request:exit_at]


def test_term_under_load_serves_every_queued_request_and_exits_0(start_server):
    # One worker, slow requests, more clients than workers: connections are always queued
    # in the kernel's backlog when TERM arrives. Every accepted one must be answered.
    server = start_server("--graceful-timeout", "10", workers=1)
    with LoadClient(server.port, threads=6, path="/sleep?0.05") as load:
        load.wait_requests(20)
        before = load.ok
        server.kill(signal.SIGTERM)
        stopped = time.monotonic()
        assert server.wait_exit(12) == 0
        elapsed = time.monotonic() - stopped
        time.sleep(0.3)
    assert load.failures == [], load.failures[:5]
    print(f"ok before TERM {before}, after {load.ok}, refused {load.refused}, {elapsed:.2f}s")
    assert load.ok >= before + 3  # the queued connections were served after TERM
    assert elapsed < 10
    assert "Shutting down: Master" in server.log()


def test_quit_stops_quickly(start_server):
    server = start_server(workers=2)
    server.kill(signal.SIGQUIT)
    assert server.wait_exit(10) == 0


def test_term_sent_while_a_worker_is_still_forking_is_not_lost(start_server, tmp_path):
    # post_fork holds the new worker between fork and its own signal handlers: a TERM sent
    # then must wait for the worker's handler, not vanish into the master's copied one
    # (which would leave the worker running until graceful_timeout's SIGKILL).
    marker = tmp_path / "forked"
    (tmp_path / "conf.py").write_text(
        "import os, time\n"
        "def post_fork(server, worker):\n"
        f"    open({str(marker)!r}, 'w').write(str(os.getpid()))\n"
        "    time.sleep(1.0)\n"
    )
    server = start_server(
        "-c", str(tmp_path / "conf.py"), "--graceful-timeout", "30", workers=1, wait=False
    )
    worker = int(wait_for(lambda: marker.exists() and marker.read_text(), 10, "post_fork"))
    server.kill(signal.SIGTERM, worker)
    sent = time.monotonic()
    wait_for(lambda: f"Worker (pid:{worker}) exited" in server.log(), 10, "the worker to exit")
    assert time.monotonic() - sent < 5.0
    assert f"Worker (pid:{worker}) was sent SIGKILL" not in server.log()
    server.kill(signal.SIGTERM)
    assert server.wait_exit(15) == 0
