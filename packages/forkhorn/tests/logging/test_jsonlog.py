"""JSON access lines: one valid ASCII JSON object whatever the client sent."""

from __future__ import annotations

import json

import pytest
from forkhorn.logging.jsonlog import JsonAccessFormatter, text_of

BASE = {
    "REMOTE_ADDR": "10.1.2.3",
    "REQUEST_METHOD": "GET",
    "PATH_INFO": "/p",
    "QUERY_STRING": "",
    "SERVER_PROTOCOL": "HTTP/1.1",
}


def line(environ, status="200 OK", sent=3, took=0.002) -> str:
    return JsonAccessFormatter().format(dict(BASE, **environ), status, [], sent, took)


@pytest.mark.parametrize(
    "value",
    ['a"b', "back\\slash", "\x01\x7f", '\r\n{"forged": 1}', "x" * 20000, "\t", "}", "\u2028"],
)
def test_hostile_values_stay_inside_one_object(value):
    text = line({"HTTP_USER_AGENT": value, "HTTP_REFERER": value, "PATH_INFO": value})
    assert "\n" not in text and "\r" not in text and text.isascii()
    record = json.loads(text)
    assert record["user_agent"] == value and record["referer"] == value
    assert record["path"] == value


def test_environ_bytes_are_shown_as_the_text_the_client_meant():
    utf8 = "caf\xc3\xa9"  # b"caf\xc3\xa9" decoded as latin-1 by the server
    invalid = "\xff\xfe"  # not UTF-8
    record = json.loads(line({"HTTP_USER_AGENT": utf8, "HTTP_REFERER": invalid}))
    assert record["user_agent"] == "café"
    assert record["referer"] == "\\xff\\xfe"
    assert text_of("plain") == "plain"


def test_fields_and_types():
    record = json.loads(line({"QUERY_STRING": "a=1", "forkhorn.request_id": "rid"},
                             status="404 Not Found", sent=0, took=0.0015))  # fmt: skip
    assert record["status"] == 404 and record["bytes"] == 0
    assert record["duration_ms"] == 1.5
    assert record["query"] == "a=1" and record["request_id"] == "rid"
    assert record["referer"] is None and record["user_agent"] is None
    assert record["logger"] == "forkhorn.access" and record["level"] == "info"
    assert set(record) == {
        "time", "level", "logger", "pid", "remote_addr", "method", "path", "query", "protocol",
        "status", "bytes", "duration_ms", "user_agent", "referer", "request_id",
    }  # fmt: skip


def test_non_string_values_and_odd_status():
    record = json.loads(line({"HTTP_USER_AGENT": 42}, status="xyz"))
    assert record["user_agent"] == "42" and record["status"] == "xyz"


def test_request_id_generated_when_absent():
    formatter = JsonAccessFormatter(request_id_for=lambda environ: "generated")
    record = json.loads(formatter.format(dict(BASE), "200 OK", [], 0, 0.0))
    assert record["request_id"] == "generated"


def test_a_status_with_non_ascii_digits_stays_valid_json():
    line = JsonAccessFormatter().format({}, "\u00b2\u0663 Odd", [], 0, 0.0)
    assert json.loads(line)["status"] == "\u00b2\u0663" and line.isascii()


def test_format_bytes_is_the_line_and_a_newline():
    formatter = JsonAccessFormatter()
    data = formatter.format_bytes({"REMOTE_ADDR": "::1"}, "200 OK", [], 3, 0.5)
    assert data.endswith(b"}\n") and data.count(b"\n") == 1
    assert json.loads(data)["bytes"] == 3
