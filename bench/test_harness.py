"""Self-tests of the benchmark harness that need no server and no wrk: report parsing,
targets, verdicts, exit status, and how the driver orders runs and picks the one reported.
Run: ``python -m pytest bench -q -p no:cacheprovider``."""

from __future__ import annotations

import importlib.util
import json
import socket
import sys
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bench import report, run
from bench.app import HELLO
from bench.servers import IdleConnections, ServerSpec, children_of, http_status
from bench.workloads import QUICK_WORKLOADS, WORKLOADS, target_for
from bench.wrk import WrkError, WrkResult, build_command, parse_report

REPORT = """Running 1s test @ http://127.0.0.1:8000/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.20s   123.00us   2.00m    90.00%
  Latency Distribution
     50%  812.00us
     75%    1.00ms
     90%    2.00ms
     99%    1.50s
  43700 requests in 1.00m, 6.50MB read
  Socket errors: connect 1, read 2, write 3, timeout 4
  Non-2xx or 3xx responses: 12
Requests/sec:   8740.00
Transfer/sec:      1.30MB
"""


def _result(rps: float, errors: int = 0) -> WrkResult:
    detail = {"connect": 0, "read": errors, "write": 0, "timeout": 0}
    return WrkResult(rps, int(rps), 1.0, 2.0, errors, detail, 0)


def test_parse_report_units_and_errors() -> None:
    r = parse_report(REPORT)
    assert (r.rps, r.requests, r.p50_ms, r.p99_ms) == (8740.0, 43700, 0.812, 1500.0)
    assert r.socket_detail == {"connect": 1, "read": 2, "write": 3, "timeout": 4}
    assert (r.socket_errors, r.non_2xx, r.errors) == (10, 12, 22)


def test_parse_report_without_error_lines_means_zero() -> None:
    clean = "\n".join(x for x in REPORT.splitlines() if "errors" not in x and "Non-2xx" not in x)
    assert parse_report(clean).errors == 0


def test_parse_report_rejects_garbage() -> None:
    with pytest.raises(WrkError):
        parse_report("unable to connect to 127.0.0.1:1 Connection refused")


def test_commands() -> None:
    cmd = build_command("http://h/", 50, 5, close=True, script="s.lua")
    assert cmd == [
        "wrk",
        "-t1",
        "-c50",
        "-d5s",
        "--latency",
        "-H",
        "Connection: close",
        "-s",
        "s.lua",
        "http://h/",
    ]
    spec = ServerSpec("gunicorn", "py", "gunicorn", "gthread", threads=8)
    assert spec.command(9) == [
        "py",
        "-m",
        "gunicorn",
        "-w",
        "2",
        "-k",
        "gthread",
        "-b",
        "127.0.0.1:9",
        "--threads",
        "8",
        "bench.app:app",
    ]


def test_targets() -> None:
    assert target_for("hello-close", "sync").check(25_000, 2.6) == "PASS"
    assert target_for("hello-close", "sync").check(20_000, 2.4) == "FAIL"
    assert target_for("sleep", "gevent").check(15_000, 2.0) == "FAIL"  # under 80% of ideal
    assert target_for("sleep", "gevent").check(17_000, 1.6) == "PASS"
    assert target_for("post", "eventlet").check(1, 1.5) == "PASS"
    assert target_for("hello", "sync").check(1, 0.1) == "—"


def _results(forkhorn_errors: int = 0) -> report.Results:
    res = report.Results(meta={"command": "x"})
    for server, rps, errs in (("forkhorn", 30_000.0, forkhorn_errors), ("gunicorn", 10_000.0, 0)):
        res.servers.append(report.ServerFigures(server, "sync", 0.1, 20_000.0))
        res.runs.append(report.Run(server, "sync", "hello-close", _result(rps, errs)))
    return res


def test_report_and_exit_status(tmp_path: Path) -> None:
    res = _results()
    text = report.write_all(res, tmp_path)
    assert (
        "| sync | hello, Connection: close, c50 | 30,000 | 10,000 | 3.00x | >= 2.5x | PASS" in text
    )
    data = json.loads((tmp_path / "latest.json").read_text())
    assert data["servers"][0]["idle_rss_kib"]["result"] == "PASS"  # equal counts as <=
    assert report.exit_status(res, fail_on_errors=True) == 0


def test_forkhorn_errors_fail_the_run() -> None:
    res = _results(forkhorn_errors=3)
    assert report.throughput_rows(res)[0]["result"] == "FAIL (errors)"
    assert report.exit_status(res, fail_on_errors=True) == 1
    assert report.exit_status(res, fail_on_errors=False) == 0


def test_parse_report_without_the_latency_distribution_is_unreadable() -> None:
    # wrk run without --latency prints no percentiles: a WrkError, never a KeyError
    without = "\n".join(x for x in REPORT.splitlines() if not x.strip().startswith("99%"))
    with pytest.raises(WrkError):
        parse_report(without)


def test_a_bigger_or_slower_forkhorn_fails_the_server_targets() -> None:
    res = _results()
    res.servers[0] = report.ServerFigures("forkhorn", "sync", 0.2, 30_000.0)
    row = report.server_rows(res)[0]
    assert row["idle_rss_kib"]["ratio"] == 1.5
    assert row["idle_rss_kib"]["result"] == "FAIL"
    assert row["startup_s"]["result"] == "FAIL"


def test_a_broken_harness_exits_2() -> None:
    res = _results()
    res.runs[1].error = "wrk exited 1"
    assert report.exit_status(res, fail_on_errors=False) == 2  # a Gunicorn run failed
    res = _results()
    res.servers[1].error = "gunicorn exited 1"
    assert report.exit_status(res, fail_on_errors=False) == 2  # Gunicorn did not serve
    res = _results()
    res.servers = [f for f in res.servers if f.server != "forkhorn"]
    res.runs = [r for r in res.runs if r.server != "forkhorn"]
    assert report.exit_status(res, fail_on_errors=False) == 2  # nothing compared


def test_the_representative_run_is_the_median_unless_one_failed() -> None:
    runs = [report.Run("forkhorn", "sync", "hello", _result(rps)) for rps in (300.0, 100.0, 200.0)]
    chosen = run.representative(runs)
    assert chosen.result is not None and chosen.result.rps == 200.0
    assert chosen.samples == [300.0, 100.0, 200.0]
    runs[0] = report.Run("forkhorn", "sync", "hello", _result(300.0, errors=1))
    assert run.representative(runs) is runs[0]  # a failure is never hidden by the median
    runs[2] = report.Run("forkhorn", "sync", "hello", error="wrk exited 1")
    assert run.representative(runs) is runs[0]
    assert runs[0].samples == [300.0, 100.0]


def test_servers_take_turns_in_an_order_flipped_on_each_repetition(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loaded: list[tuple[str, int]] = []

    def fake_load(ctx: object, srv: SimpleNamespace, work: object, seconds: int) -> report.Run:
        loaded.append((srv.name, seconds))
        return report.Run(srv.name, "sync", "hello", _result(float(len(loaded))))

    monkeypatch.setattr(run, "load", fake_load)
    ctx = SimpleNamespace(warmup=1, duration=5, repeat=3, args=SimpleNamespace(quick=False))
    servers = [SimpleNamespace(name="forkhorn"), SimpleNamespace(name="gunicorn")]
    chosen = run.compare(ctx, servers, WORKLOADS["hello"])  # type: ignore[arg-type]
    warm_up = [("forkhorn", 1), ("gunicorn", 1)]
    turns = ["forkhorn", "gunicorn", "gunicorn", "forkhorn", "forkhorn", "gunicorn"]
    assert loaded == warm_up + [(name, 5) for name in turns]
    assert [r.server for r in chosen] == ["forkhorn", "gunicorn"]  # in the servers' order
    assert [r.samples for r in chosen] == [[3.0, 6.0, 7.0], [4.0, 5.0, 8.0]]


def _idle_check(without: float, with_idle: float, kept: int = 1000) -> report.IdleCheck:
    check = report.IdleCheck("gevent", 1000, repeat=3, served=1000, kept=kept)
    check.runs = {
        "without": report.Run("forkhorn", "gevent", "hello", _result(without)),
        "with": report.Run("forkhorn", "gevent", "hello", _result(with_idle)),
    }
    return check


def test_idle_connections_pass_only_within_the_ratio_and_all_kept(tmp_path: Path) -> None:
    res = _results()
    res.idle = [_idle_check(20_000.0, 19_000.0)]
    assert report.idle_rows(res)[0]["result"] == "PASS"
    text = report.write_all(res, tmp_path)
    assert "| gevent | 20,000 | 19,000 | 0.95 | 1.00 / 2.00 | 1,000 / 1,000 |" in text
    res.idle = [_idle_check(20_000.0, 17_000.0)]  # slowed by 15%
    assert report.idle_rows(res)[0]["result"] == "FAIL"
    res.idle = [_idle_check(20_000.0, 20_000.0, kept=990)]  # the server dropped some
    assert report.idle_rows(res)[0]["result"] == "FAIL"
    res.idle = [_idle_check(20_000.0, 20_000.0)]
    res.idle[0].runs["with"] = report.Run("forkhorn", "gevent", "hello", _result(20_000.0, 2))
    assert report.idle_rows(res)[0]["result"] == "FAIL"
    assert report.exit_status(res, fail_on_errors=True) == 1  # errors fail the run


def test_idle_connections_are_answered_held_and_counted() -> None:
    """The holder against a real keep-alive server that closes its third connection after
    the answer: 5 served, 4 still open."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\nHello, World!\n"
    accepted: list[socket.socket] = []

    def serve() -> None:
        for n in range(5):
            conn, _ = listener.accept()
            conn.recv(4096)
            conn.sendall(answer)
            accepted.append(conn)
            if n == 2:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with IdleConnections(listener.getsockname()[1], 5, timeout=5) as idle:
            thread.join(timeout=5)
            assert idle.served == 5
            assert idle.still_open() == 4
        assert idle.socks == []
    finally:
        listener.close()
        for conn in accepted:
            conn.close()


def test_quick_runs_the_judged_workloads_and_writes_apart() -> None:
    quick = SimpleNamespace(
        args=run.parse_args(["--quick"]), workloads=[WORKLOADS[k] for k in QUICK_WORKLOADS]
    )
    picked = {c: [w.key for w in run.class_workloads(quick, c)] for c in run.ALL_CLASSES}  # type: ignore[arg-type]
    assert picked == {
        "sync": ["hello-close"],
        "gthread": ["hello"],
        "gevent": ["hello", "sleep"],
        "eventlet": ["hello", "sleep"],
    }
    chosen = SimpleNamespace(
        args=run.parse_args(["--quick", "--workloads", "hello,hello-close"]),
        workloads=[WORKLOADS["hello"], WORKLOADS["hello-close"]],
    )
    assert [w.key for w in run.class_workloads(chosen, "gevent")] == ["hello", "hello-close"]  # type: ignore[arg-type]
    full = SimpleNamespace(args=run.parse_args([]), workloads=list(WORKLOADS.values()))
    assert len(run.class_workloads(full, "sync")) == 5  # type: ignore[arg-type]  # all but sleep
    assert run.results_dir(run.parse_args(["--quick"])) == run.RESULTS / "quick"
    assert run.results_dir(run.parse_args([])) == run.RESULTS
    assert run.results_dir(run.parse_args(["--quick", "--out", "/elsewhere"])) == Path("/elsewhere")


def test_the_bare_gevent_loop_is_reported_as_a_share_and_never_judged(tmp_path: Path) -> None:
    res = report.Results()
    for server, rps in (("forkhorn", 12_000.0), ("gunicorn", 5_000.0)):
        res.servers.append(report.ServerFigures(server, "gevent", 0.3, 25_000.0))
        res.runs.append(report.Run(server, "gevent", "sleep", _result(rps)))
    # the loop resets connections wrk still holds at the end: its errors fail nothing
    res.reference.append(report.Run("reference", "gevent", "sleep", _result(15_000.0, 7)))
    text = report.write_all(res, tmp_path)
    assert "| gevent | 10 ms sleep, c200 | 15,000 | 12,000 | 0.80 |" in text
    rows = report.throughput_rows(res)
    assert [(r["workload"], r["ratio"]) for r in rows] == [("sleep", 2.4)]  # no third server
    assert json.loads((tmp_path / "latest.json").read_text())["reference"][0]["share"] == 0.8
    assert report.exit_status(res, fail_on_errors=True) == 0


def reference_context(argv: list[str], workload: str, logdir: Path | None = None) -> Any:
    """What ``run.start_reference`` reads of a run: its options, one workload, the
    results it lists skips in, where server logs go, the servers' environment."""
    return SimpleNamespace(
        args=run.parse_args(argv), workloads=[WORKLOADS[workload]], results=report.Results(),
        logdir=logdir, env=run.server_env(), say=print,
    )  # fmt: skip


def test_the_bare_loops_run_only_beside_forkhorn_sync_and_gevent_in_a_full_run() -> None:
    gevent = ServerSpec("forkhorn", "py", "forkhorn", "gevent")
    sync = ServerSpec("forkhorn", "py", "forkhorn", "sync")
    eventlet = ServerSpec("forkhorn", "py", "forkhorn", "eventlet")
    gthread = ServerSpec("forkhorn", "py", "forkhorn", "gthread")
    cases = [
        (["--quick"], gevent, "sleep", ["bare gevent loop (reference)"]),  # too long for quick
        (["--quick"], sync, "hello-close", ["bare sync loop (reference)"]),
        (["--skip-reference"], gevent, "sleep", []),
        (["--skip-reference"], sync, "hello-close", []),
        ([], sync, "sleep", []),  # none of the workloads it runs beside
        ([], gevent, "hello-close", []),
        ([], eventlet, "sleep", []),
        ([], gthread, "hello", []),
        ([], None, "sleep", []),  # forkhorn's side is skipped for the class
    ]
    for argv, spec, workload, skipped in cases:
        ctx = reference_context(argv, workload)
        assert run.start_reference(ctx, spec, ExitStack()) is None
        assert [what for what, _ in ctx.results.skipped] == skipped, (argv, spec, workload)


def test_a_full_sync_run_starts_the_bare_loop_which_answers_and_closes(tmp_path: Path) -> None:
    ctx = reference_context([], "hello-close", tmp_path)
    ours = ServerSpec("forkhorn", sys.executable, "forkhorn", "sync")
    with ExitStack() as stack:
        loop = run.start_reference(ctx, ours, stack)
        assert loop is not None and not ctx.results.skipped
        assert loop.proc is not None and len(children_of(loop.proc.pid)) == 1  # 2 processes
        with socket.create_connection(("127.0.0.1", loop.port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = b""
            while chunk := sock.recv(4096):  # it closes after the response
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"\r\nConnection: close\r\n" in answer and answer.endswith(HELLO)


def test_a_full_gevent_run_starts_the_bare_loop_with_forkhorns_interpreter(tmp_path: Path) -> None:
    # a real start: with gevent the loop serves the bench app's two routes; without it
    # (the harness's own test venv) the loop cannot start, and the run lists why
    ctx = reference_context([], "sleep", tmp_path)
    ours = ServerSpec("forkhorn", sys.executable, "forkhorn", "gevent")
    with ExitStack() as stack:
        loop = run.start_reference(ctx, ours, stack)
        if importlib.util.find_spec("gevent") is None:
            assert loop is None
            [(what, why)] = ctx.results.skipped
            assert what == "bare gevent loop (reference)"
            assert "No module named 'gevent'" in why
        else:
            assert loop is not None and not ctx.results.skipped
            assert http_status(loop.port, "/sleep") == http_status(loop.port, "/") == 200
