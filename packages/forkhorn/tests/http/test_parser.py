"""The head parser, rule by rule: tables of (request bytes, settings) -> fields or error.

Every case is also fed byte by byte and in random splits (``corpus_driver.splits``): the
result may not depend on how the bytes arrived.
"""

from __future__ import annotations

from typing import Any

import pytest
from corpus_driver import splits
from forkhorn.config import Config
from forkhorn.http import fields as fl
from forkhorn.http.errors import HTTPError
from forkhorn.http.parser import ParserLimits, RequestParser
from forkhorn.http.request import Request

H = b"Host: example.com\r\n"


def limits(**settings: Any) -> ParserLimits:
    cfg = Config()
    for name, value in settings.items():
        cfg.set(name, value)
    return ParserLimits.from_config(cfg)


def parse_chunks(chunks: list[bytes], lim: ParserLimits) -> tuple[Request, int] | HTTPError | None:
    parser = RequestParser(lim)
    buf = b""
    try:
        for chunk in chunks:
            buf += chunk
            result = parser.parse_head(buf)
            if result is not None:
                return result
    except HTTPError as error:
        return error
    return None


def parse(raw: bytes, **settings: Any) -> Request:
    """Parse ``raw`` every way; all must agree and succeed."""
    lim = limits(**settings)
    results = [parse_chunks(chunks, lim) for chunks in splits(raw).values()]
    first = results[0]
    assert isinstance(first, tuple), first
    for other in results[1:]:
        assert isinstance(other, tuple), other
        assert vars_of(other[0]) == vars_of(first[0]) and other[1] == first[1]
    return first[0]


def refuse(raw: bytes, **settings: Any) -> HTTPError | None:
    """Parse ``raw`` every way; all must give the same error (or all None: incomplete)."""
    lim = limits(**settings)
    outcomes = []
    for chunks in splits(raw).values():
        result = parse_chunks(chunks, lim)
        assert not isinstance(result, tuple), f"accepted: {result}"
        outcomes.append(None if result is None else (type(result).__name__, result.status))
    assert len(set(outcomes)) == 1, outcomes
    result = parse_chunks([raw], lim)
    assert result is None or isinstance(result, HTTPError)
    return result


def vars_of(request: Request) -> dict[str, Any]:
    return {name: getattr(request, name) for name in Request.FIELDS}


# -- request line ----------------------------------------------------------------------

REQUEST_LINE_ERRORS = [
    (b"GET / HTTP/1.1 \r\n" + H + b"\r\n", "InvalidRequestLine"),
    (b"GET  / HTTP/1.1\r\n" + H + b"\r\n", "InvalidRequestLine"),
    (b"GET /\tx HTTP/1.1\r\n" + H + b"\r\n", "InvalidRequestLine"),
    (b"GET /a\x00b HTTP/1.1\r\n" + H + b"\r\n", "InvalidRequestLine"),
    (b"GET /a\x7fb HTTP/1.1\r\n" + H + b"\r\n", "InvalidRequestLine"),
    (b"GET / HTTP/1.1\n" + H + b"\r\n", "InvalidRequestLine"),
    (b"GET / HTTP/1.1\r\r\n" + H + b"\r\n", "InvalidHTTPVersion"),
    (b"GET\n/ HTTP/1.1\r\n" + H + b"\r\n", "InvalidRequestLine"),
    (b"GET / http/1.1\r\n" + H + b"\r\n", "InvalidHTTPVersion"),
    (b"GET / HTTP/1.2\r\n" + H + b"\r\n", "InvalidHTTPVersion"),
    (b"GET / HTTP/2.0\r\n" + H + b"\r\n", "InvalidHTTPVersion"),
    (b"GET / HTTP/0.9\r\n" + H + b"\r\n", "InvalidHTTPVersion"),
    (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "InvalidHTTPVersion"),
    (b"get / HTTP/1.1\r\n" + H + b"\r\n", "InvalidRequestMethod"),
    (b"GE / HTTP/1.1\r\n" + H + b"\r\n", "InvalidRequestMethod"),
    (b"G#T / HTTP/1.1\r\n" + H + b"\r\n", "InvalidRequestMethod"),
    (b"ABCDEFGHIJKLMNOPQRSTU / HTTP/1.1\r\n" + H + b"\r\n", "InvalidRequestMethod"),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "InvalidRequestMethod"),
    (b"GET * HTTP/1.1\r\n" + H + b"\r\n", "InvalidRequestLine"),
    (b"CONNECT / HTTP/1.1\r\n" + H + b"\r\n", "InvalidRequestLine"),
    (b"CONNECT example.com HTTP/1.1\r\n" + H + b"\r\n", "InvalidRequestLine"),
    (b"GET example.com:80 HTTP/1.1\r\n" + H + b"\r\n", "InvalidRequestLine"),
    (b"GET http://u@example.com/ HTTP/1.1\r\n" + H + b"\r\n", "InvalidRequestLine"),
    (b"GET http:///x HTTP/1.1\r\n" + H + b"\r\n", "InvalidRequestLine"),
    (b"GET http://a:99999/ HTTP/1.1\r\n" + H + b"\r\n", "InvalidRequestLine"),
    (b"GET http://[zz]/ HTTP/1.1\r\n" + H + b"\r\n", "InvalidRequestLine"),
]


@pytest.mark.parametrize(("raw", "error"), REQUEST_LINE_ERRORS)
def test_request_line_errors(raw: bytes, error: str) -> None:
    result = refuse(raw)
    assert result is not None and type(result).__name__ == error and result.status == 400


def test_request_line_limit_is_early_and_414() -> None:
    result = refuse(b"GET /" + b"a" * 5000)  # no CRLF yet: already too long
    assert result is not None and result.status == 414
    assert refuse(b"GET /" + b"a" * 100, limit_request_line=50).status == 414  # type: ignore[union-attr]
    assert parse(b"GET /" + b"a" * 4080 + b" HTTP/1.1\r\n" + H + b"\r\n").path == "/" + "a" * 4080


def test_tls_handshake_is_refused_at_once() -> None:
    with pytest.raises(HTTPError):
        RequestParser(limits()).parse_head(b"\x16")


def test_methods_and_leniencies() -> None:
    assert parse(b"M-SEARCH / HTTP/1.1\r\n" + H + b"\r\n").method == "M-SEARCH"
    assert refuse(b"M-SEARCH * HTTP/1.1\r\n" + H + b"\r\n") is not None  # * only with OPTIONS
    assert (
        parse(b"get / HTTP/1.1\r\n" + H + b"\r\n", permit_unconventional_http_method=True).method
        == "get"
    )
    lenient = {"permit_unconventional_http_method": True, "casefold_http_method": True}
    assert parse(b"get / HTTP/1.1\r\n" + H + b"\r\n", **lenient).method == "GET"
    # the 3-20 length convention goes with the rest of it
    assert parse(b"G / HTTP/1.1\r\n" + H + b"\r\n", **lenient).method == "G"
    long_method = "A" * 40
    request = parse(f"{long_method} / HTTP/1.1\r\n".encode() + H + b"\r\n", **lenient)
    assert request.method == long_method
    request = parse(b"GET / HTTP/1.7\r\n" + H + b"\r\n", permit_unconventional_http_version=True)
    assert request.version == (1, 1)
    assert refuse(b"GET / HTTP/2.0\r\n" + H + b"\r\n", permit_unconventional_http_version=True)


TARGETS = [
    (b"GET /a/b?c=d#e", ("", None, None, "/a/b", "c=d", "e")),
    (b"GET //a//b", ("", None, None, "//a//b", "", "")),
    (b"GET /?", ("", None, None, "/", "", "")),
    (b"GET /p?q?r", ("", None, None, "/p", "q?r", "")),
    (b"GET /%7e%20", ("", None, None, "/%7e%20", "", "")),
    (b"OPTIONS *", ("", None, None, "*", "", "")),
    (b"CONNECT h.example:8443", ("", None, None, "h.example:8443", "", "")),
    (b"GET http://h.example:81/x?y", ("http", "h.example", 81, "/x", "y", "")),
    (b"GET https://h.example", ("https", "h.example", None, "", "", "")),
    (b"GET http://[2001:db8::1]/", ("http", "[2001:db8::1]", None, "/", "", "")),
]


@pytest.mark.parametrize(("line", "parts"), TARGETS)
def test_request_targets(line: bytes, parts: tuple[Any, ...]) -> None:
    request = parse(line + b" HTTP/1.1\r\n" + H + b"\r\n")
    got = (
        request.scheme,
        request.host,
        request.port,
        request.path,
        request.query,
        request.fragment,
    )
    assert got == parts
    assert request.uri == line.split(b" ", 1)[1].decode()


def test_empty_lines_before_the_request_line_are_skipped() -> None:
    request, consumed = RequestParser(limits()).parse_head(
        b"\r\n\r\nGET / HTTP/1.1\r\n" + H + b"\r\n"
    )  # type: ignore[misc]
    assert request.path == "/" and consumed == 4 + 16 + len(H) + 2
    assert RequestParser(limits()).parse_head(b"\r\n\r\n") is None


# -- field lines -----------------------------------------------------------------------

FIELD_ERRORS = [
    (b"Bad Name: x\r\n", "InvalidHeaderName"),
    (b"Name : x\r\n", "InvalidHeaderName"),
    (b"Name\t: x\r\n", "InvalidHeaderName"),
    (b"N\x00me: x\r\n", "InvalidHeaderName"),
    (b"(x): y\r\n", "InvalidHeaderName"),
    (b": novalue\r\n", "InvalidHeaderName"),
    (b"NoColon\r\n", "InvalidHeader"),
    (b"X: a\x00b\r\n", "InvalidHeader"),
    (b"X: a\nb\r\n", "InvalidHeader"),
    (b"X: a\rb\r\n", "InvalidHeader"),
    (b"X: a\x1bb\r\n", "InvalidHeader"),
    (b"X: a\x7fb\r\n", "InvalidHeader"),
    (b"X: a\r\n folded\r\n", "ObsoleteFolding"),
    (b"X: a\r\n\tfolded\r\n", "ObsoleteFolding"),
    (b"X: a\r\n \r\n", "ObsoleteFolding"),
    (b"X: a\n\n", None),  # bare LF never ends a head: incomplete (then 400 at the limit)
]


@pytest.mark.parametrize(("fields", "error"), FIELD_ERRORS)
def test_field_line_errors(fields: bytes, error: str | None) -> None:
    result = refuse(b"GET / HTTP/1.1\r\n" + H + fields + b"\r\n")
    if error is None:
        assert result is not None  # the bare LF sits in a completed line: refused
        return
    assert result is not None and type(result).__name__ == error and result.status == 400


def test_bare_lf_head_is_refused() -> None:
    assert refuse(b"GET / HTTP/1.1\nHost: a\n\n") is None  # no CRLF CRLF: wait for more
    assert refuse(b"GET / HTTP/1.1\nHost: a\n\n" + b"x" * 5000).status == 414  # type: ignore[union-attr]
    assert refuse(b"GET / HTTP/1.1\r\nHost: a\n\r\n\r\n").status == 400  # type: ignore[union-attr]


def test_field_values_are_trimmed_of_sp_and_htab_only() -> None:
    request = parse(b"GET / HTTP/1.1\r\n" + H + b"X:  \t a \x85b\xa0 \t\r\nY:\r\nZ: \xff\r\n\r\n")
    assert request.headers[1:] == [("X", "a \x85b\xa0"), ("Y", ""), ("Z", "\xff")]


@pytest.mark.parametrize(
    "block",
    [
        "A: b\r\nC-D: e f\r\n",
        "A: b \r\nC: d\r\n",  # trailing SP: the careful path trims it
        "A: b\t\r\nC: d\r\n",
        "A:\r\nB: \t\r\n",
        "A: \x85b\xa0\r\n",
    ],
)
def test_fast_field_lines_agree_with_the_careful_path(block: str) -> None:
    text = "GET / HTTP/1.1\r\n" + block + "\r\n"
    start, end = text.find("\n") + 1, len(text) - 2
    careful = [(n.upper(), v) for n, v in fl.parse_field_lines(text, start, end, ParserLimits())]
    fast = fl.fast_field_lines(text, start, end)
    assert fast is None or fast == careful
    if "\t\r" not in block and " \r" not in block:
        assert fast == careful  # the common head never leaves the fast path


def test_obs_fold_when_permitted() -> None:
    request = parse(
        b"GET / HTTP/1.1\r\n" + H + b"X: a\r\n  b\r\n\tc\r\n\r\n", permit_obsolete_folding=True
    )
    assert request.headers[1] == ("X", "a b c")
    assert refuse(b"GET / HTTP/1.1\r\n X: a\r\n" + H + b"\r\n", permit_obsolete_folding=True)


def test_strip_header_spaces() -> None:
    request = parse(b"GET / HTTP/1.1\r\n" + H + b"X-Y \t: z\r\n\r\n", strip_header_spaces=True)
    assert request.headers[1] == ("X-Y", "z")


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("drop", [("X-AUTH", "good")]), ("dangerous", [("X_AUTH", "evil"), ("X-AUTH", "good")])],
)
def test_underscore_names_cannot_alias(mode: str, expected: list[tuple[str, str]]) -> None:
    request = parse(
        b"GET / HTTP/1.1\r\n" + H + b"X_Auth: evil\r\nX-Auth: good\r\n\r\n", header_map=mode
    )
    assert request.headers[1:] == expected


def test_underscore_names_refused() -> None:
    result = refuse(b"GET / HTTP/1.1\r\n" + H + b"X_Auth: evil\r\n\r\n", header_map="refuse")
    assert type(result).__name__ == "InvalidHeaderName"


def test_trusted_forwarder_headers_keep_their_underscore() -> None:
    lim = limits()
    raw = b"GET / HTTP/1.1\r\n" + H + b"SCRIPT_NAME: /app\r\nX_Other: 1\r\n\r\n"
    trusted = RequestParser(lim, trusted=True).parse_head(raw)
    untrusted = RequestParser(lim).parse_head(raw)
    assert trusted is not None and untrusted is not None
    assert trusted[0].headers[1:] == [("SCRIPT_NAME", "/app")]
    assert untrusted[0].headers[1:] == []


def test_field_limits_are_431_and_early() -> None:
    assert refuse(b"GET / HTTP/1.1\r\nX: " + b"a" * 9000).status == 431  # type: ignore[union-attr]
    many = b"".join(b"X%d: y\r\n" % i for i in range(101))
    assert refuse(b"GET / HTTP/1.1\r\n" + H + many + b"\r\n").status == 431  # type: ignore[union-attr]
    assert refuse(b"GET / HTTP/1.1\r\n" + H + many).status == 431  # type: ignore[union-attr]
    assert refuse(
        b"GET / HTTP/1.1\r\n" + H + b"X: 123456789012345\r\n\r\n", limit_request_field_size=19
    )
    assert parse(
        b"GET / HTTP/1.1\r\n" + H + b"X: 12345678901234\r\n\r\n", limit_request_field_size=19
    )
    # whitespace before the first field line is refused even when folding is permitted
    result = refuse(b"GET / HTTP/1.1\r\n X: a\r\n" + H + b"\r\n", permit_obsolete_folding=True)
    assert type(result).__name__ == "InvalidHeader"
    assert parse(b"GET / HTTP/1.1\r\n" + H + many + b"\r\n", limit_request_fields=102)


# -- Host ------------------------------------------------------------------------------

HOST_CASES = [
    (b"", None, "InvalidHost"),
    (b"Host: a\r\nHost: a\r\n", None, "InvalidHeader"),
    (b"Host: a\r\nHost: b\r\n", None, "InvalidHeader"),
    (b"Host: a b\r\n", None, "InvalidHost"),
    (b"Host: a/b\r\n", None, "InvalidHost"),
    (b"Host: u@a\r\n", None, "InvalidHost"),
    (b"Host: a:b\r\n", None, "InvalidHost"),
    (b"Host: a:123456\r\n", None, "InvalidHost"),
    (b"Host: [::1\r\n", None, "InvalidHost"),
    (b"Host: \xc3\xa9\r\n", None, "InvalidHost"),
    (b"Host: example.com:8080\r\n", "example.com:8080", None),
    (b"Host: [::1]:80\r\n", "[::1]:80", None),
    (b"Host: \r\n", "", None),
    (b"Host: xn--bcher-kva.example\r\n", "xn--bcher-kva.example", None),
]


@pytest.mark.parametrize("careful", [False, True], ids=["fast", "careful"])
@pytest.mark.parametrize(("fields", "value", "error"), HOST_CASES)
def test_host(fields: bytes, value: str | None, error: str | None, careful: bool) -> None:
    # a repeated name sends the head down the careful path, which checks Host on its own
    extra = b"X-A: 1\r\nX-A: 2\r\n" if careful else b""
    raw = b"GET / HTTP/1.1\r\n" + fields + extra + b"\r\n"
    if error:
        assert type(refuse(raw)).__name__ == error
    else:
        assert parse(raw).get_header("HOST") == value


def test_missing_host_leniency_and_http10() -> None:
    assert parse(b"GET / HTTP/1.1\r\n\r\n", permit_missing_host=True).get_header("HOST") is None
    assert parse(b"GET / HTTP/1.0\r\n\r\n").version == (1, 0)
    assert refuse(b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", permit_missing_host=True)


# -- framing (request smuggling vectors) -----------------------------------------------

FRAMING_ERRORS = [
    (b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", 400),
    (b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", 400),
    (b"Transfer-Encoding: chunked, identity\r\n", 400),
    (b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n", 400),
    (b"Transfer-Encoding: chunked, chunked\r\n", 400),
    (b"Transfer-Encoding: identity\r\n", 400),
    (b"Transfer-Encoding: gzip\r\n", 400),
    (b"Transfer-Encoding: xchunked\r\n", 501),
    (b"Transfer-Encoding: chunkedx\r\n", 501),
    (b"Transfer-Encoding: br, chunked\r\n", 501),
    (b"Transfer-Encoding: chunked;q=1\r\n", 501),
    (b"Transfer-Encoding: \x85chunked\r\n", 400),
    (b'Transfer-Encoding: "chunked"\r\n', 400),
    (b"Content-Length: +5\r\n", 400),
    (b"Content-Length: -5\r\n", 400),
    (b"Content-Length: 0x5\r\n", 400),
    (b"Content-Length: 5 5\r\n", 400),
    (b"Content-Length: 5, 5\r\n", 400),
    (b"Content-Length: 1_0\r\n", 400),
    (b"Content-Length: 5.0\r\n", 400),
    (b"Content-Length: \r\n", 400),
    (b"Content-Length: \xd9\xa5\r\n", 400),  # ARABIC-INDIC DIGIT FIVE in UTF-8
    (b"Content-Length: \xb2\r\n", 400),  # latin-1 SUPERSCRIPT TWO: str.isdigit() is True
    (b"Content-Length: 1234567890123456789\r\n", 400),
    (b"Content-Length: 5\r\nContent-Length: 5\r\n", 400),
    (b"Content-Length: 5\r\nContent-Length: 6\r\n", 400),
    (b"Content-Type: a\r\nContent-Type: b\r\n", 400),
]


@pytest.mark.parametrize(("fields", "status"), FRAMING_ERRORS)
def test_framing_errors(fields: bytes, status: int) -> None:
    result = refuse(b"POST / HTTP/1.1\r\n" + H + fields + b"\r\n")
    assert result is not None and result.status == status


def test_framing_accepted() -> None:
    assert parse(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 007\r\n\r\n").content_length == 7
    request = parse(b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: CHUNKED\r\n\r\n")
    assert request.chunked and request.content_length is None and request.keep_alive
    request = parse(b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip,\t chunked\r\n\r\n")
    assert request.chunked and not request.keep_alive  # passed through undecoded: close after
    request = parse(b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: identity, chunked\r\n\r\n")
    assert request.chunked and request.keep_alive
    assert refuse(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n").status == 400  # type: ignore[union-attr]
    assert parse(b"GET / HTTP/1.1\r\n" + H + b"\r\n").content_length is None


# -- connection semantics --------------------------------------------------------------

KEEP_ALIVE = [
    (b"GET / HTTP/1.1\r\n" + H, True),
    (b"GET / HTTP/1.1\r\n" + H + b"Connection: close\r\n", False),
    (b"GET / HTTP/1.1\r\n" + H + b"Connection: CLOSE\r\n", False),
    (b"GET / HTTP/1.1\r\n" + H + b"Connection: Upgrade, Close\r\n", False),
    (b"GET / HTTP/1.1\r\n" + H + b"Connection: keep-alive\r\nConnection: close\r\n", False),
    (b"GET / HTTP/1.1\r\n" + H + b"Connection: closed\r\n", True),
    (b"GET / HTTP/1.0\r\n", False),
    (b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n", True),
    (b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n", False),
]


@pytest.mark.parametrize(("head", "keep_alive"), KEEP_ALIVE)
def test_keep_alive(head: bytes, keep_alive: bool) -> None:
    assert parse(head + b"\r\n").keep_alive is keep_alive


def test_expect_continue_on_http11_only() -> None:
    assert parse(b"POST / HTTP/1.1\r\n" + H + b"Expect: 100-Continue\r\n\r\n").expect_continue
    assert not parse(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n").expect_continue
    assert not parse(b"POST / HTTP/1.1\r\n" + H + b"Expect: 200-ok\r\n\r\n").expect_continue


def test_pipelined_requests_and_reset() -> None:
    raw = b"GET /1 HTTP/1.1\r\n" + H + b"\r\nGET /2 HTTP/1.1\r\n" + H + b"\r\n"
    parser = RequestParser(limits())
    first = parser.parse_head(raw)
    assert first is not None and first[0].path == "/1"
    second = parser.parse_head(raw[first[1] :])
    assert second is not None and second[0].path == "/2" and first[1] + second[1] == len(raw)
    parser.reset()
    assert parser.parse_head(b"GET /3 HT") is None


def test_limits_from_config_resolve_zero_and_caps() -> None:
    lim = limits(limit_request_line=0, limit_request_fields=0, limit_request_field_size=0)
    assert (lim.max_line, lim.max_fields, lim.max_field_size) == (8190, 32768, 8190)
    lim = limits(limit_request_line=100000)
    assert lim.max_line == 8190
    assert limits(limit_request_body=10).max_body == 10
