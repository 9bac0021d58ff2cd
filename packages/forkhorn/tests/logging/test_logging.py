"""``Logger``: the error log (text and JSON), the access sinks, syslog, ``logconfig*``,
``logger_class``, StatsD counters of log calls, and reopening files."""

from __future__ import annotations

import json
import logging
import re
import socket
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
from forkhorn.config import Config
from forkhorn.logging import Logger, LoggerClassError, load_logger_class, make_logger
from forkhorn.logging.handlers import LogConfigError, parse_syslog_address

ENVIRON = {
    "REMOTE_ADDR": "10.1.2.3",
    "REQUEST_METHOD": "GET",
    "RAW_URI": "/path?q=1",
    "PATH_INFO": "/path",
    "QUERY_STRING": "q=1",
    "SERVER_PROTOCOL": "HTTP/1.1",
}
STAMP = r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[\d+\] "


@pytest.fixture(autouse=True)
def _restore_logging():
    """Loggers are process-wide: leave them as found for the next test."""
    names = ("forkhorn.error", "forkhorn.access", "gunicorn.error", "gunicorn.access")
    saved = {name: (list(logging.getLogger(name).handlers), logging.getLogger(name).propagate,
                    logging.getLogger(name).level) for name in names}  # fmt: skip
    yield
    for name, (handlers, propagate, level) in saved.items():
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            if handler not in handlers:
                handler.close()
        for handler in handlers:
            logger.addHandler(handler)
        logger.propagate = propagate
        logger.setLevel(level)


def make_logger_(tmp_path, **settings) -> Logger:
    cfg = Config()
    cfg.set("errorlog", str(tmp_path / "error.log"))
    for name, value in settings.items():
        cfg.set(name, value)
    return Logger(cfg)


@pytest.fixture
def udp_listener():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5.0)
    yield sock
    sock.close()


def received(sock: socket.socket) -> list[str]:
    lines = []
    sock.settimeout(0.5)
    while True:
        try:
            lines += sock.recv(65536).decode().split("\n")
        except TimeoutError:
            return lines


# --- the error log ----------------------------------------------------------------------


def test_error_log_line_format(tmp_path):
    log = make_logger_(tmp_path)
    log.info("Starting forkhorn %s", "0.1.0")
    log.debug("hidden at info level")
    text = (tmp_path / "error.log").read_text()
    assert re.fullmatch(STAMP + r"\[INFO\] Starting forkhorn 0\.1\.0\n", text)


def test_loglevel_debug_shows_debug_lines(tmp_path):
    log = make_logger_(tmp_path, loglevel="debug")
    log.debug("visible %d", 1)
    log.log("warning", "by name")
    text = (tmp_path / "error.log").read_text()
    assert "[DEBUG] visible 1" in text and "[WARNING] by name" in text


def test_json_error_log_is_one_object_per_line_with_the_exception(tmp_path):
    log = make_logger_(tmp_path, log_format="json")
    log.info('quote " and newline \n and \x01 from %s', "caf\xe9")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("failed")
    lines = (tmp_path / "error.log").read_text().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == 'quote " and newline \n and \x01 from caf\xe9'
    assert first["level"] == "info" and first["logger"] == "forkhorn.error"
    assert isinstance(first["pid"], int)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d", first["time"])
    assert second["level"] == "error" and "RuntimeError: boom" in second["exception"]
    assert all(line.isascii() for line in lines)


# --- the access log and its sinks -------------------------------------------------------


def test_access_log_off_by_default_and_nothing_is_built(tmp_path):
    log = make_logger_(tmp_path)
    assert not log.access_enabled
    assert log._sinks == () and log._formatter is None and log.statsd is None


def test_access_enabled_by_statsd_or_metrics_alone(tmp_path, udp_listener):
    port = udp_listener.getsockname()[1]
    assert make_logger_(tmp_path, statsd_host=f"127.0.0.1:{port}").access_enabled
    metrics_only = make_logger_(tmp_path, metrics_bind="127.0.0.1:0")
    assert metrics_only.access_enabled and metrics_only._formatter is None


def test_access_log_is_buffered_and_reopen_loses_nothing(tmp_path):
    access = tmp_path / "access.log"
    log = make_logger_(tmp_path, accesslog=str(access), access_log_format="%(s)s")
    assert log.access_enabled
    log.access(ENVIRON, "200 OK", [], 1, 0.1)
    assert access.read_text() == ""  # buffered: nothing written per request
    access.rename(tmp_path / "access.log.1")
    log.reopen_files()
    log.access(ENVIRON, "404 Not Found", [], 1, 0.1)
    log.flush()
    assert (tmp_path / "access.log.1").read_text() == "200\n"
    assert access.read_text() == "404\n"


def test_access_log_json_format(tmp_path):
    access = tmp_path / "access.log"
    log = make_logger_(
        tmp_path, accesslog=str(access), log_format="json", forwarded_allow_ips="10.0.0.0/8"
    )  # the peer (REMOTE_ADDR 10.1.2.3) is a trusted proxy: its X-Request-ID is kept
    log.access(dict(ENVIRON, HTTP_X_REQUEST_ID="req-42"), "201 Created", [], 5, 0.0125)
    log.flush()
    record = json.loads(access.read_text())
    assert record["status"] == 201 and record["bytes"] == 5 and record["duration_ms"] == 12.5
    assert record["request_id"] == "req-42" and record["method"] == "GET"


def test_access_line_statsd_and_metrics_in_one_function(tmp_path, udp_listener):
    from types import SimpleNamespace

    from forkhorn.instrument.board import MetricsBoard

    access = tmp_path / "access.log"
    port = udp_listener.getsockname()[1]
    log = make_logger_(tmp_path, accesslog=str(access), metrics_bind="127.0.0.1:0",
                       statsd_host=f"127.0.0.1:{port}")  # fmt: skip
    board = MetricsBoard(capacity=1)
    log.bind_worker(SimpleNamespace(metrics=board.region(0)))
    assert len(log._sinks) == 1 and log.access is log._sinks[0]  # no fan-out frame
    log.access(ENVIRON, "200 OK", [], 5, 0.002)
    log.access(dict(ENVIRON, HTTP_USER_AGENT='x"\n- - "GET /admin'), "404 Not Found", [], 0, 0.3)
    log.flush()
    lines = access.read_text().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith('"GET /path?q=1 HTTP/1.1" 200 5 "-" "-"')
    assert lines[1].endswith(r'"GET /path?q=1 HTTP/1.1" 404 - "-" "x\"\x0a- - \"GET /admin"')
    totals = board.totals([0])
    assert sorted(totals.requests()) == [("GET", "200", 1), ("GET", "404", 1)]
    assert totals.buckets()[0] == 1 and sum(totals.buckets()) == 2
    assert abs(totals.duration_sum - 0.302) < 1e-9
    sent = received(udp_listener)
    assert sent.count("forkhorn.requests:1|c") == 2 and "forkhorn.request.status.404:1|c" in sent


def test_json_access_line_then_metrics_without_a_fan_out(tmp_path):
    from types import SimpleNamespace

    from forkhorn.instrument.board import MetricsBoard

    access = tmp_path / "access.log"
    log = make_logger_(tmp_path, accesslog=str(access), metrics_bind="127.0.0.1:0",
                       log_format="json")  # fmt: skip
    board = MetricsBoard(capacity=1)
    log.bind_worker(SimpleNamespace(metrics=board.region(0)))
    assert len(log._sinks) == 1 and log.access is log._sinks[0]
    log.access(dict(ENVIRON), "201 Created", [], 2, 0.02)
    log.flush()
    assert json.loads(access.read_text())["status"] == 201
    assert board.totals([0]).requests() == [("GET", "201", 1)]


def test_statsd_sink_and_log_counters(tmp_path, udp_listener):
    port = udp_listener.getsockname()[1]
    log = make_logger_(tmp_path, statsd_host=f"127.0.0.1:{port}", statsd_prefix="app",
                       dogstatsd_tags="env:test")  # fmt: skip
    log.access(ENVIRON, "404 Not Found", [], 1, 0.0125)
    log.error("an error")
    log.warning("a warning")
    log.critical("critical")
    try:
        raise ValueError("x")
    except ValueError:
        log.exception("an exception")
    log.info("", extra={"metric": "custom.gauge", "value": 7, "mtype": "gauge"})
    log.flush()
    lines = received(udp_listener)
    assert "app.forkhorn.requests:1|c|#env:test" in lines
    assert "app.forkhorn.request.duration:12.500|ms|#env:test" in lines
    assert "app.forkhorn.request.status.404:1|c|#env:test" in lines
    for name in ("error", "warning", "critical", "exception"):
        assert f"app.forkhorn.log.{name}:1|c|#env:test" in lines
    assert "app.forkhorn.log.error:1|c|#env:test" in lines
    assert lines.count("app.forkhorn.log.error:1|c|#env:test") == 1  # exception is apart
    assert "app.custom.gauge:7|g|#env:test" in lines
    text = (tmp_path / "error.log").read_text()
    assert "an error" in text and "custom" not in text  # a metric-only call logs nothing


# --- syslog -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("udp://localhost:514", (socket.SOCK_DGRAM, ("localhost", 514))),
        ("udp://Host", (socket.SOCK_DGRAM, ("host", 514))),
        ("tcp://10.0.0.1:601", (socket.SOCK_STREAM, ("10.0.0.1", 601))),
        ("udp://[::1]:5514", (socket.SOCK_DGRAM, ("::1", 5514))),
        ("unix:///dev/log", (None, "/dev/log")),
        ("unix:///dev/log#dgram", (socket.SOCK_DGRAM, "/dev/log")),
        ("unix:///run/x#stream", (socket.SOCK_STREAM, "/run/x")),
    ],
)
def test_parse_syslog_address(address, expected):
    assert parse_syslog_address(address) == expected


@pytest.mark.parametrize("address", ["http://x", "udp://h:port", "unix:///x#raw"])
def test_bad_syslog_address(address):
    with pytest.raises(LogConfigError):
        parse_syslog_address(address)


def test_syslog_receives_error_and_access_lines(tmp_path, udp_listener):
    port = udp_listener.getsockname()[1]
    log = make_logger_(tmp_path, syslog=True, syslog_addr=f"udp://127.0.0.1:{port}",
                       syslog_prefix="myapp", syslog_facility="local0",
                       access_log_format="%(m)s %(s)s")  # fmt: skip
    assert log.access_enabled  # access lines go to syslog even without accesslog
    log.warning("disk is %s", "full")
    log.access(ENVIRON, "200 OK", [], 1, 0.1)
    first = udp_listener.recv(4096).decode()
    second = udp_listener.recv(4096).decode()
    # <priority> = facility local0 (16) * 8 + severity (warning 4, info 6)
    assert re.fullmatch(r"<132>forkhorn\.myapp\.error: \[\d+\] disk is full\x00", first)
    assert re.fullmatch(r"<134>forkhorn\.myapp\.access: \[\d+\] GET 200\x00", second)


def test_syslog_without_access_redirect(tmp_path, udp_listener):
    port = udp_listener.getsockname()[1]
    log = make_logger_(tmp_path, syslog=True, syslog_addr=f"udp://127.0.0.1:{port}",
                       disable_redirect_access_to_syslog=True)  # fmt: skip
    assert not log.access_enabled


def test_unusable_syslog_is_reported_not_fatal(tmp_path):
    log = make_logger_(tmp_path, syslog=True, syslog_addr=f"unix://{tmp_path}/missing#dgram")
    log.info("still logging")
    text = (tmp_path / "error.log").read_text()
    assert "syslog is off" in text and "still logging" in text


def test_access_may_block_only_when_lines_leave_through_logging_or_a_subclass(
    tmp_path, udp_listener
):
    # the handler holds a closing response's last segment for the close only when the
    # access call between them cannot take long
    port = udp_listener.getsockname()[1]
    access = str(tmp_path / "access.log")
    assert not make_logger_(tmp_path, accesslog=access).access_may_block  # buffered writer
    assert not make_logger_(tmp_path, statsd_host=f"127.0.0.1:{port}").access_may_block
    assert not make_logger_(tmp_path, metrics_bind="127.0.0.1:0").access_may_block
    syslog = make_logger_(tmp_path, syslog=True, syslog_addr=f"udp://127.0.0.1:{port}")
    assert syslog.access_may_block  # lines go through a logging handler
    configured = make_logger_(tmp_path, accesslog=access,
                              logconfig_dict=_file_handler_config(tmp_path / "cfg.log"))  # fmt: skip
    assert configured.access_may_block

    class OwnAccess(Logger):
        def access(self, *args):
            pass

    cfg = Config()
    cfg.set("errorlog", str(tmp_path / "error.log"))
    cfg.set("accesslog", access)
    assert OwnAccess(cfg).access_may_block


# --- logconfig --------------------------------------------------------------------------


def _file_handler_config(path, logger="forkhorn.error"):
    return {
        "version": 1,
        "formatters": {"bare": {"format": "CFG %(levelname)s %(message)s"}},
        "handlers": {"file": {"class": "logging.FileHandler", "filename": str(path),
                              "formatter": "bare"}},
        "loggers": {logger: {"handlers": ["file"], "level": "INFO", "propagate": False},
                    logger.replace("error", "access"): {"handlers": ["file"], "level": "INFO",
                                                        "propagate": False}},
    }  # fmt: skip


def test_logconfig_dict_replaces_the_handlers(tmp_path):
    out = tmp_path / "cfg.log"
    log = make_logger_(tmp_path, logconfig_dict=_file_handler_config(out),
                       access_log_format="%(m)s %(s)s")  # fmt: skip
    assert log.access_enabled  # Gunicorn: a logconfig turns the access log on
    log.info("hello")
    log.access(ENVIRON, "200 OK", [], 1, 0.1)
    assert out.read_text() == "CFG INFO hello\nCFG INFO GET 200\n"


def test_gunicorn_logger_names_in_a_logconfig_still_work(tmp_path):
    out = tmp_path / "cfg.log"
    log = make_logger_(tmp_path, logconfig_dict=_file_handler_config(out, "gunicorn.error"))
    log.error("via gunicorn.error")
    assert out.read_text() == "CFG ERROR via gunicorn.error\n"


def test_logconfig_json(tmp_path):
    out = tmp_path / "cfg.log"
    path = tmp_path / "logging.json"
    path.write_text(json.dumps(_file_handler_config(out)))
    make_logger_(tmp_path, logconfig_json=str(path)).warning("from json")
    assert out.read_text() == "CFG WARNING from json\n"
    path.write_text("{not json")
    with pytest.raises(LogConfigError):
        make_logger_(tmp_path, logconfig_json=str(path))


def test_logconfig_ini_file(tmp_path):
    out = tmp_path / "cfg.log"
    ini = tmp_path / "logging.ini"
    ini.write_text(
        textwrap.dedent(f"""\
        [loggers]
        keys=root,error
        [handlers]
        keys=file
        [formatters]
        keys=bare
        [logger_root]
        level=WARNING
        handlers=
        [logger_error]
        level=INFO
        handlers=file
        propagate=0
        qualname=forkhorn.error
        [handler_file]
        class=FileHandler
        formatter=bare
        args=({str(out)!r},)
        [formatter_bare]
        format=INI %(message)s
        """)
    )
    make_logger_(tmp_path, logconfig=str(ini)).info("from ini")
    assert out.read_text() == "INI from ini\n"
    with pytest.raises(LogConfigError):
        make_logger_(tmp_path, logconfig=str(tmp_path / "missing.ini"))


# --- logger_class -----------------------------------------------------------------------


class CustomLogger(Logger):
    built = 0

    def setup(self, cfg):
        CustomLogger.built += 1
        super().setup(cfg)


def test_logger_class_resolution(tmp_path):
    assert load_logger_class("simple") is Logger
    assert load_logger_class("gunicorn.glogging.Logger") is Logger
    assert load_logger_class("forkhorn.logging.Logger") is Logger
    assert load_logger_class(CustomLogger) is CustomLogger
    assert load_logger_class(f"{__name__}.CustomLogger") is CustomLogger
    assert load_logger_class(f"{__name__}:CustomLogger") is CustomLogger
    cfg = Config()
    cfg.set("errorlog", str(tmp_path / "error.log"))
    cfg.set("logger_class", f"{__name__}.CustomLogger")
    assert type(make_logger(cfg)) is CustomLogger


@pytest.mark.parametrize(
    ("name", "cause"),
    [
        ("no_such_module.Logger", ModuleNotFoundError),
        (f"{__name__}.Missing", AttributeError),
        ("justaname", None),
        ("os.path:exists", None),  # importable, but not a class
    ],
)
def test_bad_logger_class_names_the_setting(name, cause):
    with pytest.raises(LoggerClassError, match="logger_class") as info:
        load_logger_class(name)
    if cause is not None:  # chained to what went wrong, for the traceback
        assert isinstance(info.value.__cause__, cause)


def test_wsgi_errors_writes_to_the_error_logs_files_or_else_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from forkhorn.logging.errors import ErrorsStream

    opened = logging.FileHandler(tmp_path / "open.log")
    delayed = logging.FileHandler(tmp_path / "delayed.log", delay=True)  # no stream yet
    log = logging.getLogger("forkhorn.test.wsgi_errors")
    owner = SimpleNamespace(cfg=SimpleNamespace(log_format="text"), error_log=log)
    stream = ErrorsStream(owner)
    try:
        log.handlers = [opened, delayed]
        stream.writelines(["one\n", "two\n"])
        log.handlers = [delayed]
        stream.write("three\n")
        stream.flush()
    finally:
        log.handlers = []
        opened.close()
    assert (tmp_path / "open.log").read_text() == "one\ntwo\n"
    assert capsys.readouterr().err == "three\n"
