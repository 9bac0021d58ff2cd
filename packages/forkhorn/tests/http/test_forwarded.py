"""The scheme a trusted proxy declares, and the error responses' bytes."""

from __future__ import annotations

import pytest
from forkhorn.http.errors import (
    HTTPError,
    InvalidSchemeHeaders,
    LimitRequestHeaders,
    NoMoreData,
    error_response,
)
from forkhorn.http.forwarded import url_scheme_from_headers

SECURE = {"X-FORWARDED-PROTO": "https", "X-FORWARDED-SSL": "on"}


@pytest.mark.parametrize(
    ("headers", "scheme"),
    [
        ([], None),
        ([("X-FORWARDED-PROTO", "https")], "https"),
        ([("X-FORWARDED-PROTO", "http")], "http"),
        ([("X-FORWARDED-PROTO", "HTTPS")], "http"),
        ([("X-FORWARDED-PROTO", "https"), ("X-FORWARDED-SSL", "on")], "https"),
        ([("X-OTHER", "https")], None),
    ],
)
def test_url_scheme(headers: list[tuple[str, str]], scheme: str | None) -> None:
    assert url_scheme_from_headers(headers, SECURE) == scheme


def test_contradictory_scheme_headers_are_refused() -> None:
    with pytest.raises(InvalidSchemeHeaders) as info:
        url_scheme_from_headers(
            [("X-FORWARDED-PROTO", "https"), ("X-FORWARDED-SSL", "off")], SECURE
        )
    assert info.value.status == 400


def test_error_response() -> None:
    response = error_response(LimitRequestHeaders("secret client bytes"))
    assert response is not None
    head, body = response.split(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert b"Connection: close" in head and b"Content-Length: %d" % len(body) in head
    assert b"secret" not in response
    assert error_response(NoMoreData()) is None
    assert error_response(HTTPError("x")).startswith(b"HTTP/1.1 400 Bad Request")  # type: ignore[union-attr]
