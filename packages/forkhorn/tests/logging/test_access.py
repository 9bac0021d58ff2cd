"""The access-log formatter: every Gunicorn atom, escaping, numeric conversions, the clock."""

from __future__ import annotations

import base64
import io
import os
import re
import time

import pytest
from forkhorn.logging import AccessFormatter, escape
from forkhorn.logging.access import DEFAULT_FORMAT
from forkhorn.logging.clock import LogClock

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
    "CONTENT_TYPE": "application/json",
    "HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"alice:secret").decode(),
    "wsgi.url_scheme": "https",
    "wsgi.version": (1, 0),
}


def fmt(format_: str, environ=None, status="200 OK", headers=(), sent=12, took=0.25) -> str:
    return AccessFormatter(format_).format(
        dict(ENVIRON if environ is None else environ), status, list(headers), sent, took
    )


def test_gunicorn_default_format():
    line = fmt(DEFAULT_FORMAT)
    assert re.fullmatch(
        r"10\.1\.2\.3 - alice \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "
        r'"GET /path\?q=1 HTTP/1\.1" 200 12 "http://ref/" "curl/8"',
        line,
    )


@pytest.mark.parametrize(
    ("atom", "expected"),
    [
        ("h", "10.1.2.3"),
        ("l", "-"),
        ("u", "alice"),
        ("r", "GET /path?q=1 HTTP/1.1"),
        ("m", "GET"),
        ("U", "/path"),
        ("q", "q=1"),
        ("H", "HTTP/1.1"),
        ("s", "200"),
        ("B", "12"),
        ("b", "12"),
        ("f", "http://ref/"),
        ("a", "curl/8"),
        ("T", "0"),
        ("M", "250"),
        ("D", "250000"),
        ("L", "0.250000"),
        ("{x-forwarded-for}i", "1.1.1.1"),
        ("{X-Forwarded-For}i", "1.1.1.1"),
        ("{content-type}i", "application/json"),
        ("{X-Missing}i", "-"),
        ("{content-type}o", "text/x"),
        ("{Content-Type}o", "text/x"),
        ("{x-missing}o", "-"),
        ("{REMOTE_ADDR}e", "10.1.2.3"),
        ("{remote_addr}e", "10.1.2.3"),
        ("{wsgi.url_scheme}e", "https"),
        ("{wsgi.version}e", "(1, 0)"),
        ("{nothing}e", "-"),
        ("nonsense", "-"),
    ],
)
def test_atoms(atom, expected):
    assert fmt(f"%({atom})s", headers=[("Content-Type", "text/x")]) == expected


def test_b_is_dash_for_an_empty_body_and_p_is_the_pid():
    assert fmt("%(b)s", sent=0) == "-"
    assert fmt("%(B)s", sent=0) == "0"
    assert fmt("%(p)s") == f"<{os.getpid()}>"


def test_request_line_without_raw_uri():
    environ = {k: v for k, v in ENVIRON.items() if k != "RAW_URI"}
    assert fmt("%(r)s", environ=environ) == "GET /path?q=1 HTTP/1.1"


def test_numeric_conversions_work_as_in_gunicorn():
    assert fmt("%(D)d|%(B)05d|%(T)d|%(M)x", sent=7, took=1.5) == "1500000|00007|1|5dc"
    assert fmt("%(h)-10s|%%|%(s)s") == "10.1.2.3  |%|200"


def test_client_values_cannot_forge_lines_or_fields():
    hostile = dict(ENVIRON, HTTP_USER_AGENT='x"\r\n10.0.0.1 - - "GET /admin', RAW_URI="/\x1b[31m\\")
    line = fmt('"%(r)s" "%(a)s"', environ=hostile)
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    assert line == r'"GET /\x1b[31m\\ HTTP/1.1" "x\"\x0d\x0a10.0.0.1 - - \"GET /admin"'


def test_every_client_value_is_escaped_when_one_is_hostile():
    hostile = dict(ENVIRON, HTTP_REFERER="\x7f\xff\xfe", HTTP_USER_AGENT="ok")
    line = fmt('%(h)s "%(f)s" "%(a)s" %({x-forwarded-for}i)s', environ=hostile)
    assert line == r'10.1.2.3 "\x7f\xff\xfe" "ok" 1.1.1.1'
    user = base64.b64encode(b'ev"il\n:pw').decode()
    line = fmt("%(u)s", environ=dict(ENVIRON, HTTP_AUTHORIZATION="Basic " + user))
    assert line == r"ev\"il\x0a"


def test_values_apps_put_in_the_environ_that_are_not_strings():
    environ = dict(ENVIRON, HTTP_USER_AGENT=12345, HTTP_REFERER=b"\x01")
    assert fmt('%(a)s "%(f)s"', environ=environ) == "12345 \"b'\\\\x01'\""


def test_escape():
    assert escape("plain text") == "plain text"
    assert escape("caf\xe9") == r"caf\xe9"
    assert escape('a"b\\c\td') == r"a\"b\\c\x09d"


def test_only_used_atoms_are_in_the_compiled_function():
    formatter = AccessFormatter("%(s)s %(m)s")
    assert formatter.atoms == ["s", "m"]
    assert "REMOTE_ADDR" not in formatter.source and "HTTP_USER_AGENT" not in formatter.source


def test_user_text_never_becomes_code():
    formatter = AccessFormatter('%({x"; import os; "}i)s %({a\\nb}e)s')
    assert "import" not in formatter.source
    assert formatter.format({}, "200 OK", [], 0, 0.0) == "- -"


class _Writer:
    """What ``AccessFormatter.sink`` uses of a ``LineWriter``."""

    def __init__(self, line_buffered=False):
        self.line_buffered = line_buffered
        self.file = io.BytesIO()
        self.through: list[bytes] = []

    def write_bytes(self, data):
        self.through.append(data)


@pytest.mark.parametrize(
    "format_", [DEFAULT_FORMAT, '%(h)s "%(r)s" %(s)s %(b)s %(D)s %(l)s', "%(D)d %(a)s %%"]
)
@pytest.mark.parametrize(
    "environ",
    [ENVIRON, {}, dict(ENVIRON, HTTP_USER_AGENT='x"\r\n1 - - "GET /', RAW_URI="/\xe9\\")],
)
def test_the_compiled_sink_writes_what_format_bytes_returns(format_, environ):
    formatter = AccessFormatter(format_)
    calls = []
    writer = _Writer()
    sink = formatter.sink(writer, then=lambda *args: calls.append(args))
    args = (environ, "404 Not Found", [], 0, 0.25)
    sink(*args)
    assert writer.file.getvalue() == formatter.format_bytes(*args)
    assert calls == [args]
    buffered = _Writer(line_buffered=True)  # a terminal: every line goes through write_bytes
    formatter.sink(buffered)(*args)
    assert buffered.through == [formatter.format_bytes(*args)] and not buffered.file.getvalue()


def test_the_compiled_sink_runs_inlined_statements_with_their_own_names():
    counted = []
    inline = (["    _m_count(status, took)"], {"_m_count": lambda *args: counted.append(args)})
    AccessFormatter("%(s)s").sink(_Writer(), inline=inline)(ENVIRON, "200 OK", [], 1, 0.5)
    assert counted == [("200 OK", 0.5)]
    with pytest.raises(ValueError):  # a name that could shadow the formatter's own
        AccessFormatter("%(s)s").sink(_Writer(), inline=(["    pass"], {"_clf": None}))


def test_fixed_atoms_are_literal_text_and_status_lines_are_remembered():
    formatter = AccessFormatter("%(l)s %(nonsense)s %(s)s")
    assert formatter._constants == ["- - "]
    assert formatter.format({}, "200 OK", [], 0, 0.0) == "- - 200"
    assert formatter.format({}, "599", [], 0, 0.0) == "- - 599"
    assert formatter._codes == {"200 OK": "200", "599": "599"}
    for code in range(1000):  # an app inventing statuses cannot grow the table for ever
        assert formatter.format({}, f"{code} X", [], 0, 0.0) == f"- - {code}"
    assert len(formatter._codes) <= 256


def test_invalid_format_is_rejected():
    with pytest.raises(ValueError):
        AccessFormatter("%(h)d")
    with pytest.raises(ValueError):
        AccessFormatter("%(h)s %s")


def test_request_id_atom_uses_the_environ_or_the_generator():
    calls = []

    def request_id_for(environ):
        calls.append(1)
        environ["forkhorn.request_id"] = "gen-1"
        return "gen-1"

    formatter = AccessFormatter("%({forkhorn.request_id}e)s", request_id_for=request_id_for)
    assert formatter.format({"forkhorn.request_id": "given"}, "200 OK", [], 0, 0.0) == "given"
    assert formatter.format({}, "200 OK", [], 0, 0.0) == "gen-1"
    assert calls == [1]


def test_clock_formats_once_per_second_and_matches_strftime():
    clock = LogClock()
    first = clock.clf()
    assert clock.clf() is first or clock.clf() == first  # cached within the second
    now = time.time()
    assert clock.clf() in {
        time.strftime("[%d/%b/%Y:%H:%M:%S %z]", time.localtime(now - 1)),
        time.strftime("[%d/%b/%Y:%H:%M:%S %z]", time.localtime(now)),
        time.strftime("[%d/%b/%Y:%H:%M:%S %z]", time.localtime(now + 1)),
    }
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d", clock.iso(1_700_000_000.25)
    )
    assert clock.iso(1_700_000_000.25)[19:23] == ".250"
