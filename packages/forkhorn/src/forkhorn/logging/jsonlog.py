"""JSON logs (``log_format = "json"``): one JSON object per line, access and error logs.

Theory of operation
-------------------
Access lines are built by hand around the C string encoder that ``json.dumps`` itself uses
(``encode_basestring_ascii``): the field names and numbers are ours, every string value
goes through the encoder, so the cost is a few C calls per field instead of a
``json.dumps`` of a dict. Error records (rare) use ``json.dumps``.

Access fields: ``time`` (ISO 8601, ms), ``level`` (``info``), ``logger``
(``forkhorn.access``), ``pid``, ``remote_addr``, ``method``, ``path``, ``query``,
``protocol``, ``status`` (int), ``bytes``, ``duration_ms`` (float, µs precision),
``user_agent``, ``referer``, ``request_id``. Absent headers are ``null``.
Error fields: ``time``, ``level``, ``logger``, ``pid``, ``message``, and ``exception``
(the formatted traceback) when the record carries one.

Invariants
----------
* Every line is exactly one valid JSON object: ASCII only (``ensure_ascii``), so control
  characters, quotes, backslashes and line breaks in client data are ``\\``-escaped and can
  never end the object or the line.
* Environ strings are latin-1 decoded bytes (PEP 3333). A value that is valid UTF-8 once
  re-encoded is logged as that text (``é`` stays ``é``); invalid bytes become ``\\xHH``
  escapes (Python's ``backslashreplace``), so the JSON string is always valid Unicode.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from json.encoder import encode_basestring_ascii as _json_string  # type: ignore[attr-defined]
from typing import Any

from forkhorn.logging.clock import LogClock

Environ = dict[str, Any]

_ACCESS_LINE = (
    '{"time":"%s","level":"info","logger":"forkhorn.access","pid":%d,'
    '"remote_addr":%s,"method":%s,"path":%s,"query":%s,"protocol":%s,"status":%s,'
    '"bytes":%d,"duration_ms":%.3f,"user_agent":%s,"referer":%s,"request_id":%s}\n'
)


def text_of(value: Any) -> str:
    """An environ value as the text the client meant (see the module invariants)."""
    if type(value) is not str:
        value = str(value)
    if value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # not a latin-1 environ string: already text
        return value


def json_string(value: Any) -> str:
    """A JSON string literal (with quotes) for an environ value; ``null`` for None."""
    if value is None:
        return "null"
    return str(_json_string(text_of(value)))


class JsonAccessFormatter:
    """``format(environ, status, headers, sent, request_time)`` -> one JSON object;
    ``format_bytes(...)`` -> the same line encoded, newline included (what is written)."""

    def __init__(
        self,
        clock: LogClock | None = None,
        request_id_for: Callable[[Environ], str] | None = None,
    ) -> None:
        self.clock = clock or LogClock()
        self._request_id_for = request_id_for

    def format_bytes(
        self,
        environ: Environ,
        status: str,
        headers: Sequence[tuple[str, str]],
        sent: int,
        request_time: float,
    ) -> bytes:
        get = environ.get
        request_id = get("forkhorn.request_id")
        if request_id is None and self._request_id_for is not None:
            request_id = self._request_id_for(environ)
        code = status.partition(" ")[0]
        remote, method, path = get("REMOTE_ADDR"), get("REQUEST_METHOD"), get("PATH_INFO")
        query, protocol = get("QUERY_STRING", ""), get("SERVER_PROTOCOL")
        agent, referer = get("HTTP_USER_AGENT"), get("HTTP_REFERER")
        enc = _json_string
        # Inline fast path: plain ASCII str values go straight to the C encoder; anything
        # else (None, non-ASCII, not a str) takes json_string.
        line = _ACCESS_LINE % (
            self.clock.iso(),
            self.clock.pid,
            enc(remote) if type(remote) is str and remote.isascii() else json_string(remote),
            enc(method) if type(method) is str and method.isascii() else json_string(method),
            enc(path) if type(path) is str and path.isascii() else json_string(path),
            enc(query) if type(query) is str and query.isascii() else json_string(query),
            enc(protocol)
            if type(protocol) is str and protocol.isascii()
            else json_string(protocol),
            code if code.isdigit() and code.isascii() else json_string(code),
            sent,
            request_time * 1000.0,
            enc(agent) if type(agent) is str and agent.isascii() else json_string(agent),
            enc(referer) if type(referer) is str and referer.isascii() else json_string(referer),
            enc(request_id)
            if type(request_id) is str and request_id.isascii()
            else json_string(request_id),
        )
        return line.encode("ascii", "backslashreplace")  # ASCII already: a copy, no check

    def format(self, *args: Any) -> str:
        """The line alone (no newline)."""
        return self.format_bytes(*args)[:-1].decode("ascii")


class JsonErrorFormatter(logging.Formatter):
    """A ``logging.Formatter`` writing each record as one JSON object."""

    def __init__(self, clock: LogClock | None = None) -> None:
        super().__init__()
        self.clock = clock or LogClock()

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            "time": self.clock.iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = self.formatException(record.exc_info)
            fields["exception"] = record.exc_text
        elif record.exc_text:
            fields["exception"] = record.exc_text
        if record.stack_info:
            fields["stack"] = self.formatStack(record.stack_info)
        return json.dumps(fields, ensure_ascii=True, default=str, separators=(",", ":"))
