"""The error log's Gunicorn format, the access log's atoms and escaping, and reopening."""

from __future__ import annotations

import base64
import re

import pytest
from forkhorn.config import Config
from forkhorn.logging import AccessFormatter, Logger, escape
from forkhorn.logging.access import AccessContext

ENVIRON = {
    "REMOTE_ADDR": "10.1.2.3",
    "REQUEST_METHOD": "GET",
    "RAW_URI": "/path?q=1",
    "PATH_INFO": "/path",
    "QUERY_STRING": "q=1",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "HTTP_REFERER": "http://ref/",
    "HTTP_USER_AGENT": "curl/8",
    "HTTP_X_FORWARDED_FOR": "1.1.1.1",
    "HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"alice:secret").decode(),
}


def fmt(format_: str, environ=None, status="200 OK", headers=(), sent=12, took=0.25) -> str:
    ctx = AccessContext(dict(environ or ENVIRON), status, list(headers), sent, took)
    return AccessFormatter(format_).format(ctx)


def test_gunicorn_default_format():
    line = fmt('%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"')
    assert re.fullmatch(
        r"10\.1\.2\.3 - alice \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "
        r'"GET /path\?q=1 HTTP/1\.1" 200 12 "http://ref/" "curl/8"',
        line,
    )


@pytest.mark.parametrize(
    ("atom", "expected"),
    [
        ("m", "GET"),
        ("U", "/path"),
        ("q", "q=1"),
        ("H", "HTTP/1.1"),
        ("B", "12"),
        ("T", "0"),
        ("M", "250"),
        ("D", "250000"),
        ("L", "0.250000"),
        ("{x-forwarded-for}i", "1.1.1.1"),
        ("{X-Missing}i", "-"),
        ("{content-type}o", "text/x"),
        ("{REMOTE_ADDR}e", "10.1.2.3"),
        ("nonsense", "-"),
    ],
)
def test_atoms(atom, expected):
    assert fmt(f"%({atom})s", headers=[("Content-Type", "text/x")]) == expected


def test_b_is_dash_for_an_empty_body_and_p_is_the_pid():
    assert fmt("%(b)s", sent=0) == "-"
    assert re.fullmatch(r"<\d+>", fmt("%(p)s"))


def test_client_values_cannot_forge_lines_or_fields():
    hostile = dict(ENVIRON, HTTP_USER_AGENT='x"\r\n10.0.0.1 - - "GET /admin', RAW_URI="/\x1b[31m\\")
    line = fmt('"%(r)s" "%(a)s"', environ=hostile)
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    assert line == r'"GET /\x1b[31m\\ HTTP/1.1" "x\"\x0d\x0a10.0.0.1 - - \"GET /admin"'
    assert escape("caf\xe9") == r"caf\xe9"


def test_only_used_atoms_are_computed():
    formatter = AccessFormatter("%(s)s %(s)s %(m)s")
    assert [atom for atom, _ in formatter._getters] == ["s", "m"]


def test_invalid_format_is_rejected():
    with pytest.raises(ValueError):
        AccessFormatter("%(h)d")


def make_logger(tmp_path, **settings) -> Logger:
    cfg = Config()
    cfg.set("errorlog", str(tmp_path / "error.log"))
    for name, value in settings.items():
        cfg.set(name, value)
    return Logger(cfg)


def test_error_log_line_format(tmp_path):
    log = make_logger(tmp_path)
    log.info("Starting forkhorn %s", "0.1.0")
    log.debug("hidden at info level")
    text = (tmp_path / "error.log").read_text()
    assert re.fullmatch(
        r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[\d+\] \[INFO\] Starting forkhorn 0\.1\.0\n",
        text,
    )


def test_access_log_and_reopen(tmp_path):
    log = make_logger(tmp_path, accesslog=str(tmp_path / "access.log"), access_log_format="%(s)s")
    assert log.access_enabled
    log.access(ENVIRON, "200 OK", [], 1, 0.1)
    (tmp_path / "access.log").rename(tmp_path / "access.log.1")
    log.reopen_files()
    log.access(ENVIRON, "404 Not Found", [], 1, 0.1)
    assert (tmp_path / "access.log.1").read_text() == "200\n"
    assert (tmp_path / "access.log").read_text() == "404\n"


def test_access_log_off_by_default(tmp_path):
    assert not make_logger(tmp_path).access_enabled
