"""The HTTP layer's one error hierarchy.

Every refusal of client input is an ``HTTPError`` carrying the status the server should
answer (``None``: the input ended before a request was complete, close without answering).
Class names follow Gunicorn's exception names so the shared request corpus maps onto them.
After any ``HTTPError`` the connection is closed: no later byte on it is parsed.
"""

from __future__ import annotations


class HTTPError(Exception):
    """A request the server refuses. ``status`` is the response to send, or None."""

    status: int | None = 400
    reason: str = "Bad Request"

    def __init__(self, detail: str = "", status: int | None = None) -> None:
        super().__init__(detail or self.__class__.__name__)
        self.detail = detail or self.__class__.__name__
        if status is not None:
            self.status = status


class NoMoreData(HTTPError):
    """The peer closed the connection in the middle of a request."""

    status = None
    reason = ""


class InvalidRequestLine(HTTPError):
    pass


class InvalidRequestMethod(HTTPError):
    pass


class InvalidHTTPVersion(HTTPError):
    pass


class InvalidHeader(HTTPError):
    pass


class InvalidHeaderName(HTTPError):
    pass


class ObsoleteFolding(HTTPError):
    pass


class InvalidHost(HTTPError):
    pass


class UnsupportedTransferCoding(HTTPError):
    status = 501
    reason = "Not Implemented"


class InvalidChunkSize(HTTPError):
    pass


class InvalidChunkExtension(HTTPError):
    pass


class ChunkMissingTerminator(HTTPError):
    pass


class InvalidContentLength(HTTPError):
    pass


class IncompleteBody(HTTPError):
    """The peer closed the connection before the whole Content-Length body arrived."""


class LimitRequestLine(HTTPError):
    status = 414
    reason = "URI Too Long"


class LimitRequestHeaders(HTTPError):
    status = 431
    reason = "Request Header Fields Too Large"


class LimitRequestBody(HTTPError):
    status = 413
    reason = "Content Too Large"


class InvalidProxyLine(HTTPError):
    pass


class ForbiddenProxyRequest(HTTPError):
    status = 403
    reason = "Forbidden"


class InvalidSchemeHeaders(HTTPError):
    pass


class UnsupportedHTTPVersion(HTTPError):
    status = 505
    reason = "HTTP Version Not Supported"


class RequestTimeout(HTTPError):
    status = 408
    reason = "Request Timeout"


def status_reason(status: int, error: HTTPError | None = None) -> str:
    """The reason phrase for ``status``: the error class's own when it is that class's
    status, else the standard phrase (RFC 9110), else the error's or ``Error``."""
    if error is not None and type(error).status == status and error.reason:
        return error.reason
    reason = _REASONS.get(status)
    if reason is None:
        from http import HTTPStatus  # rare: a status this module does not list

        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = (error.reason if error is not None else "") or "Error"
    return reason


#: the statuses the server itself answers with (others are looked up in ``http.HTTPStatus``)
_REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    408: "Request Timeout",
    413: "Content Too Large",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
}


def error_response(error: HTTPError | int, *, headers: bytes = b"") -> bytes | None:
    """The one builder of the server's own error responses (refused requests, app
    failures, timeouts): a complete HTTP/1.1 response with a short text body and
    ``Connection: close``, or None when the connection should just be closed (an error
    without a status). ``headers``: extra serialised header lines (``Server``, ``Date``).
    The body never echoes client input."""
    if isinstance(error, HTTPError):
        status = error.status
        if status is None:
            return None
        reason = status_reason(status, error)
    else:
        status, reason = error, status_reason(error)
    body = f"{status} {reason}\n".encode("latin-1")
    return b"".join(
        (
            f"HTTP/1.1 {status} {reason}\r\n".encode("latin-1"),
            headers,
            b"Connection: close\r\n",
            b"Content-Type: text/plain; charset=utf-8\r\n",
            b"Content-Length: %d\r\n\r\n" % len(body),
            body,
        )
    )
