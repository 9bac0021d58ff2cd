"""Property-based tests (hypothesis), bounded so the whole http test dir stays fast.

(a) any bytes, and any mutation of valid requests, fed in any split, give a Request, None
    or an HTTPError, never another exception, and the same outcome as when fed whole;
(b) a generated valid request, serialised, parses back to the same fields;
(c) chunked encoding then decoding, in any split, gives back the payload and trailers.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

from corpus_driver import drive
from forkhorn.http.body import ChunkedDecoder
from forkhorn.http.errors import HTTPError
from forkhorn.http.parser import ParserLimits, RequestParser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

BOUNDED = settings(
    max_examples=int(os.environ.get("FORKHORN_HYPOTHESIS_EXAMPLES", "150")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
LIMITS = ParserLimits(max_line=200, max_fields=8, max_field_size=120, permit_missing_host=True)
LENIENT = ParserLimits(
    permit_obsolete_folding=True,
    strip_header_spaces=True,
    permit_unconventional_http_method=True,
    header_map="dangerous",
    permit_missing_host=True,
)

SEEDS = [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /p?q HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n",
    b"GET http://a:80/x HTTP/1.1\r\nHost: a\r\nX:  v \r\n folded\r\n\r\n",
]


def cut(data: bytes, points: list[int]) -> list[bytes]:
    bounds = sorted({0, len(data), *(p % (len(data) + 1) for p in points)})
    return [data[a:b] for a, b in itertools.pairwise(bounds)] or [b""]


def outcome_of(chunks: list[bytes], limits: ParserLimits) -> Any:
    result = drive(chunks, limits)
    heads = [{**request, "body": b""} for request in result.requests]
    return (heads if result.error else result.requests), result.error


def check_any_split(data: bytes, points: list[int], limits: ParserLimits) -> None:
    whole = outcome_of([data], limits)  # raises if anything but HTTPError escapes
    assert outcome_of(cut(data, points), limits) == whole
    assert outcome_of([data[i : i + 1] for i in range(len(data))], limits) == whole


@BOUNDED
@given(st.binary(max_size=300), st.lists(st.integers(0, 400), max_size=8))
def test_arbitrary_bytes(data: bytes, points: list[int]) -> None:
    check_any_split(data, points, LIMITS)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.integers(0, 2))
        at = draw(st.integers(0, len(data)))
        if kind == 0 and at < len(data):
            del data[at]
        elif kind == 1:
            data[at:at] = draw(
                st.sampled_from(
                    [
                        b"\r",
                        b"\n",
                        b" ",
                        b"\t",
                        b":",
                        b"\x00",
                        b"_",
                        b",",
                        b";",
                        b"\xff",
                        b"\r\n",
                        b"0",
                    ]
                )
            )
        elif at < len(data):
            data[at] = draw(st.integers(0, 255))
    return bytes(data)


@BOUNDED
@given(mutated(), st.lists(st.integers(0, 400), max_size=8), st.booleans())
def test_mutated_valid_requests(data: bytes, points: list[int], lenient: bool) -> None:
    check_any_split(data, points, LENIENT if lenient else ParserLimits(permit_missing_host=True))


TOKEN = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^`|~",
    min_size=1,
    max_size=12,
)
VALUE = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"), max_size=30
).map(lambda v: v.strip(" \t"))
PATH = st.lists(st.text("abcxyz019-._~%!$&'()*+,;=:@", max_size=6), min_size=1, max_size=4).map(
    lambda parts: "/" + "/".join(parts)
)


@BOUNDED
@given(
    st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "M-SEARCH", "PROPFIND"]),
    PATH,
    st.one_of(st.none(), st.text("abc=&019%+/?", max_size=10)),
    st.sampled_from([(1, 0), (1, 1)]),
    st.lists(st.tuples(TOKEN.filter(lambda n: "_" not in n), VALUE), max_size=6),
    st.lists(st.integers(0, 400), max_size=6),
)
def test_serialised_request_parses_back(
    method: str,
    path: str,
    query: str | None,
    version: tuple[int, int],
    fields: list[tuple[str, str]],
    points: list[int],
) -> None:
    reserved = {
        "HOST",
        "CONTENT-LENGTH",
        "TRANSFER-ENCODING",
        "CONTENT-TYPE",
        "CONNECTION",
        "EXPECT",
    }
    fields = [("Host", "example.com")] + [(n, v) for n, v in fields if n.upper() not in reserved]
    target = path if query is None else f"{path}?{query}"
    head = f"{method} {target} HTTP/{version[0]}.{version[1]}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in fields) + "\r\n"
    raw = head.encode("latin-1")
    for chunks in (cut(raw, points), [raw]):
        parser = RequestParser(ParserLimits())
        buf, result = b"", None
        for chunk in chunks:
            buf += chunk
            result = parser.parse_head(buf)
        assert result is not None
        request, consumed = result
        assert consumed == len(raw)
        assert (request.method, request.uri, request.path) == (method, target, path)
        assert request.query == (query or "") and request.version == version
        assert request.headers == [(name.upper(), value) for name, value in fields]


def encode_chunked(chunks: list[bytes], trailers: list[tuple[str, str]], ext: bool) -> bytes:
    out = b"".join(b"%x%s\r\n%s\r\n" % (len(c), b";n=v" if ext else b"", c) for c in chunks if c)
    tail = "".join(f"{n}: {v}\r\n" for n, v in trailers).encode("latin-1")
    return out + b"0\r\n" + tail + b"\r\n"


@BOUNDED
@given(
    st.lists(st.binary(max_size=40), max_size=6),
    st.lists(
        st.tuples(TOKEN.filter(lambda n: "_" not in n).map(lambda n: "X-" + n), VALUE), max_size=3
    ),
    st.booleans(),
    st.lists(st.integers(0, 600), max_size=10),
)
def test_chunked_round_trip(
    chunks: list[bytes], trailers: list[tuple[str, str]], ext: bool, points: list[int]
) -> None:
    raw = encode_chunked(chunks, trailers, ext) + b"NEXT"
    decoder = ChunkedDecoder(ParserLimits())
    payload, leftover = b"", b""
    try:
        for piece in cut(raw, points):
            if decoder.done:
                leftover += piece
                continue
            out, rest = decoder.feed(piece)
            payload += out
            leftover += rest
    except HTTPError as error:  # pragma: no cover - would be a bug
        raise AssertionError(error) from None
    assert decoder.done and payload == b"".join(chunks) and leftover == b"NEXT"
    assert decoder.trailers == [(n.upper(), v) for n, v in trailers]
