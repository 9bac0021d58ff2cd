"""Body decoders: Content-Length and chunked, fed every way (whole, bytewise, random)."""

from __future__ import annotations

from typing import Any

import pytest
from corpus_driver import splits
from forkhorn.http.body import ChunkedDecoder, LengthDecoder, body_decoder
from forkhorn.http.errors import HTTPError
from forkhorn.http.parser import ParserLimits
from forkhorn.http.request import Request

LIMITS = ParserLimits()


def feed_all(decoder_factory: Any, raw: bytes) -> tuple[bytes, bytes, Any] | tuple[str, int | None]:
    """Feed ``raw`` every way; all must agree. -> (payload, leftover, trailers) or error."""
    results = set()
    for chunks in splits(raw).values():
        decoder = decoder_factory()
        payload, leftover = b"", b""
        try:
            for chunk in chunks:
                if decoder.done:
                    leftover += chunk
                    continue
                out, rest = decoder.feed(chunk)
                payload += out
                leftover += rest
            result: Any = (payload, leftover, tuple(decoder.trailers or ()), decoder.done)
        except HTTPError as error:
            result = (type(error).__name__, error.status)
        results.add(result)
    assert len(results) == 1, results
    return results.pop()  # type: ignore[no-any-return]


def chunked(limits: ParserLimits = LIMITS) -> Any:
    return lambda: ChunkedDecoder(limits)


def test_length_decoder_splits_body_and_leftover() -> None:
    assert feed_all(lambda: LengthDecoder(5), b"helloGET /") == (b"hello", b"GET /", (), True)
    decoder = LengthDecoder(5)
    assert decoder.feed(b"hel") == (b"hel", b"")
    with pytest.raises(HTTPError) as info:
        decoder.eof()
    assert type(info.value).__name__ == "IncompleteBody" and info.value.status == 400


def test_body_decoder_choice_and_413_up_front() -> None:
    request = Request("POST", "/", "/", "", (1, 1), [])
    assert body_decoder(request, LIMITS) is None
    request.content_length = 0
    assert body_decoder(request, LIMITS) is None
    request.content_length = 11
    assert isinstance(body_decoder(request, LIMITS), LengthDecoder)
    with pytest.raises(HTTPError) as info:
        body_decoder(request, ParserLimits(max_body=10))
    assert info.value.status == 413
    request.content_length, request.chunked = None, True
    assert isinstance(body_decoder(request, LIMITS), ChunkedDecoder)


VALID_CHUNKED = [
    (b"5\r\nhello\r\n0\r\n\r\n", b"hello", ()),
    (b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nNEXT", b"hello world", ()),
    (b"A\r\n0123456789\r\n0000\r\n\r\n", b"0123456789", ()),
    (b'5;a=b;c\r\nhello\r\n0;x="q \\" d"\r\n\r\n', b"hello", ()),
    (b"5 ; a = b\r\nhello\r\n0\r\n\r\n", b"hello", ()),
    (b"5\r\nhello\r\n0\r\nX-Sum: 1\r\nX-B:  2 \r\n\r\n", b"hello", (("X-SUM", "1"), ("X-B", "2"))),
    (b"0\r\n\r\n", b"", ()),
    (b"ffffffff" + b"\r\n", b"", ()),  # incomplete: a big chunk announced, nothing sent
]


@pytest.mark.parametrize(("raw", "body", "trailers"), VALID_CHUNKED)
def test_chunked_valid(raw: bytes, body: bytes, trailers: tuple[Any, ...]) -> None:
    payload, leftover, got_trailers, done = feed_all(chunked(), raw)  # type: ignore[misc]
    assert payload == body and got_trailers == trailers
    assert leftover == (b"NEXT" if raw.endswith(b"NEXT") else b"")
    assert done is raw.startswith((b"5", b"A", b"0"))


CHUNKED_ERRORS = [
    (b"-5\r\nhello\r\n0\r\n\r\n", "InvalidChunkSize"),
    (b"+5\r\nhello\r\n0\r\n\r\n", "InvalidChunkSize"),
    (b"0x5\r\nhello\r\n0\r\n\r\n", "InvalidChunkSize"),
    (b"5_0\r\nhello\r\n0\r\n\r\n", "InvalidChunkSize"),
    (b" 5\r\nhello\r\n0\r\n\r\n", "InvalidChunkSize"),
    (b"5 \r\nhello\r\n0\r\n\r\n", "InvalidChunkSize"),
    (b"\r\nhello\r\n0\r\n\r\n", "InvalidChunkSize"),
    (b"5\nhello\r\n0\r\n\r\n", "InvalidChunkSize"),
    (b"1" * 17 + b"\r\n", "InvalidChunkSize"),
    (b"1" * 17, "InvalidChunkSize"),
    (b"5;\r\nhello\r\n0\r\n\r\n", "InvalidChunkExtension"),
    (b"5;a=\r\nhello\r\n0\r\n\r\n", "InvalidChunkExtension"),
    (b'5;a="x\r\nhello\r\n0\r\n\r\n', "InvalidChunkExtension"),
    (b"5;a\x00\r\nhello\r\n0\r\n\r\n", "InvalidChunkExtension"),
    (b"5;a\rb\r\nhello\r\n0\r\n\r\n", "InvalidChunkExtension"),
    (b"5;" + b"a" * 5000 + b"\r\nhello\r\n0\r\n\r\n", "InvalidChunkExtension"),
    (b"5;" + b"a" * 5000, "InvalidChunkExtension"),
    (b"5\r\nhelloX\r\n0\r\n\r\n", "ChunkMissingTerminator"),
    (b"5\r\nhello\n0\r\n\r\n", "ChunkMissingTerminator"),
    (b"5\r\nhello\r\r\n0\r\n\r\n", "ChunkMissingTerminator"),
    (b"5\r\nhello\r\n0\r\nContent-Length: 5\r\n\r\n", "InvalidHeaderName"),
    (b"5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n", "InvalidHeaderName"),
    (b"5\r\nhello\r\n0\r\nHost: evil\r\n\r\n", "InvalidHeaderName"),
    (b"5\r\nhello\r\n0\r\nX_Sum: 1\r\n\r\n", None),  # dropped by default: not an error
    (b"5\r\nhello\r\n0\r\nBad Name: 1\r\n\r\n", "InvalidHeaderName"),
    (b"5\r\nhello\r\n0\r\nX: a\x00\r\n\r\n", "InvalidHeader"),
    (b"5\r\nhello\r\n0\r\nX: a\r\n b\r\n\r\n", "ObsoleteFolding"),
]


@pytest.mark.parametrize(("raw", "error"), CHUNKED_ERRORS)
def test_chunked_errors(raw: bytes, error: str | None) -> None:
    result = feed_all(chunked(), raw)
    if error is None:
        assert result[2] == ()  # type: ignore[misc]
    else:
        assert result == (error, 400)


def test_chunked_extension_total_is_capped() -> None:
    raw = b"".join(b"1;e=" + b"x" * 50 + b"\r\na\r\n" for _ in range(2000)) + b"0\r\n\r\n"
    assert feed_all(chunked(), raw[:2000]) != ("InvalidChunkExtension", 400)
    assert feed_all(chunked(), raw) == ("InvalidChunkExtension", 400)
    assert feed_all(chunked(ParserLimits(max_chunk_extensions=10**6)), raw)[0] == b"a" * 2000


def test_chunked_413_mid_stream() -> None:
    raw = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    assert feed_all(chunked(ParserLimits(max_body=11)), raw)[0] == b"hello world"
    assert feed_all(chunked(ParserLimits(max_body=10)), raw) == ("LimitRequestBody", 413)


def test_chunked_trailer_section_is_bounded() -> None:
    limits = ParserLimits(max_fields=2, max_field_size=20)
    assert feed_all(chunked(limits), b"0\r\n" + b"X: y\r\n" * 3 + b"\r\n") == (
        "LimitRequestHeaders",
        431,
    )
    assert feed_all(chunked(limits), b"0\r\n" + b"X: " + b"y" * 200) == ("LimitRequestHeaders", 431)


def test_chunked_eof_and_trailers_on_request() -> None:
    request = Request("POST", "/", "/", "", (1, 1), [], chunked=True)
    decoder = body_decoder(request, LIMITS)
    assert decoder is not None
    assert decoder.feed(b"0\r\n") == (b"", b"")
    with pytest.raises(HTTPError) as info:
        decoder.eof()
    assert type(info.value).__name__ == "ChunkMissingTerminator" and info.value.status == 400
    assert decoder.feed(b"A: b\r\n\r\nrest") == (b"", b"rest")
    assert decoder.done and request.trailers == [("A", "b")]
    decoder.eof()  # complete: no error
    assert decoder.feed(b"more") == (b"", b"more")
