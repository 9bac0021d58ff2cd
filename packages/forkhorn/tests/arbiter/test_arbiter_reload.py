"""Zero-downtime operations under continuous load: HUP reloads and the USR2 upgrade dance."""

from __future__ import annotations

import signal
import time

from conftest import LoadClient, children, wait_for
from forkhorn.arbiter.pidfile import read_pid


def test_twenty_hups_under_load_lose_no_request(start_server):
    server = start_server(workers=2)
    first = set(server.workers())
    with LoadClient(server.port, threads=4) as load:
        load.wait_requests(20)
        for _ in range(20):
            server.kill(signal.SIGHUP)
            time.sleep(0.2)
        server.wait_workers(2, timeout=10)
        time.sleep(0.5)  # retiring workers finish and are reaped
        load.wait_requests(20)
    assert load.failures == [], load.failures[:5]
    assert load.refused == 0
    workers = server.wait_workers(2)
    assert not first & set(workers)
    assert server.log().count("Hang up: Master") >= 15  # bursts may collapse, never lost
    server.kill(signal.SIGTERM)
    assert server.wait_exit(10) == 0


def test_usr2_winch_term_upgrade_under_load(start_server):
    server = start_server(workers=2)
    old_master = server.pid
    pidfile = server.pidfile
    assert read_pid(str(pidfile)) == old_master
    with LoadClient(server.port, threads=4) as load:
        load.wait_requests(20)
        server.kill(signal.SIGUSR2)
        new_master = wait_for(lambda: read_pid(f"{pidfile}.2"), 10, "the new master's pidfile")
        assert read_pid(f"{pidfile}.oldbin") == old_master
        server.wait_workers(2, master=new_master)
        server.kill(signal.SIGWINCH)
        # the new master is a child of the old one; the old one's workers are gone
        wait_for(lambda: children(old_master) == [new_master], 10, "old workers to stop")
        load.wait_requests(20)  # only the new master's workers serve now
        server.kill(signal.SIGTERM)
        assert server.wait_exit(10) == 0
        wait_for(
            lambda: read_pid(str(pidfile)) == new_master, 5, "the new master to own the pidfile"
        )
        load.wait_requests(20)
    assert load.failures == [], load.failures[:5]
    assert load.refused == 0
    assert "Master has been promoted." in server.log()
    server.kill(signal.SIGTERM, new_master)
    wait_for(lambda: read_pid(str(pidfile)) is None, 10, "the new master to remove its pidfile")


def test_usr1_reopens_log_files(start_server, tmp_path):
    logfile = tmp_path / "app-error.log"
    server = start_server("--error-logfile", str(logfile), workers=1)
    logfile.rename(tmp_path / "rotated.log")
    server.kill(signal.SIGUSR1)
    wait_for(logfile.exists, 5, "the error log to be reopened")
    server.kill(signal.SIGTERM)
    assert server.wait_exit(10) == 0
    assert "Shutting down: Master" in logfile.read_text()


def test_winch_stops_workers_but_keeps_master(start_server):
    server = start_server(workers=2)
    server.kill(signal.SIGWINCH)
    server.wait_workers(0)
    assert server.proc.poll() is None
    server.kill(signal.SIGHUP)  # the rollback path: HUP brings the workers back
    server.wait_workers(2)
    server.wait_serving()
