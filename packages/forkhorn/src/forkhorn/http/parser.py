"""The request head parser: bytes in, ``Request`` (or an ``HTTPError``) out. Sans-IO.

Theory of operation. ``parse_head(buf)`` is called with the connection's read buffer each
time it grows (the same bytes plus appended ones, until a request is returned). It looks
for the end of the head with one ``find(b"\\r\\n\\r\\n")`` starting 3 bytes before where
the previous call stopped, so feeding byte by byte costs O(n) overall.

- Complete head (the hot path): decode it as latin-1 once, match the request line with one
  regex, split all field lines with one ``findall`` (``fields.fast_field_lines``), index
  them in one dict and look up the few headers that matter. Anything unusual (repeated
  names, Transfer-Encoding, ``_`` in a name, an invalid line) falls back to the careful
  path, which is also where every error is decided. A parser that never saw an
  incomplete head has no state to reset.
- Incomplete head: every line completed so far is validated at once (the request line
  fully, field lines one by one) and the unfinished line is checked against its size limit
  and, for the request line, the method prefix. So garbage is refused as early as it can be
  known, and (the invariant the tests check) the error is the same however the bytes were
  split: errors are raised in stream order, and the complete-head path applies the very same
  checks in the same order before anything that looks across lines (Host, framing).

Strictness (RFC 9112/9110), each leniency a named setting in ``ParserLimits``:
- lines end with CRLF; a bare LF or CR anywhere in the head is an error (never a line end);
  empty lines before the request line are skipped (RFC 9112 §2.2 SHOULD).
- request line: exactly three parts split on single SP; method a token, by default also
  3-20 chars without lower case or ``#`` (Gunicorn's convention,
  ``permit_unconventional_http_method`` relaxes, ``casefold_http_method`` upper-cases);
  version ``HTTP/1.0`` or ``HTTP/1.1`` (``HTTP/1.x`` above 1 only with
  ``permit_unconventional_http_version``, then handled as 1.1); anything else
  (``HTTP/2.0``, the h2 preface ``PRI * HTTP/2.0``, ``HTTP/0.9``) is 400 InvalidHTTPVersion.
- HTTP/1.1 needs exactly one valid Host (``permit_missing_host`` tolerates none); duplicate
  Host, Content-Length or Content-Type are refused.
- framing: Content-Length is 1*DIGIT (at most 18 ASCII digits); any Transfer-Encoding with
  Content-Length, on HTTP/1.0, or whose final coding is not exactly ``chunked`` is 400;
  unknown codings 501.
- names containing ``_`` follow ``header_map``: they could alias a ``-`` name in the WSGI
  environ (``X_Auth`` vs ``X-Auth``), so by default they are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from forkhorn.http import fields as fl
from forkhorn.http.errors import (
    HTTPError,
    InvalidHeader,
    InvalidHost,
    InvalidHTTPVersion,
    InvalidRequestLine,
    InvalidRequestMethod,
    LimitRequestLine,
    UnsupportedTransferCoding,
)
from forkhorn.http.request import Request
from forkhorn.http.target import Target, check_host, split_target

MAX_REQUEST_LINE = 8190
MAX_FIELDS = 32768
MAX_FIELD_SIZE = 32760
#: what ``limit_request_field_size = 0`` means: Gunicorn's default field size, not the
#: maximum (Gunicorn's corpus case limit_header_default_01 pins this)
ZERO_FIELD_SIZE = 8190
#: default total size of all chunk extensions in one body (the rest is abuse)
MAX_CHUNK_EXTENSIONS = 65536
MAX_CONTENT_LENGTH_DIGITS = 18

_CONVENTIONAL_METHOD_CHARS = r"!$%&'*+\-.^_`|~0-9A-Z"
_VERSION_RE = re.compile(r"HTTP/([0-9])\.([0-9])")
#: the common request line: a subset of what the careful path accepts, same result
#: (method, target, path, query, minor version)
_FAST_LINE_RE = re.compile(
    r"([A-Z]{3,20}) ((/[\x21\x24-\x3e\x40-\x7e\x80-\xff]*)"
    r"(?:\?([\x21\x24-\x7e\x80-\xff]*))?) HTTP/1\.([01])"
)
_CONTENT_LENGTH_RE = re.compile(f"[0-9]{{1,{MAX_CONTENT_LENGTH_DIGITS}}}")
_INF = 1 << 62
_VALID_HOSTS_MAX = 256
#: codings we know (and pass through undecoded); anything else in Transfer-Encoding is 501
_KNOWN_CODINGS = frozenset({"identity", "gzip", "x-gzip", "deflate", "compress", "x-compress"})
#: names the careful path collects for the checks across field lines (``_apply_watched``)
_WATCHED = frozenset(
    ("CONTENT-LENGTH", "TRANSFER-ENCODING", "HOST", "CONNECTION", "EXPECT", "CONTENT-TYPE")
)

RequestLine = tuple[str, str, Target, tuple[int, int]]


def _resolve(value: int, default_max: int, zero: int | None = None) -> int:
    """Gunicorn's limit semantics: 0 means ``zero`` (default: the largest we allow);
    values above the largest are capped."""
    if value <= 0:
        return default_max if zero is None else zero
    return min(value, default_max)


@dataclass(frozen=True, slots=True)
class ParserLimits:
    """Everything the parser and body decoders need from the config, resolved once."""

    max_line: int = 4094
    max_fields: int = 100
    max_field_size: int = 8190
    #: 0: unlimited
    max_body: int = 0
    permit_obsolete_folding: bool = False
    permit_unconventional_http_method: bool = False
    permit_unconventional_http_version: bool = False
    casefold_http_method: bool = False
    strip_header_spaces: bool = False
    header_map: str = "drop"
    permit_missing_host: bool = False
    #: upper-cased names a trusted peer may send with ``_`` (``forwarder_headers``)
    forwarder_headers: frozenset[str] = frozenset()
    max_chunk_extensions: int = MAX_CHUNK_EXTENSIONS
    #: the method rule ``permit_unconventional_http_method`` selects: the chars a method
    #: may hold (as a prefix match) and its shortest and longest length
    method_prefix_re: re.Pattern[str] = field(init=False, repr=False, compare=False)
    min_method: int = field(init=False, repr=False, compare=False)
    max_method: int = field(init=False, repr=False, compare=False)
    #: Host values found valid (bounded; shared by the parsers of a worker: clients send
    #: the same few hosts, and a sync worker makes a parser per connection)
    valid_hosts: dict[str, bool] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.permit_unconventional_http_method:
            chars, shortest, longest = fl.TCHAR, 1, _INF
        else:
            chars, shortest, longest = _CONVENTIONAL_METHOD_CHARS, 3, 20
        object.__setattr__(self, "method_prefix_re", re.compile(f"[{chars}]*"))
        object.__setattr__(self, "min_method", shortest)
        object.__setattr__(self, "max_method", longest)

    @property
    def max_trailer_section(self) -> int:
        return self.max_fields * (self.max_field_size + 2) + 2

    @classmethod
    def from_config(cls, cfg: Any) -> ParserLimits:
        return cls(
            max_line=_resolve(cfg.limit_request_line, MAX_REQUEST_LINE),
            max_fields=_resolve(cfg.limit_request_fields, MAX_FIELDS),
            max_field_size=_resolve(
                cfg.limit_request_field_size, MAX_FIELD_SIZE, zero=ZERO_FIELD_SIZE
            ),
            max_body=max(0, int(cfg.limit_request_body or 0)),
            permit_obsolete_folding=bool(cfg.permit_obsolete_folding),
            permit_unconventional_http_method=bool(cfg.permit_unconventional_http_method),
            permit_unconventional_http_version=bool(cfg.permit_unconventional_http_version),
            casefold_http_method=bool(cfg.casefold_http_method),
            strip_header_spaces=bool(cfg.strip_header_spaces),
            header_map=str(cfg.header_map),
            permit_missing_host=bool(getattr(cfg, "permit_missing_host", False)),
            forwarder_headers=frozenset(
                name.strip().upper() for name in (getattr(cfg, "forwarder_headers", None) or ())
            ),
        )


class RequestParser:
    """One per connection. ``trusted``: the peer is in ``forwarded_allow_ips`` (its
    ``forwarder_headers`` may carry ``_``); a callable is asked only when a name with
    ``_`` shows up. State is reset after each returned request.

    Class-level defaults for the scan state: a new parser stores two attributes."""

    _searched = 0  # bytes of buf already searched for the end of the head
    _line: RequestLine | None = None  # request line, once complete and valid
    _scanned = 0  # offset of the first field line not validated yet
    _fields = 0  # field lines validated so far
    _size = 0  # size of the current field so far (obs-fold continuation)

    def __init__(self, limits: ParserLimits, *, trusted: bool | Callable[[], bool] = False) -> None:
        self.limits = limits
        self.trusted = trusted

    def reset(self) -> None:
        """Forget the scan state of an incomplete head (the class-level defaults above)."""
        self._searched = 0
        self._line = None
        self._scanned = 0
        self._fields = 0
        self._size = 0

    def parse_head(self, buf: bytes | bytearray) -> tuple[Request, int] | None:
        # a slice and a compare, not startswith: parsing its arguments costs more
        start = self._skip_empty_lines(buf) if buf[:2] == b"\r\n" else 0
        searched = self._searched
        end = buf.find(b"\r\n\r\n", searched - 3 if searched - 3 > start else start)
        if end < 0:
            self._searched = len(buf)
            self._check_partial(buf, start)
            return None
        text = buf[start : end + 4].decode("latin-1")
        line_end = text.find("\r\n")
        request_line = self._line or self._parse_request_line(text[:line_end])
        hstart, hend = line_end + 2, len(text) - 2
        if hend > hstart:
            limits = self.limits
            fields = None
            if hend - hstart <= limits.max_field_size:
                fields = fl.fast_field_lines(text, hstart, hend)
                if fields is not None and len(fields) > limits.max_fields:
                    fields = None  # the careful path raises the right error
            if fields is None:
                pairs = fl.parse_field_lines(text, hstart, hend, limits)
                careful = [(name.upper(), value) for name, value in pairs]
                request = self._build_careful(request_line, careful)
            else:
                request = self._build(request_line, fields)
        else:
            request = self._build(request_line, [])
        if searched:
            self.reset()
        return request, end + 4

    def _skip_empty_lines(self, buf: bytes | bytearray) -> int:
        """RFC 9112 2.2: empty lines before the request line are skipped (up to a limit)."""
        start = 0
        while buf.startswith(b"\r\n", start):
            start += 2
        if start > self.limits.max_line:
            raise LimitRequestLine("too many empty lines before the request line")
        return start

    # -- incomplete head ---------------------------------------------------------------

    def _check_partial(self, buf: bytes | bytearray, start: int) -> None:
        """Validate what can be validated before the head is complete (see module doc)."""
        limits = self.limits
        if self._line is None:
            eol = buf.find(b"\r\n", start)
            if eol < 0:
                self._check_line_prefix(buf[start:].decode("latin-1"), complete=False)
                return
            self._line = self._parse_request_line(buf[start:eol].decode("latin-1"))
            self._scanned = eol + 2
        pos = self._scanned
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                break
            self._check_field_line(buf[pos:eol].decode("latin-1"))
            pos = eol + 2
        self._scanned = pos
        rest = len(buf) - pos - (1 if buf.endswith(b"\r") else 0)
        if rest > 0:
            folded = buf[pos : pos + 1] in (b" ", b"\t") and self._fields > 0
            fl.check_field_size((self._size if folded else 0) + rest + 2, limits)

    def _check_field_line(self, line: str) -> None:
        """The careful path's checks for one field line, keeping only counters."""
        limits = self.limits
        if line[:1] in (" ", "\t"):
            self._size += len(line) + 2
            fl.check_field_size(self._size, limits)
            fl.check_continuation(line, limits, first=self._fields == 0)
            return
        self._size = len(line) + 2
        fl.check_field_size(self._size, limits)
        if self._fields >= limits.max_fields:
            raise fl.LimitRequestHeaders(f"more than {limits.max_fields} header fields")
        fl.parse_field_line(line, limits)
        self._fields += 1

    # -- request line ------------------------------------------------------------------

    def _check_line_prefix(self, data: str, *, complete: bool) -> None:
        """Errors visible in a prefix of the request line, the earliest in the stream first:
        over the length limit (414), or a bad char in the method (a bare LF there: 400
        InvalidRequestLine, anything else 400 InvalidRequestMethod)."""
        limits = self.limits
        size = len(data)
        if not complete and data.endswith("\r"):
            size -= 1  # may be the start of the CRLF
        too_long_at = limits.max_line if size > limits.max_line else _INF
        method_end = limits.method_prefix_re.match(data, 0, size).end()  # type: ignore[union-attr]
        bad_at = _INF
        error: HTTPError | None = None
        if method_end < size and data[method_end] != " ":
            bad_at = method_end
            if data[method_end] == "\n":
                error = InvalidRequestLine("bare LF in the request line")
            else:
                error = InvalidRequestMethod(f"invalid method {data[: method_end + 1][:24]!r}")
        longest = limits.max_method
        if method_end > longest and bad_at > longest:
            bad_at = longest
            error = InvalidRequestMethod(f"method longer than {longest} characters")
        if too_long_at <= bad_at and too_long_at < _INF:
            raise LimitRequestLine(f"request line over {limits.max_line} bytes")
        if error is not None:
            raise error

    def _parse_request_line(self, line: str) -> RequestLine:
        fast = _FAST_LINE_RE.fullmatch(line)
        if fast is not None and len(line) <= self.limits.max_line and line[0] != "C":
            # (CONNECT takes authority-form only: the careful path refuses "/")
            method, target, path, query, minor = fast.groups("")
            version = (1, 1) if minor == "1" else (1, 0)
            return method, target, ("", None, None, path, query, ""), version
        self._check_line_prefix(line, complete=True)
        parts = line.split(" ")
        if len(parts) != 3:
            raise InvalidRequestLine(f"malformed request line {line[:60]!r}")
        method, target, version_text = parts
        if len(method) < self.limits.min_method:
            raise InvalidRequestMethod(f"invalid method {method[:24]!r}")
        match = _VERSION_RE.fullmatch(version_text)
        if match is None:
            raise InvalidHTTPVersion(f"invalid HTTP version {version_text[:24]!r}")
        version = (int(match.group(1)), int(match.group(2)))
        if version not in ((1, 1), (1, 0)):
            if version[0] != 1 or not self.limits.permit_unconventional_http_version:
                raise InvalidHTTPVersion(f"unsupported HTTP version {version_text!r}")
            version = (1, 1)
        if not target:
            raise InvalidRequestLine("empty request-target")
        if self.limits.casefold_http_method:
            method = method.upper()
        return method, target, split_target(method, target), version

    # -- header semantics --------------------------------------------------------------

    def _build(self, request_line: RequestLine, headers: list[tuple[str, str]]) -> Request:
        """The request from its line and fields, with the checks that look across fields.

        ``headers`` come from ``fields.fast_field_lines``, so no name holds ``_``. The usual
        head (no repeated name, no Transfer-Encoding) takes the straight path below; it
        applies the careful path's checks in the same order (Host, Content-Length, then a
        missing Host), so errors do not depend on the path."""
        method, uri, target, version = request_line
        index = dict(headers)
        if len(index) != len(headers) or "TRANSFER-ENCODING" in index:
            return self._build_careful(request_line, headers)
        scheme, host, port, path, query, fragment = target
        request = Request(method, uri, path, query, version, headers)
        if scheme:  # absolute-form
            request.scheme, request.host, request.port = scheme, host, port
        if fragment:
            request.fragment = fragment
        get = index.get
        host_value = get("HOST")
        if host_value is not None and host_value not in self.limits.valid_hosts:
            _check_host(host_value, self.limits)
        length = get("CONTENT-LENGTH")
        if length is not None:
            if not _CONTENT_LENGTH_RE.fullmatch(length):
                raise InvalidHeader(f"invalid Content-Length {length[:24]!r}")
            request.content_length = int(length)
        connection = get("CONNECTION")
        if version == (1, 1):
            if connection is not None and (
                connection == "close" or "close" in _connection_tokens([connection])
            ):
                request.keep_alive = False
            expect = get("EXPECT")
            if expect is not None and expect.lower() == "100-continue":
                request.expect_continue = True
            if host_value is None and not self.limits.permit_missing_host:
                raise InvalidHost("HTTP/1.1 request without a Host header")
        else:
            tokens = _connection_tokens([connection]) if connection is not None else ()
            request.keep_alive = "keep-alive" in tokens and "close" not in tokens
        return request

    def _build_careful(self, request_line: RequestLine, headers: list[tuple[str, str]]) -> Request:
        method, uri, (scheme, host, port, path, query, fragment), version = request_line
        if "_" in "".join(name for name, _ in headers):
            headers = self._map_underscores(headers)
        watched: dict[str, list[str]] = {}
        for name, value in headers:
            if name in _WATCHED:
                watched.setdefault(name, []).append(value)
        request = Request(
            method, uri, path, query, version, headers,
            fragment=fragment, scheme=scheme, host=host, port=port,
        )  # fmt: skip
        _apply_watched(request, watched, self.limits)
        return request

    def _map_underscores(self, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """``header_map`` for names with ``_`` (which WSGI would alias with ``-``)."""
        limits = self.limits
        trusted = self.trusted
        if callable(trusted):
            trusted = self.trusted = bool(trusted())
        kept = []
        for name, value in headers:
            if (
                "_" in name
                and not (trusted and name in limits.forwarder_headers)
                and not fl.keep_underscore_name(name, limits)
            ):
                continue
            kept.append((name, value))
        return kept


def _connection_tokens(values: list[str]) -> set[str]:
    """The lower-cased tokens of Connection field values."""
    tokens: set[str] = set()
    for value in values:
        lowered = value.lower()
        if "," in lowered:
            tokens.update(token.strip(" \t") for token in lowered.split(","))
        else:
            tokens.add(lowered)
    return tokens


def _check_host(value: str, limits: ParserLimits) -> None:
    """``check_host``, remembering valid values in ``limits.valid_hosts`` (bounded)."""
    check_host(value)
    if len(limits.valid_hosts) < _VALID_HOSTS_MAX:
        limits.valid_hosts[value] = True


def _apply_watched(request: Request, watched: dict[str, list[str]], limits: ParserLimits) -> None:
    """Host, framing and connection headers: the checks that look across field lines."""
    version = request.version
    for name in ("HOST", "CONTENT-LENGTH", "CONTENT-TYPE"):
        if len(watched.get(name, ())) > 1:
            raise InvalidHeader(f"duplicate {name} header")
    hosts = watched.get("HOST")
    if hosts and hosts[0] not in limits.valid_hosts:
        _check_host(hosts[0], limits)
    lengths = watched.get("CONTENT-LENGTH")
    codings = watched.get("TRANSFER-ENCODING")
    if codings is not None:
        if lengths is not None:
            raise InvalidHeader("both Content-Length and Transfer-Encoding")
        if version < (1, 1):
            raise InvalidHeader("Transfer-Encoding in an HTTP/1.0 request")
        request.chunked, compressed = _parse_transfer_coding(codings)
        if compressed:
            request.keep_alive = False  # as Gunicorn: a coding we pass through undecoded
    elif lengths is not None:
        if not _CONTENT_LENGTH_RE.fullmatch(lengths[0]):
            raise InvalidHeader(f"invalid Content-Length {lengths[0][:24]!r}")
        request.content_length = int(lengths[0])
    tokens = _connection_tokens(watched.get("CONNECTION", []))
    if version == (1, 1):
        request.keep_alive = request.keep_alive and "close" not in tokens
        expect = watched.get("EXPECT")
        request.expect_continue = expect is not None and expect[0].lower() == "100-continue"
    else:
        request.keep_alive = "keep-alive" in tokens and "close" not in tokens
    # last, so that the framing errors above keep Gunicorn's names on Host-less requests
    if not hosts and version == (1, 1) and not limits.permit_missing_host:
        raise InvalidHost("HTTP/1.1 request without a Host header")


def _parse_transfer_coding(values: list[str]) -> tuple[bool, bool]:
    """The Transfer-Encoding list (all field lines, in order) -> (chunked, compressed).

    The final coding must be exactly ``chunked`` and appear once; empty list elements are
    ignored (RFC 9110 §5.6.1); unknown codings are 501 (RFC 9112 §6.1).
    """
    chunked = compressed = False
    for value in values:
        for element in value.split(","):
            coding = fl.strip_ows(element).lower()
            if not coding:
                continue
            if chunked:
                raise InvalidHeader("a transfer coding after chunked")
            if coding == "chunked":
                chunked = True
            elif coding in _KNOWN_CODINGS:
                compressed = compressed or coding != "identity"
            elif fl.TOKEN_RE.fullmatch(coding.split(";", 1)[0].rstrip(" \t")):
                raise UnsupportedTransferCoding(f"unsupported transfer coding {coding[:24]!r}")
            else:
                raise InvalidHeader(f"invalid Transfer-Encoding {value[:40]!r}")
    if not chunked:
        raise InvalidHeader("Transfer-Encoding whose final coding is not chunked")
    return chunked, compressed
