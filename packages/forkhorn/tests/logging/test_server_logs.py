"""Logs of real servers: JSON access lines of hostile requests, rotation with USR1 under
load, ``-`` targets, ``capture_output`` and ``logger_class`` from the command line."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import LoadClient, free_port, wait_for  # the arbiter tests' helpers

HERE = Path(__file__).parent
SRC = HERE.parents[1] / "src"


def raw_request(port: int, head: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def read_json_lines(path) -> list[dict]:
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""  # every line complete
    records = []
    for line in lines[:-1]:
        assert line.isascii()
        record = json.loads(line)
        assert isinstance(record, dict)
        records.append(record)
    return records


HOSTILE = [
    # (request target, headers, expected path, query, user agent, referer, request id)
    (
        b"/q%22uote?a=%22b%22",
        b'User-Agent: say "hi"\r\nReferer: x\\y\r\n',
        '/q"uote',
        "a=%22b%22",
        'say "hi"',
        "x\\y",
        None,
    ),
    (
        b"/ctl%01%7f%0d%0a%00",
        b"User-Agent: \xff\xfe\r\nX-Request-ID: abc-123\r\n",
        "/ctl\x01\x7f\r\n\x00",
        "",
        "\\xff\\xfe",
        None,
        "abc-123",
    ),
    (
        b"/utf8/caf%C3%A9",
        b"User-Agent: caf\xc3\xa9\r\nX-Request-ID: bad id\r\n",
        "/utf8/café",
        "",
        "café",
        None,
        "generated",
    ),
    (
        b"/long",
        b"User-Agent: " + b"A" * 6000 + b"\r\nReferer: \t\r\n",
        "/long",
        "",
        "A" * 6000,
        "",
        None,
    ),
    (
        b'/inj?x=1"}\n{"forged":1',
        b"User-Agent: }{\r\n",
        None,
        None,
        None,
        None,
        None,
    ),  # refused by the parser (no line) or one valid line
]


def test_json_access_log_of_hostile_requests(serve, tmp_path):
    access = tmp_path / "access.log"
    server = serve("--log-format", "json", "--access-logfile", str(access), workers=1)
    workers = server.workers()
    answered = []
    for target, headers, *expected in HOSTILE:
        head = b"GET " + target + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" + headers
        response = raw_request(server.port, head + b"\r\n")
        answered.append((response.split(b" ", 2)[1], expected))
    server.kill(signal.SIGTERM)  # the buffered lines are flushed on exit
    assert server.wait_exit(15) == 0
    records = [r for r in read_json_lines(access) if r["path"] != "/"]  # minus readiness probes
    served = [expected for status, expected in answered if status == b"200"]
    assert len(records) == len(served) >= 4
    for record, (path, query, agent, referer, request_id) in zip(records, served, strict=True):
        if path is None:
            continue
        assert record["path"] == path and record["query"] == query
        assert record["user_agent"] == agent and record["referer"] == referer
        assert record["method"] == "GET" and record["status"] == 200 and record["bytes"] == 3
        assert record["protocol"] == "HTTP/1.1" and record["remote_addr"] == "127.0.0.1"
        assert isinstance(record["duration_ms"], float) and record["pid"] in workers
        if request_id == "generated":
            assert re.fullmatch(r"[0-9a-f]{12}-[0-9a-f]+", record["request_id"])
        elif request_id is not None:
            assert record["request_id"] == request_id
    errors = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    assert errors and all({"time", "level", "logger", "pid", "message"} <= set(e) for e in errors)


@pytest.mark.parametrize("worker_class", ["sync", "gthread"])
def test_usr1_rotation_under_load_loses_no_line(serve, tmp_path, worker_class):
    access = tmp_path / "access.log"
    server = serve("--access-logfile", str(access), "--access-logformat", "%(U)s %(s)s",
                   "-k", worker_class, "--threads", "4", workers=2)  # fmt: skip
    with LoadClient(server.port, threads=4, path="/load") as load:
        for number in range(3):
            load.wait_requests(150, timeout=30)
            access.rename(tmp_path / f"access.log.{number}")
            server.kill(signal.SIGUSR1)
            wait_for(access.exists, 10, "the master to reopen the access log")
        load.wait_requests(150, timeout=30)
    assert not load.failures
    server.kill(signal.SIGTERM)
    assert server.wait_exit(15) == 0
    lines = []
    for path in sorted(tmp_path.glob("access.log*")):
        lines += path.read_text().splitlines()
    assert sum(1 for line in lines if line == "/load 200") == load.ok
    assert all(re.fullmatch(r"/(load)? 200", line) for line in lines)
    assert sum(1 for path in tmp_path.glob("access.log.*") if path.stat().st_size) == 3


def test_dash_targets_capture_output_and_logger_class(tmp_path):
    port = free_port()
    env = dict(os.environ, FORKHORN_DISABLE_PLUGIN_AUTOLOAD="1",
               PYTHONPATH=os.pathsep.join([str(HERE), str(SRC)]))  # fmt: skip
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "forkhorn", "-w", "1", "-b", f"127.0.0.1:{port}",
             "--access-logfile", "-", "--error-logfile", "-", "--access-logformat", "%(U)s",
             "--logger-class", "logging_apps.TaggedLogger", "logging_apps:app"],
            cwd=tmp_path, env=env, stdout=stdout, stderr=stderr, start_new_session=True,
        )  # fmt: skip
    try:
        wait_for(lambda: b"Booting worker" in err.read_bytes(), 15, "the worker")
        wait_for(lambda: _answers(port, "/first"), 10, "the server to answer")
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    assert out.read_text().splitlines() == ["/first"]  # access log "-": stdout
    assert "[INFO] [tagged] Starting forkhorn" in err.read_text()  # error log "-": stderr

    errlog = tmp_path / "error.log"
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "forkhorn", "-w", "1", "-b", f"127.0.0.1:{port}",
         "--error-logfile", str(errlog), "--capture-output", "logging_apps:app"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_for(lambda: _answers(port, "/print"), 15, "the server to answer")
        wait_for(lambda: "to stderr by the app" in errlog.read_text(), 10, "captured output")
        assert "printed by the app" in errlog.read_text()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def _answers(port: int, path: str) -> bool:
    try:
        response = raw_request(port, f"GET {path} HTTP/1.1\r\nHost: t\r\n"
                                     "Connection: close\r\n\r\n".encode())  # fmt: skip
    except OSError:
        time.sleep(0.05)
        return False
    return response.startswith(b"HTTP/1.1 200")


def test_request_id_reaches_the_app_and_matches_its_json_access_line(serve, tmp_path):
    access = tmp_path / "access.log"
    server = serve("--log-format", "json", "--access-logfile", str(access), workers=1)
    given = raw_request(server.port, b"GET /request-id HTTP/1.1\r\nHost: t\r\n"
                        b"X-Request-ID: trace-42\r\nConnection: close\r\n\r\n")  # fmt: skip
    made = raw_request(server.port, b"GET /request-id HTTP/1.1\r\nHost: t\r\n"
                       b"Connection: close\r\n\r\n")  # fmt: skip
    server.kill(signal.SIGTERM)
    assert server.wait_exit(15) == 0
    assert given.endswith(b"\r\n\r\ntrace-42")
    generated = made.rsplit(b"\r\n\r\n", 1)[1].decode()
    assert re.fullmatch(r"[0-9a-f]{12}-[0-9a-f]+", generated)
    ids = [r["request_id"] for r in read_json_lines(access) if r["path"] == "/request-id"]
    assert ids == ["trace-42", generated]


@pytest.mark.parametrize("worker_class", ["sync", "gthread"])
def test_timed_out_request_is_in_the_access_log(serve, tmp_path, worker_class):
    access = tmp_path / "access.log"
    server = serve("-k", worker_class, "--timeout", "1", "--access-logfile", str(access),
                   workers=1)  # fmt: skip
    try:
        raw_request(server.port, b"GET /slow HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    except OSError:
        pass  # gthread ends the connection itself; the 504 is what the log records

    def slow_lines() -> list[str]:
        text = access.read_text() if access.exists() else ""
        return [line for line in text.splitlines() if "GET /slow" in line]

    lines = wait_for(slow_lines, 10, "the access line (flushed within a second)")
    assert len(lines) == 1
    assert '"GET /slow HTTP/1.1" 504 ' in lines[0]
    server.kill(signal.SIGTERM)
    assert server.wait_exit(15) == 0


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_wsgi_errors_goes_to_the_error_log(serve, tmp_path, log_format):
    # Gunicorn's wsgi.errors writes where its error log goes: Flask's default log handler
    # writes there during a request, so the app's messages land in --error-logfile.
    errlog = tmp_path / "errors.log"  # (error.log holds the server's stdout and stderr)
    server = serve("--log-format", log_format, "--error-logfile", str(errlog), workers=1)
    response = raw_request(server.port, b"GET /wsgi-errors HTTP/1.1\r\nHost: t\r\n"
                           b"Connection: close\r\n\r\n")  # fmt: skip
    assert response.startswith(b"HTTP/1.1 200")
    server.kill(signal.SIGTERM)
    assert server.wait_exit(15) == 0
    lines = errlog.read_text().splitlines()
    if log_format == "json":
        said = [json.loads(line) for line in lines if "wsgi.errors" in line]
        assert [(r["message"], r["level"]) for r in said] == [("said on wsgi.errors", "error")]
    else:
        assert "said on wsgi.errors" in lines
    assert "said on wsgi.errors" not in server.log()  # not on stderr
