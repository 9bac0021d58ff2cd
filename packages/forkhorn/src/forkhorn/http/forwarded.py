"""The URL scheme a trusted proxy declares through ``secure_scheme_headers``.

Call ``url_scheme_from_headers`` only for peers in ``forwarded_allow_ips`` and only with the
head's headers (never trailers: a request is https from its first byte or not at all).

Invariant: when several configured headers are present they must agree; a request whose
proxy says both https and http is refused (InvalidSchemeHeaders, 400) rather than guessed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from forkhorn.http.errors import InvalidSchemeHeaders


def url_scheme_from_headers(
    headers: Iterable[tuple[str, str]], secure_scheme_headers: Mapping[str, str]
) -> str | None:
    """``"https"``/``"http"`` as the headers say, or None when none of them is present.

    ``secure_scheme_headers`` maps an upper-case header name to the value meaning https
    (``{"X-FORWARDED-PROTO": "https"}``); any other value of that header means http.
    """
    scheme: str | None = None
    for name, value in headers:
        secure_value = secure_scheme_headers.get(name)
        if secure_value is None:
            continue
        said = "https" if value == secure_value else "http"
        if scheme is not None and said != scheme:
            raise InvalidSchemeHeaders("contradictory secure scheme headers")
        scheme = said
    return scheme
